"""The model's configuration: a frozen dataclass saved in config.json beside the weights.

A run's `config.json` holds these fields at top level (so `NameGRU.from_pretrained` rebuilds the
exact model) plus sections the trainer adds (`train`, `data`, `calibration`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    alphabet: str = ""  # characters with their own embedding row (index = 2 + position); from data
    labels: tuple[str, ...] = ()  # class names in logit order; from data
    embed_dim: int = 100  # character embedding width
    hidden_size: int = 100  # GRU hidden units per direction
    num_layers: int = 2  # stacked bidirectional GRU layers
    dropout: float = 0.0  # dropout on embeddings, between GRU layers and before the classifier
    members: int = 1  # independent BiGRU classifiers whose probabilities are averaged

    def __post_init__(self):
        # JSON gives lists back; keep the config hashable and immutable.
        object.__setattr__(self, "labels", tuple(self.labels))

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 2  # + PAD (0) and UNK (1)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def from_dict(cls, data: dict):
    """Build a dataclass from a dict, ignoring keys it does not know (forward compatible)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})
