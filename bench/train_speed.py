"""Training speed, measured side by side in one run on this machine; prints one table.

1. seconds per epoch (train + full test evaluation) of the course script's loop, written its way
   (bench/course_loop.py), and of `python -m trainer --preset course`; their ratio; and the
   trainer again with nn.GRU (`--gru-kernel torch`) in place of trainer.packed_gru;
2. wall time for the default preset to first reach 85.0% test accuracy (from the start of
   training, data loading and encoding included), and its seconds per epoch against the same
   preset with nn.GRU;
3. peak resident memory of a default-preset training process.

Usage: python bench/train_speed.py [--rounds 3] [--epochs 2] [--target 0.85] [--memory-epochs 3] [--default-epochs 3]
Run it alone: a concurrent job on the 2 cores makes every number meaningless.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.course_loop import CourseRNN, run_epoch  # noqa: E402
from trainer import data  # noqa: E402
from trainer.config import PRESETS  # noqa: E402
from trainer.train import train  # noqa: E402


def course_epochs(data_dir: Path, epochs: int) -> list[float]:
    train_rows = [tuple(r) for r in data.read_rows(data_dir / "names_train.csv.gz")]
    test_rows = [tuple(r) for r in data.read_rows(data_dir / "names_test.csv.gz")]
    labels = sorted({r[1] for r in train_rows})
    torch.manual_seed(0)
    random.seed(0)
    model = CourseRNN(n_classes=len(labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    return [run_epoch(model, optimizer, train_rows, test_rows, labels) for _ in range(epochs)]


def trainer_run(data_dir: Path, preset: str, **overrides) -> tuple[list[dict], float]:
    """Per-epoch history of a trainer run, and the seconds spent loading data before it."""
    t0 = time.perf_counter()
    p = PRESETS[preset]
    tcfg = dataclasses.replace(p.train, **overrides)
    ds = data.load(data_dir, tcfg.val_fraction, tcfg.seed)
    mcfg = dataclasses.replace(p.model, alphabet=ds.encoder.alphabet, labels=ds.labels)
    load_seconds = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        return train(mcfg, tcfg, ds, Path(tmp)).history, load_seconds


def time_to_target(data_dir: Path, target: float) -> tuple[float | None, int | None, float, list[float]]:
    """Wall seconds (data loading included) and epoch at which test accuracy first reaches
    target, the best test accuracy seen, and every epoch's seconds."""
    history, load_seconds = trainer_run(data_dir, "default")  # the shipped schedule, unchanged
    best = max(h["test_accuracy"] for h in history)
    seconds = [h["seconds"] for h in history]
    for h in history:
        if h["test_accuracy"] >= target:
            return load_seconds + h["elapsed"], h["epoch"], best, seconds
    return None, None, best, seconds


def peak_memory_mb(data_dir: Path, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "trainer", "--data-dir", str(data_dir), "--out", tmp, "--epochs", str(epochs)]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        if status != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with status {status}")
        return usage.ru_maxrss / 1024  # KiB -> MiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per round for each loop (median taken)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of course loop / trainer / trainer with nn.GRU")
    ap.add_argument("--target", type=float, default=0.85, help="test accuracy for the time-to-target row")
    ap.add_argument("--memory-epochs", type=int, default=3)
    ap.add_argument("--default-epochs", type=int, default=3, help="default-preset epochs timed with nn.GRU")
    args = ap.parse_args()
    data_dir = data.locate()
    course, ours, torch_gru = [], [], []
    for _ in range(args.rounds):  # interleaved, so a busy spell on the shared machine hits all three
        course += course_epochs(data_dir, args.epochs)
        ours += [h["seconds"] for h in trainer_run(data_dir, "course", epochs=args.epochs)[0]]
        torch_gru += [h["seconds"] for h in trainer_run(data_dir, "course", epochs=args.epochs, gru_kernel="torch")[0]]
    c, o, t = statistics.median(course), statistics.median(ours), statistics.median(torch_gru)
    seconds, epoch, best, default_epochs = time_to_target(data_dir, args.target)
    n = args.default_epochs
    default_torch = [h["seconds"] for h in trainer_run(data_dir, "default", epochs=n, gru_kernel="torch")[0]]
    d, dt = statistics.median(default_epochs[:n]), statistics.median(default_torch)
    peak = peak_memory_mb(data_dir, args.memory_epochs)
    rows = [
        (
            "course-style loop, s/epoch (median)",
            f"{c:.2f}",
            f"{len(course)} epochs: " + " ".join(f"{s:.2f}" for s in course),
        ),
        (
            "trainer --preset course, s/epoch (median)",
            f"{o:.2f}",
            f"{len(ours)} epochs: " + " ".join(f"{s:.2f}" for s in ours),
        ),
        ("ratio trainer / course loop", f"{o / c:.3f}", "target <= 0.45"),
        (
            "trainer --preset course --gru-kernel torch, s/epoch (median)",
            f"{t:.2f}",
            f"ratio to course loop {t / c:.3f}; " + " ".join(f"{s:.2f}" for s in torch_gru),
        ),
        (
            f"default preset: wall s to {args.target:.1%} test",
            f"{seconds:.1f}" if seconds else "not reached",
            f"epoch {epoch}; best test {best:.2%}; target <= 30 s",
        ),
        (
            f"default preset s/epoch (median of epochs 1-{n}): packed_gru / nn.GRU",
            f"{d:.2f} / {dt:.2f}",
            f"ratio {d / dt:.3f}",
        ),
        ("peak RSS of a default training run (MiB)", f"{peak:.0f}", "target <= 1536"),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    w = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(w)} | value | note |\n| {'-' * w} | --- | --- |")
    for name, value, note in rows:
        print(f"| {name.ljust(w)} | {value} | {note} |")


if __name__ == "__main__":
    main()
