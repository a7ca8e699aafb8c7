"""The training loop: length-bucketed batches, AdamW, clipping, per-epoch evaluation,
best epoch chosen on validation, a resumable checkpoint after every epoch."""

from __future__ import annotations

import copy
import logging
import math
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from name_origin.encoding import PAD, UNK, CharEncoder, pad_batch
from name_origin.model import NameGRU
from name_origin.model_tab import SELECTION
from trainer.checkpoint import load_resume_state, save_resume_state
from trainer.config import ConfigError, ModelConfig, TrainConfig
from trainer.data import Dataset, Encoded, Split, bucketed_batches, encode_split, label_mass, labels_by_name
from trainer.evaluate import predict_logits, quick_metrics

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised between batches after SIGINT/SIGTERM; the last epoch's checkpoint is on disk."""


def selection_key(select_on: str, val_loss: float, val_acc: float, val_f1: float) -> tuple[float, float]:
    """Larger is better. Validation log-loss scores every probability, so it moves far less with
    sampling noise than accuracy on ~1,300 names (about +-1% there)."""
    if select_on == "val_loss":
        return (-val_loss, val_acc)
    if select_on == "val_accuracy":
        return (val_acc, val_f1)
    raise ValueError(f"unknown select_on {select_on!r}: use val_loss or val_accuracy")


