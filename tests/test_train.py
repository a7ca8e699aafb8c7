"""End to end: the real CLI on a small subset of the data (tiny preset, one thread).

Artifacts, determinism, missing data. Interruption, `--resume` and atomic writes: test_resume.py.
"""

import csv
import dataclasses
import json
import logging
import os
import stat
import subprocess
import sys
import typing
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

import trainer.train as train_mod
from trainer import checkpoint, data
from trainer.cli import build_configs, main, train_parser
from trainer.config import ModelConfig, TrainConfig

ROOT = Path(__file__).resolve().parent.parent
CSV_COLUMNS = ["train_loss", "val_accuracy", "test_accuracy", "test_macro_f1", "seconds"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


def cli_args(data_dir, out, *extra) -> list[str]:
    """A tiny run without model.onnx (its export is tested on tiny_run and in test_runtime.py)."""
    return ["--preset", "tiny", "--data-dir", str(data_dir), "--out", str(out), "--threads", "1", "--no-onnx", *extra]


def is_timing(key: str) -> bool:
    return any(word in key for word in ("second", "elapsed", "time"))


def without_seconds(history: list[dict]) -> list[dict]:
    """Per-epoch rows minus wall-clock fields, which legitimately differ between runs."""
    return [{k: v for k, v in row.items() if not is_timing(k)} for row in history]


def read_metrics(run_dir: Path) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def assert_same_weights(a: Path, b: Path) -> None:
    ta, tb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


def selection_score(row: dict, select_on: str) -> tuple[float, float]:
    """What model selection ranks an epoch by, larger better: the lowest validation loss (ties:
    the higher accuracy), or the highest validation accuracy (ties: the higher macro-F1)."""
    if select_on == "val_loss":
        return (-row["val_loss"], row["val_accuracy"])
    return (row["val_accuracy"], row["val_macro_f1"])


def assert_selected_on(metrics: dict, select_on: str) -> None:
    """The chosen epoch is the best by select_on (the earliest of exact ties), and each row's
    is_best says whether that epoch beat every earlier one."""
    history = metrics["history"]
    scores = [selection_score(h, select_on) for h in history]
    best = max(range(len(history)), key=lambda i: (scores[i], -i))
    assert metrics["best_epoch"] == history[best]["epoch"]
    assert metrics["best_epoch_row"] == history[best]
    for i, h in enumerate(history):
        assert h["is_best"] == all(scores[i] > s for s in scores[:i]), h["epoch"]


# --- artifacts --------------------------------------------------------------------------------


def test_run_folder_has_every_artifact(tiny_run, small_data_dir):
    for name in ("model.safetensors", "config.json", "metrics.json", "metrics.csv", "accuracy_curve.png",
                 "README.md", "evidence.safetensors"):  # fmt: skip
        assert (tiny_run / name).is_file(), name
        assert (tiny_run / name).stat().st_size > 0, name
    assert not (tiny_run / checkpoint.RESUME_DIR).exists()  # removed once the run completed
    leftovers = [p.name for p in tiny_run.iterdir() if p.name.startswith((".", "tmp"))]
    assert leftovers == []  # no temporary files or folders left behind


def test_config_json(tiny_run, small_data_dir):
    cfg = json.loads((tiny_run / "config.json").read_text())
    for key in ("embed_dim", "hidden_size", "num_layers", "dropout", "members"):
        assert isinstance(cfg[key], int | float), key
    assert (cfg["embed_dim"], cfg["hidden_size"]) == (16, 16)  # the tiny preset
    assert cfg["alphabet"][0] == " " and set("abcxyz") <= set(cfg["alphabet"])
    assert len(cfg["labels"]) == 18 and cfg["labels"] == sorted(cfg["labels"])
    assert cfg["train"]["preset"] == "tiny" and cfg["train"]["seed"] == 0 and cfg["train"]["epochs"] == 2
    assert cfg["data"]["sha256"] == {name: data.sha256(small_data_dir / name) for name in data.FILES}
    assert cfg["calibration"]["temperature"] > 0
    assert 0 <= cfg["calibration"]["abstain_threshold"] <= 1
    tensors = load_file(tiny_run / "model.safetensors")
    assert tensors["members.0.embedding.weight"].shape == (len(cfg["alphabet"]) + 2, 16)
    assert tensors["members.0.head.weight"].shape == (18, 32)


def test_metrics_json_and_csv_agree(tiny_run):
    metrics = read_metrics(tiny_run)
    assert metrics["epochs_run"] == 2 and len(metrics["history"]) == 2
    assert_selected_on(metrics, "val_loss")  # the default select_on
    with open(tiny_run / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2  # one row per epoch
    assert set(CSV_COLUMNS) <= set(rows[0])
    for row, hist in zip(rows, metrics["history"], strict=True):
        assert int(row["epoch"]) == hist["epoch"]
        for col in CSV_COLUMNS:
            assert float(row[col]) == pytest.approx(hist[col], rel=1e-12), col
        assert 0 <= float(row["test_accuracy"]) <= 1 and float(row["seconds"]) > 0
    assert 0 < metrics["test"]["accuracy"] <= 1


def test_accuracy_curve_is_a_png(tiny_run):
    from PIL import Image

    path = tiny_run / "accuracy_curve.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 100


@pytest.mark.parametrize("epochs", [1, 2, 3, 5, 8, 13, 20, 100])
def test_accuracy_curve_epoch_ticks_are_whole_numbers(epochs):
    """The figure saved as accuracy_curve.png: no epoch 2.5 on its axis, and short runs get a tick
    for every epoch."""
    from trainer.plots import accuracy_figure

    history = [{"epoch": e, "test_accuracy": 0.5 + e / 1000, "val_accuracy": 0.5} for e in range(1, epochs + 1)]
    ax = accuracy_figure(history, 1, {}).axes[0]
    lo, hi = ax.get_xlim()
    ticks = [float(t) for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(t.is_integer() for t in ticks), ticks
    if epochs <= 8:
        assert ticks == list(range(1, epochs + 1))


def test_readme_has_model_index_and_real_numbers(tiny_run):
    text = (tiny_run / "README.md").read_text()
    assert text.startswith("---\n") and "model-index:" in text
    assert "{{" not in text and "{%" not in text  # fully rendered
    metrics = read_metrics(tiny_run)
    assert f"{100 * metrics['test']['accuracy']:.2f}%" in text
    card = ModelCard.load(tiny_run / "README.md")
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results["Accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-4)
    assert results["Macro F1"] == pytest.approx(metrics["test"]["macro_f1"], abs=1e-4)
    assert {r.dataset_split for r in card.data.eval_results} == {"test"}


def test_artifacts_are_readable_by_others(tiny_run):
    """A run folder is meant to be shared (copied into an image, served by another user)."""
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tiny_run.iterdir() if p.is_file()}
    assert {name: oct(m) for name, m in modes.items() if m & 0o044 != 0o044} == {}


def test_no_pickles_in_run_folder(tiny_run):
    for p in tiny_run.rglob("*"):
        if p.is_file():
            head = p.read_bytes()[:4]
            assert head[:1] != b"\x80" and head != b"PK\x03\x04", p


def test_rebuilds_the_exact_model(tiny_run):
    from name_origin.model import NameGRU

    model = NameGRU.from_pretrained(str(tiny_run))
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert model.config.alphabet == cfg["alphabet"] and list(model.config.labels) == cfg["labels"]


# --- determinism ------------------------------------------------------------------------------


def test_same_seed_same_metrics(tiny_run, small_data_dir, tmp_path):
    again = tmp_path / "again"
    assert main(cli_args(small_data_dir, again)) == 0
    a, b = read_metrics(tiny_run), read_metrics(again)
    assert without_seconds(a["history"]) == without_seconds(b["history"])
    for key in ("test", "val", "test_unseen", "best_epoch"):
        assert a[key] == b[key], key
    assert a["calibration"]["temperature"] == b["calibration"]["temperature"]
    assert_same_weights(tiny_run, again)


def test_seed_changes_the_run(tiny_run, small_data_dir, tmp_path):
    """Another seed is another run (split, init, batches), not a rounding difference; the same seed
    reproducing exactly is test_same_seed_same_metrics."""
    other = tmp_path / "other"
    assert main(cli_args(small_data_dir, other, "--seed", "1")) == 0
    a, b = read_metrics(tiny_run), read_metrics(other)
    losses = torch.tensor([[h["train_loss"] for h in m["history"]] for m in (a, b)])
    assert (losses[0] - losses[1]).abs().max() > 1e-3  # per-epoch training losses are ~2
    wa, wb = load_file(tiny_run / "model.safetensors"), load_file(other / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:  # every initialised tensor moves; the embedding's PAD row stays zero in both runs
        if k.endswith("embedding.weight"):
            wa[k], wb[k] = wa[k][1:], wb[k][1:]
        assert (wa[k].float() - wb[k].float()).abs().max() > 1e-2, k


# --- model selection and early stopping ---------------------------------------------------------


@pytest.mark.parametrize("select_on", ["val_loss", "val_accuracy"])
def test_best_epoch_is_chosen_on_select_on(small_data_dir, tmp_path, select_on):
    """Seed 4, 2 epochs: validation loss is lowest after epoch 2, accuracy highest after epoch 1,
    so the two criteria pick different epochs, and each run must pick its own criterion's."""
    run = tmp_path / "run"
    assert main(cli_args(small_data_dir, run, "--seed", "4", "--select-on", select_on)) == 0
    metrics = read_metrics(run)
    assert_selected_on(metrics, select_on)
    other = "val_accuracy" if select_on == "val_loss" else "val_loss"
    scores = [selection_score(h, other) for h in metrics["history"]]
    assert metrics["best_epoch"] != 1 + scores.index(max(scores))  # the other criterion would differ
    assert json.loads((run / "config.json").read_text())["train"]["select_on"] == select_on


@pytest.mark.parametrize(
    "select_on, metric", [("val_loss", "validation loss"), ("val_accuracy", "validation accuracy")]
)
def test_early_stop_names_the_selection_metric(small_data_dir, tmp_path, caplog, select_on, metric):
    """lr 1e-12 leaves the float32 weights exactly as they are: every epoch ties the first, none is
    better, so patience 2 stops after epoch 3 and epoch 1 (the earliest of the ties) is kept."""
    run = tmp_path / "run"
    args = ["--lr", "1e-12", "--epochs", "6", "--patience", "2", "--select-on", select_on]
    with caplog.at_level(logging.INFO, logger="trainer"):
        assert main(cli_args(small_data_dir, run, *args)) == 0
    metrics = read_metrics(run)
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3] and metrics["best_epoch"] == 1
    stops = [r.getMessage() for r in caplog.records if "stopping early" in r.getMessage()]
    assert stops == [f"no better {metric} for 2 epochs: stopping early"]


# --- command line ---------------------------------------------------------------------------------


def flag_fields() -> list[tuple[type, str, type]]:
    """(config class, field, resolved type) of every int/float/str field a user may set."""
    out = []
    for cls in (ModelConfig, TrainConfig):
        hints = typing.get_type_hints(cls)
        out += [(cls, f.name, hints[f.name]) for f in dataclasses.fields(cls) if hints[f.name] in (int, float, str)]
    return [(cls, name, typ) for cls, name, typ in out if name not in ("alphabet", "labels")]  # from the data


def test_every_config_field_has_a_flag():
    fields = flag_fields()
    names = {name for _, name, _ in fields}
    assert {"embed_dim", "hidden_size", "dropout", "members", "epochs", "lr", "select_on", "device"} <= names
    parser = train_parser()
    for cls, name, typ in fields:
        value = {int: "3", float: "0.25", str: next(f.default for f in dataclasses.fields(cls) if f.name == name)}[typ]
        args = parser.parse_args(["--" + name.replace("_", "-"), value])
        assert type(getattr(args, name)) is typ and getattr(args, name) == typ(value), name
        mcfg, tcfg = build_configs(args)  # and the value reaches the config
        assert getattr(mcfg if cls is ModelConfig else tcfg, name) == typ(value), name


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--epochs", "0"], "epochs must be at least 1"),
        (["--select-on", "val_f1"], "select_on must be val_loss or val_accuracy"),
        (["--lr", "-1", "--val-fraction", "1"], "lr must be positive; val_fraction must be between 0 and 1"),
        (["--hidden-size", "0"], "hidden_size must be at least 1"),
        (["--dropout", "1.5"], "dropout must be in [0, 1)"),
        (["--device", "cuda:99"], "CUDA device"),
    ],
    ids=["epochs", "select_on", "two-at-once", "hidden_size", "dropout", "device"],
)
def test_bad_config_is_one_clear_line_and_exit_2(small_data_dir, tmp_path, caplog, capsys, flags, message):
    out = tmp_path / "run"
    assert main(cli_args(small_data_dir, out, *flags)) == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and message in errors[0].getMessage()
    assert errors[0].exc_info is None and "Traceback" not in caplog.text + capsys.readouterr().err
    assert not out.exists()  # nothing written for a run that cannot start


@pytest.mark.parametrize("error", [RuntimeError("boom"), ValueError("boom"), FileNotFoundError("boom")])
def test_a_bug_keeps_its_traceback(small_data_dir, tmp_path, monkeypatch, error):
    """Only user errors (bad config, missing data, usage) become one line: a bug inside a run
    propagates, so `python -m trainer` prints its traceback."""

    def broken_train(*args, **kwargs):
        raise error

    monkeypatch.setattr(train_mod, "train", broken_train)
    with pytest.raises(type(error), match="boom"):
        main(cli_args(small_data_dir, tmp_path / "run"))


# --- errors -----------------------------------------------------------------------------------


def test_missing_data_exits_1_with_clear_message(tmp_path, caplog):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "run"
    assert main(cli_args(empty, out)) == 1
    assert "names_train.csv.gz" in caplog.text and str(empty) in caplog.text
    assert "--data-dir" in caplog.text
    assert not out.exists()


@pytest.mark.slow
def test_missing_data_subprocess_exit_code(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "trainer",
        "--preset",
        "tiny",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "r"),
    ]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    assert "names_train.csv.gz" in res.stderr and "Traceback" not in res.stderr
