"""Training speed, measured side by side in one run on this machine; prints one table.

1. seconds per epoch (train + full test evaluation) of the course script's loop, written its way
   (bench/course_loop.py), and of the trainer's `--preset course` (nn.GRU over packed,
   length-bucketed batches, fused AdamW), interleaved over rounds; their ratio (target <= 0.75);
2. one whole `python -m trainer` run of the default preset in a child process: its wall time
   (imports, data, training, calibration, figures, card), its peak resident memory, and the
   epoch at which it first reached the target test accuracy.

Usage: python bench/train_speed.py [--rounds 3] [--epochs 2] [--target 0.85] [--skip-default]
Run it alone: a concurrent job on the 2 cores makes every number meaningless.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
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


def trainer_run(data_dir: Path, preset: str, **overrides) -> list[dict]:
    """Per-epoch history of an in-process trainer run of `preset` with `overrides`."""
    p = PRESETS[preset]
    tcfg = dataclasses.replace(p.train, **overrides)
    ds = data.load(data_dir, tcfg.val_fraction, tcfg.seed)
    mcfg = dataclasses.replace(p.model, alphabet=ds.encoder.alphabet, labels=ds.labels)
    with tempfile.TemporaryDirectory() as tmp:
        return train(mcfg, tcfg, ds, Path(tmp)).history


def default_run(data_dir: Path) -> tuple[float, float, list[dict]]:
    """(wall seconds, peak RSS in MiB, per-epoch history) of a whole default-preset trainer process."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "trainer", "--data-dir", str(data_dir), "--out", tmp]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed with status {status}")
        history = json.loads((Path(tmp) / "metrics.json").read_text())["history"]
        return wall, usage.ru_maxrss / 1024, history  # KiB -> MiB on Linux


def table(rows: list[tuple[str, str, str]]) -> str:
    w = max(len(r[0]) for r in rows)
    lines = [f"| {'measure'.ljust(w)} | value | note |", f"| {'-' * w} | --- | --- |"]
    return "\n".join(lines + [f"| {name.ljust(w)} | {value} | {note} |" for name, value, note in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="epochs per round for each loop (median taken)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of course loop / trainer")
    ap.add_argument("--target", type=float, default=0.85, help="test accuracy for the time-to-target note")
    ap.add_argument("--skip-default", action="store_true", help="skip the whole default-preset run")
    args = ap.parse_args()
    data_dir = data.locate()
    course, ours = [], []
    for _ in range(args.rounds):  # interleaved, so a busy spell on the shared machine hits both
        course += course_epochs(data_dir, args.epochs)
        ours += [h["seconds"] for h in trainer_run(data_dir, "course", epochs=args.epochs)]
    c, o = statistics.median(course), statistics.median(ours)
    rows = [
        ("course-style loop, s/epoch (median)", f"{c:.2f}", " ".join(f"{s:.2f}" for s in course)),
        ("trainer --preset course, s/epoch (median)", f"{o:.2f}", " ".join(f"{s:.2f}" for s in ours)),
        ("ratio trainer / course loop", f"{o / c:.3f}", "target <= 0.75"),
    ]
    if not args.skip_default:
        wall, peak, history = default_run(data_dir)
        hit = next((h for h in history if h["test_accuracy"] >= args.target), None)
        best = max(h["test_accuracy"] for h in history)
        reached = f"{args.target:.1%} test first at epoch {hit['epoch']}" if hit else f"{args.target:.1%} not reached"
        rows += [
            ("default preset, whole run: wall s", f"{wall:.1f}", f"{len(history)} epochs; {reached}; best {best:.2%}"),
            ("default preset, peak RSS (MiB)", f"{peak:.0f}", ""),
        ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs")
    print(table(rows))


if __name__ == "__main__":
    main()
