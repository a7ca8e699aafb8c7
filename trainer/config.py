"""Training configuration: a frozen dataclass, the presets, and their JSON round trip.

The model's own configuration (ModelConfig) lives in name_origin.config; a run's config.json holds
its fields at top level plus a `train` section and run metadata.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from name_origin.config import ModelConfig, from_dict

__all__ = [
    "PRESETS",
    "ConfigError",
    "ModelConfig",
    "Preset",
    "TrainConfig",
    "check_model_config",
    "from_dict",
    "replace_known",
    "to_dict",
]


class ConfigError(ValueError):
    """Hyperparameters that cannot run as given (a user error: the message says which and why)."""


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "default"  # name of the preset these values started from
    epochs: int = 30  # passes over the training split
    batch_size: int = 256  # names per optimisation step
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); 0 gives plain Adam
    schedule: str = "constant"  # "constant" or "onecycle" learning-rate schedule
    grad_clip: float = 1.0  # max global gradient norm per member; 0 disables clipping
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    unk_dropout: float = 0.0  # share of training characters replaced by UNK (augmentation)
    class_weight_power: float = 0.0  # weight classes by (1/frequency)**power; 0 = unweighted
    targets: str = "rows"  # "rows": each file row's label; "names": each distinct name once, its labels' shares
    val_fraction: float = 0.1  # share of train carved out (stratified) for model selection
    select_on: str = "val_loss"  # best epoch by "val_loss" (lowest) or "val_accuracy" (highest)
    patience: int = 0  # stop after this many epochs without a better validation score; 0 = never
    seed: int = 0  # seeds split, init, batching and dropout
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    max_train_rows: int = 0  # keep an evenly spaced subset of N training rows (smoke runs); 0 = all
    abstain_target: float = 0.9  # abstention threshold: answered validation names must be this accurate

    def __post_init__(self):
        checks = {
            "epochs must be at least 1": self.epochs >= 1,
            "batch_size must be at least 1": self.batch_size >= 1,
            "lr must be positive": self.lr > 0,
            "val_fraction must be between 0 and 1 (exclusive)": 0 < self.val_fraction < 1,
            "unk_dropout must be in [0, 1)": 0 <= self.unk_dropout < 1,
            "label_smoothing must be in [0, 1)": 0 <= self.label_smoothing < 1,
            "abstain_target must be in [0, 1]": 0 <= self.abstain_target <= 1,
            "targets must be rows or names": self.targets in ("rows", "names"),
            "schedule must be constant or onecycle": self.schedule in ("constant", "onecycle"),
            "select_on must be val_loss or val_accuracy": self.select_on in ("val_loss", "val_accuracy"),
            "device must be auto, cpu or cuda": self.device in ("auto", "cpu", "cuda")
            or self.device.startswith("cuda:"),
        }
        failed = [msg for msg, ok in checks.items() if not ok]
        if failed:
            raise ConfigError("invalid training config: " + "; ".join(failed))


def check_model_config(cfg: ModelConfig) -> ModelConfig:
    """The model's sizes as the trainer accepts them (ModelConfig itself only holds them);
    raises ConfigError naming every bad value, so a bad flag fails before any data is read."""
    checks = {
        "embed_dim must be at least 1": cfg.embed_dim >= 1,
        "hidden_size must be at least 1": cfg.hidden_size >= 1,
        "num_layers must be at least 1": cfg.num_layers >= 1,
        "members must be at least 1": cfg.members >= 1,
        "dropout must be in [0, 1)": 0 <= cfg.dropout < 1,
    }
    failed = [msg for msg, ok in checks.items() if not ok]
    if failed:
        raise ConfigError("invalid model config: " + "; ".join(failed))
    return cfg


@dataclass(frozen=True)
class Preset:
    model: ModelConfig
    train: TrainConfig


PRESETS: dict[str, Preset] = {
    # The course script's hyperparameters (embedding 100, 2x BiGRU 100, Adam 1e-3, batch 256,
    # 100 epochs, clipping), with its bugs fixed.
    "course": Preset(
        ModelConfig(embed_dim=100, hidden_size=100, num_layers=2, dropout=0.0, members=1),
        TrainConfig(preset="course", epochs=100, batch_size=256, lr=1e-3, grad_clip=1.0),
    ),
    # Our best (docs/experiments.md lists what was tried): three BiGRU members averaged, dropout,
    # label smoothing, UNK character dropout, AdamW with a one-cycle schedule.
    "default": Preset(
        ModelConfig(embed_dim=64, hidden_size=128, num_layers=2, dropout=0.3, members=3),
        TrainConfig(
            preset="default",
            epochs=20,
            batch_size=128,
            lr=4e-3,
            weight_decay=0.01,
            schedule="onecycle",
            label_smoothing=0.1,
            unk_dropout=0.05,
        ),
    ),
    # Seconds-long smoke run for tests and CI.
    "tiny": Preset(
        ModelConfig(embed_dim=16, hidden_size=16, num_layers=2, dropout=0.0, members=1),
        TrainConfig(preset="tiny", epochs=2, batch_size=128, lr=3e-3),
    ),
}


def replace_known(obj, overrides: dict):
    """dataclasses.replace with only the keys `obj` has and whose value is not None."""
    names = {f.name for f in dataclasses.fields(obj)}
    return dataclasses.replace(obj, **{k: v for k, v in overrides.items() if k in names and v is not None})


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)
