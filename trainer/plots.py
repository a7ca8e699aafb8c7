"""PNG figures of a run: accuracy curve, reliability diagram, confusion matrix, coverage."""

from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure  # the object API: no pyplot state, no backend to choose
from matplotlib.ticker import MaxNLocator

from name_origin.model_tab import SELECTION
from trainer.checkpoint import atomic_write_bytes


def _save(fig, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def accuracy_figure(history: list[dict], best_epoch: int, anchors: dict, selected_on: str = "val_loss"):
    """Test and validation accuracy per epoch; the chosen epoch marked on the validation curve."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(epochs, [100 * h["test_accuracy"] for h in history], label="test accuracy", color="C0")
    ax.plot(epochs, [100 * h["val_accuracy"] for h in history], label="validation accuracy", color="C1", ls="--")
    best = history[best_epoch - 1]
    ax.scatter(
        [best_epoch],
        [100 * best["val_accuracy"]],
        color="C3",
        zorder=3,
        label=f"chosen epoch {best_epoch} ({SELECTION[selected_on]})",
    )
    for (name, a), color in zip(anchors.items(), ("0.6", "0.4"), strict=False):
        ax.axhline(100 * a["accuracy"], color=color, lw=0.8, ls=":", label=f"{name}: {100 * a['accuracy']:.2f}%")
    ax.set_xlabel("epoch")
    # epochs are whole: no 2.5 tick, and a one-epoch run still gets its "1"
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    ax.set_ylabel("accuracy (%)")
    lows = [100 * min(h["test_accuracy"], h["val_accuracy"]) for h in history]
    ax.set_ylim(max(0, min(lows) - 2), 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Accuracy per epoch")
    return fig


def reliability_figure(calibration: dict):
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls=":")
    for key, label, color in (("reliability_before", "before", "C7"), ("reliability_after", "after", "C0")):
        rows = [r for r in calibration[key] if r["count"]]
        ece = calibration["ece_" + label]
        ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", ms=3, color=color,
                label=f"{label} temperature scaling (ECE {ece:.3f})")  # fmt: skip
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability on test, T = {calibration['temperature']:.2f}")
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def confusion_figure(confusion: list[list[int]], labels: tuple[str, ...]):
    import numpy as np

    cm = np.array(confusion, dtype=float)
    norm = cm / np.clip(cm.sum(1, keepdims=True), 1, None)
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=5.5,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("Confusion on test (row-normalised colour, counts)")
    return fig


def coverage_figure(curve: list[dict], threshold: float):
    rows = [r for r in curve if r["accuracy"] is not None]
    fig = Figure(figsize=(4.5, 4))
    ax = fig.subplots()
    ax.plot([100 * r["coverage"] for r in rows], [100 * r["accuracy"] for r in rows], marker="o", ms=3)
    ax.set_xlabel("names answered (%)")
    ax.set_ylabel("accuracy on answered (%)")
    ax.set_title(f"Coverage vs accuracy on test (threshold {threshold:.2f})")
    ax.grid(alpha=0.3)
    return fig


def save_all(run_dir: Path, metrics: dict, labels: tuple[str, ...]) -> None:
    anchors = {k: v for k, v in metrics["anchors"].items() if "logistic" in k or "picked on test" in k}
    chosen = metrics.get("selected_on", "val_loss")
    _save(accuracy_figure(metrics["history"], metrics["best_epoch"], anchors, chosen), run_dir / "accuracy_curve.png")
    _save(reliability_figure(metrics["calibration"]), run_dir / "reliability.png")
    _save(confusion_figure(metrics["test"]["confusion"], labels), run_dir / "confusion.png")
    _save(coverage_figure(metrics["abstention"]["curve"], metrics["abstention"]["threshold"]), run_dir / "coverage.png")
