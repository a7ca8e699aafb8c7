"""End to end: the real CLI on a small subset of the data (tiny preset, one thread).

Artifacts, determinism, missing data. Interruption, `--resume` and atomic writes: test_resume.py.
"""

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file

from trainer import checkpoint, data
from trainer.cli import main

ROOT = Path(__file__).resolve().parent.parent
CSV_COLUMNS = ["train_loss", "val_accuracy", "test_accuracy", "test_macro_f1", "seconds"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


def cli_args(data_dir, out, *extra) -> list[str]:
    return ["--preset", "tiny", "--data-dir", str(data_dir), "--out", str(out), "--threads", "1", *extra]


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
    assert 1 <= metrics["best_epoch"] <= 2
    best = metrics["history"][metrics["best_epoch"] - 1]
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in metrics["history"])  # chosen on validation
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
    other = tmp_path / "other"
    assert main(cli_args(small_data_dir, other, "--seed", "1")) == 0
    a, b = read_metrics(tiny_run), read_metrics(other)
    assert [h["train_loss"] for h in a["history"]] != [h["train_loss"] for h in b["history"]]


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
