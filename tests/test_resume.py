"""End to end: interruption (a flag, a kill between the two state files, real signals), `--resume`
reproducing the uninterrupted run, and atomic writes that never leave a half-written file.
"""

import os
import signal
import stat
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors.torch import load_file
from test_train import ROOT, assert_same_weights, cli_args, read_metrics, without_seconds

import trainer.train as train_mod
from trainer import checkpoint
from trainer.checkpoint import atomic_save_tensors, atomic_write_bytes, load_resume_state
from trainer.cli import EXIT_INTERRUPTED, main

# A harder configuration for the resume checks: a schedule, dropout (RNG) and weight decay all
# have state that must survive the interruption.
RESUME_ARGS = ["--epochs", "3", "--schedule", "onecycle", "--dropout", "0.2", "--weight-decay", "0.01"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


@contextmanager
def stop_after_checkpoint(epoch: int):
    """Stand-in for stop_on_signals: the stop flag goes up right after epoch `epoch` is saved,
    which is what a SIGTERM arriving then does."""
    flag = {"stop": False}
    real_save, saves = train_mod.save_resume_state, []

    def save(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == epoch:
            flag["stop"] = True

    train_mod.save_resume_state = save
    try:
        yield flag
    finally:
        train_mod.save_resume_state = real_save


@pytest.fixture(scope="module")
def reference_run(small_data_dir, tmp_path_factory) -> Path:
    """An uninterrupted 3-epoch run with RESUME_ARGS."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main(cli_args(small_data_dir, out, *RESUME_ARGS)) == 0
    return out


# --- interruption and resume ------------------------------------------------------------------


def test_interrupt_then_resume_matches_uninterrupted(reference_run, small_data_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(train_mod, "stop_on_signals", lambda: stop_after_checkpoint(1))
    assert main(cli_args(small_data_dir, run, *RESUME_ARGS)) == EXIT_INTERRUPTED
    monkeypatch.undo()
    # a resumable checkpoint and no finished-looking artifacts
    resume = run / checkpoint.RESUME_DIR
    for name in ("configs.json", "state.json", "state.safetensors"):
        assert (resume / name).is_file(), name
    assert [h["epoch"] for h in load_resume_state(run)["progress"]["history"]] == [1]
    assert not (run / "model.safetensors").exists() and not (run / "metrics.json").exists()

    assert main(["--resume", str(run), "--threads", "1", "--no-onnx"]) == 0
    got, want = read_metrics(run), read_metrics(reference_run)
    assert [h["epoch"] for h in got["history"]] == [1, 2, 3]
    # RNG, optimizer and scheduler state all restored exactly: bit-identical history and weights
    assert without_seconds(got["history"]) == without_seconds(want["history"])
    assert got["test"] == want["test"]
    assert_same_weights(run, reference_run)
    assert not resume.exists()


def test_resume_after_kill_between_the_two_state_files(reference_run, small_data_dir, tmp_path, monkeypatch):
    """A kill after epoch 2's tensors are on disk but before its state.json: resuming must not
    pair epoch-2 weights with epoch-1 progress."""

    class Killed(BaseException):
        pass

    real_write, writes = checkpoint.atomic_write_json, []

    def write_json(path, obj):
        if Path(path).name == "state.json":
            writes.append(path)
            if len(writes) == 2:
                raise Killed
        real_write(path, obj)

    run = tmp_path / "run"
    monkeypatch.setattr(checkpoint, "atomic_write_json", write_json)
    with pytest.raises(Killed):
        main(cli_args(small_data_dir, run, *RESUME_ARGS))
    monkeypatch.undo()
    assert main(["--resume", str(run), "--threads", "1", "--no-onnx"]) == 0
    got, want = read_metrics(run), read_metrics(reference_run)
    assert without_seconds(got["history"]) == without_seconds(want["history"])
    assert_same_weights(run, reference_run)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, caplog):
    (tmp_path / "done").mkdir()
    assert main(["--resume", str(tmp_path / "done")]) == 1
    assert "no resumable checkpoint" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_writes_resumable_checkpoint_and_resume_finishes(small_data_dir, tmp_path, signum):
    """The real thing: a signal to a CLI subprocess after its first epoch, then --resume."""
    run, epochs = tmp_path / "run", 6
    cmd = [sys.executable, "-m", "trainer", *cli_args(small_data_dir, run, "--epochs", str(epochs))]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / checkpoint.RESUME_DIR / "state.json").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert "--resume" in err and "Traceback" not in err
    done = [h["epoch"] for h in load_resume_state(run)["progress"]["history"]]
    assert done and done == list(range(1, len(done) + 1)) and len(done) < epochs
    assert not (run / "model.safetensors").exists()
    if signum != signal.SIGTERM:
        return  # one resume through a subprocess is enough

    res = subprocess.run(
        [sys.executable, "-m", "trainer", "--resume", str(run), "--no-onnx"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    resumed = read_metrics(run)
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, epochs + 1))
    assert not (run / checkpoint.RESUME_DIR).exists()
    straight = tmp_path / "straight"
    assert main(cli_args(small_data_dir, straight, "--epochs", str(epochs))) == 0
    assert without_seconds(resumed["history"]) == without_seconds(read_metrics(straight)["history"])


# --- atomic writes ----------------------------------------------------------------------------


def test_failed_weight_write_never_leaves_a_model_file(small_data_dir, tmp_path, monkeypatch):
    class Killed(BaseException):
        pass

    def half_write(model, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x00" * 100)  # a torn write
        raise Killed

    monkeypatch.setattr(safetensors.torch, "save_model", half_write)
    run = tmp_path / "run"
    with pytest.raises(Killed):
        main(cli_args(small_data_dir, run))
    assert not (run / "model.safetensors").exists()
    assert not (run / "config.json").exists()
    assert [p.name for p in run.iterdir() if p.name != checkpoint.RESUME_DIR] == []


def test_atomic_write_bytes_keeps_old_content_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_atomic_write_bytes_without_fchmod(tmp_path, monkeypatch):
    """Windows has no os.fchmod before Python 3.13: atomic writes must not need it."""
    monkeypatch.delattr(os, "fchmod", raising=False)
    target = tmp_path / "a.json"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
    if os.name == "posix":  # shareable, like the other artifacts (Windows has no such mode bits)
        assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_atomic_save_tensors(tmp_path, monkeypatch):
    target = tmp_path / "w.safetensors"
    atomic_save_tensors(target, {"a": torch.arange(3)}, metadata={"k": "v"})
    assert torch.equal(load_file(target)["a"], torch.arange(3))
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # shareable, like the other artifacts

    def torn(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\x01" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "save_file", torn)
    with pytest.raises(KeyboardInterrupt):
        atomic_save_tensors(target, {"a": torch.zeros(3)})
    assert torch.equal(load_file(target)["a"], torch.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