def resolve_device(name: str) -> torch.device:
    """The torch device for --device; ConfigError (a user error) for one this machine lacks."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(f"--device {name}: {e}") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():  # 0 without CUDA
        raise ConfigError(f"--device {name} asked for, but torch sees {torch.cuda.device_count()} CUDA device(s).")
    return device


@dataclass
class TrainResult:
    model: NameGRU  # weights of the best validation epoch
    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0  # 1-based


@contextmanager
def stop_on_signals():
    """Turn SIGINT/SIGTERM into a flag checked between batches (so no write is cut short)."""
    flag = {"stop": False}

    def handler(signum, _frame):
        flag["stop"] = True

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def make_optimizer(model: NameGRU, cfg: TrainConfig, steps_per_epoch: int):
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "embedding" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "embedding" in n)]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, fused=True)  # one kernel per step, not a loop over tensors
    scheduler = None
    if cfg.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.25
        )
    elif cfg.schedule != "constant":
        raise ValueError(f"unknown schedule {cfg.schedule!r}")
    return optimizer, scheduler


def class_weights(counts: list[float], power: float) -> torch.Tensor | None:
    """(classes,) loss weights (1/count)**power, scaled so the average example keeps weight 1; None at 0."""
    if power == 0:
        return None
    c = torch.tensor(counts, dtype=torch.float).clamp(min=1)
    w = (c.sum() / c) ** power
    return w / (w * c).sum() * c.sum()  # the average training example keeps weight 1


def name_targets(split: Split, encoder: CharEncoder, num_classes: int, device: torch.device) -> Encoded:
    """Each distinct name of the split once, its target the shares of the labels it carries there:
    y is (names, classes) soft targets. A name labelled German twice and Dutch once is one example
    with target 2/3 German, 1/3 Dutch, not three rows; scraped repeats stop weighing extra."""
    counts = labels_by_name(split.names, split.labels)
    soft = torch.zeros(len(counts), num_classes)
    for row, labels in enumerate(counts.values()):
        for label, n in labels.items():
            soft[row, label] = n
    x, lengths = pad_batch([encoder.encode(name) for name in counts])
    return Encoded(x.to(device), lengths, (soft / soft.sum(1, keepdim=True)).to(device))


def train_epoch(model, data: Encoded, cfg: TrainConfig, optimizer, scheduler, weight, gen, flag, desc) -> float:
    model.train()
    total, seen = 0.0, 0
    batches = bucketed_batches(data.lengths, cfg.batch_size, gen)
    for idx in tqdm(batches, desc=desc, leave=False, mininterval=1.0):
        if flag["stop"]:
            raise Interrupted
        lengths = data.lengths[idx]
        x, y = data.x[idx.to(data.x.device), : int(lengths.max())], data.y[idx.to(data.y.device)]
        if cfg.unk_dropout > 0:  # teaches the UNK row, so unseen characters and occlusion mean "unknown"
            x = x.masked_fill((torch.rand(x.shape, device=x.device) < cfg.unk_dropout) & (x != PAD), UNK)
        member_logits = model.member_logits(x, lengths, sorted_desc=True)  # (members, batch, classes)
        losses = [F.cross_entropy(lg, y, weight=weight, label_smoothing=cfg.label_smoothing) for lg in member_logits]
        optimizer.zero_grad(set_to_none=True)
        sum(losses).backward()
        if cfg.grad_clip > 0:
            for member in model.members:  # clip per member so members stay independent
                torch.nn.utils.clip_grad_norm_(member.parameters(), cfg.grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += sum(loss.item() for loss in losses) / len(losses) * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


SCORES = ("val_loss", "val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1")  # per epoch


def epoch_scores(model: NameGRU, val: Encoded, test: Encoded, num_classes: int) -> dict[str, float]:
    """The SCORES of one epoch: validation log-loss, accuracy and macro-F1; test accuracy and macro-F1."""
    val_logits = predict_logits(model, val)
    val_acc, val_f1 = quick_metrics(val_logits, val.y, num_classes)
    test_acc, test_f1 = quick_metrics(predict_logits(model, test), test.y, num_classes)
    val_loss = F.cross_entropy(val_logits, val.y.cpu()).item()
    return dict(zip(SCORES, (val_loss, val_acc, val_f1, test_acc, test_f1), strict=True))


def restore(run_dir: Path, model: NameGRU, optimizer, scheduler, gen: torch.Generator, device: torch.device):
    """Load an interrupted run's state into model, optimizer, scheduler and the random generators;
    returns (history, best weights, best selection key)."""
    state = load_resume_state(run_dir)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng_torch"])
    gen.set_state(state["rng_batches"])
    if state["rng_cuda"] is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"])
    history = state["progress"]["history"]
    log.info("resuming %s after epoch %d", run_dir, len(history))
    return history, state["best"], tuple(state["progress"]["best_key"])


def train(mcfg: ModelConfig, cfg: TrainConfig, ds: Dataset, run_dir: Path, resume: bool = False) -> TrainResult:
    """Train from scratch (or resume run_dir's checkpoint); evaluate every epoch; return the weights of
    the epoch chosen on validation. Raises Interrupted after SIGINT/SIGTERM (checkpoint on disk)."""
    t_call = time.perf_counter()
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = NameGRU(mcfg).to(device)
    val_data, test_data = (encode_split(s, ds.encoder, device) for s in (ds.val, ds.test))
    if cfg.targets == "names":
        train_data = name_targets(ds.train, ds.encoder, len(ds.labels), device)
    else:
        train_data = encode_split(ds.train, ds.encoder, device)
    gen = torch.Generator().manual_seed(cfg.seed)
    steps = len(bucketed_batches(train_data.lengths, cfg.batch_size, None))
    optimizer, scheduler = make_optimizer(model, cfg, steps)
    weight = class_weights(label_mass(ds.train, mcfg.num_classes, cfg.targets), cfg.class_weight_power)
    weight = weight.to(device) if weight is not None else None
    history, best_state, best_key = [], copy.deepcopy(model.state_dict()), (-math.inf, -math.inf)
    if resume:
        history, best_state, best_key = restore(run_dir, model, optimizer, scheduler, gen, device)
    start = len(history)
    t_start = t_call - (history[-1]["elapsed"] if history else 0.0)  # wall clock across resumes
    since_best = 0 if not history else len(history) - max(h["epoch"] for h in history if h["is_best"])
    with stop_on_signals() as flag:
        for epoch in range(start + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            loss = train_epoch(
                model, train_data, cfg, optimizer, scheduler, weight, gen, flag, f"epoch {epoch}/{cfg.epochs}"
            )
            scores = epoch_scores(model, val_data, test_data, mcfg.num_classes)
            key = selection_key(cfg.select_on, scores["val_loss"], scores["val_accuracy"], scores["val_macro_f1"])
            is_best = key > best_key
            if is_best:
                best_key, best_state, since_best = key, copy.deepcopy(model.state_dict()), 0
            else:
                since_best += 1
            now = time.perf_counter()
            row = {"epoch": epoch, "train_loss": loss, **scores, "seconds": now - t0, "elapsed": now - t_start,
                   "is_best": is_best}  # fmt: skip
            history.append(row)
            log.info(
                "epoch %3d  loss %.4f  val loss %.4f acc %.4f f1 %.3f  test acc %.4f f1 %.3f  %.1fs%s",
                epoch, loss, *(scores[k] for k in SCORES), row["seconds"], " *best*" if is_best else "",
            )  # fmt: skip
            progress = {"history": history, "best_key": list(best_key)}
            save_resume_state(
                run_dir, model=model, best_state=best_state, optimizer=optimizer,
                scheduler=scheduler, batch_gen=gen, progress=progress,
            )  # fmt: skip
            if flag["stop"]:
                raise Interrupted
            if cfg.patience and since_best >= cfg.patience:
                log.info(
                    "no better %s for %d epochs: stopping early",
                    SELECTION[cfg.select_on].split(" ", 1)[1],
                    cfg.patience,
                )
                break
    model.load_state_dict(best_state)
    best_epoch = max((h["epoch"] for h in history if h["is_best"]), default=0)
    return TrainResult(model.eval(), history, best_epoch)
