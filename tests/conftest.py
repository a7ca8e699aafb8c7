"""Shared fixtures. Nothing here reaches the network: telemetry and analytics are off, and the
Hub endpoint points at a closed local port unless a test starts the fake Hub."""

import csv
import gzip
import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: any stray Hub call fails fast


def write_csv_gz(path: Path, rows: list[tuple[str, str]]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
        csv.writer(f, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)


def read_csv_gz(path: Path) -> list[tuple[str, str]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        return [tuple(r) for r in csv.reader(f)]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (the OS picks it; closed again on return)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def one_thread():
    """One torch intra-op thread during the test, restored after: the test machine's cores are shared,
    and one thread is far faster than oversubscribing. Opt in with
    `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The names data, found the way the trainer finds it (--data-dir aside; never downloaded).
    Missing data skips the tests that need it, except under CI, where it fails them: CI must never
    pass by silently skipping most of the suite."""
    from trainer import data

    try:
        return data.locate(None, allow_download=False)
    except data.DataError as e:
        if "CI" in os.environ:
            pytest.fail(str(e))
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def small_data_dir(real_data_dir, tmp_path_factory) -> Path:
    """An evenly spaced subset of the real files: 1,500 train rows, 600 test rows, all 18 classes."""
    out = tmp_path_factory.mktemp("small_data")
    for name, n in (("names_train.csv.gz", 1500), ("names_test.csv.gz", 600)):
        rows = read_csv_gz(real_data_dir / name)
        step = len(rows) / n
        write_csv_gz(out / name, [rows[int(i * step)] for i in range(n)])
    return out


@pytest.fixture(scope="session")
def tiny_run(small_data_dir, tmp_path_factory) -> Path:
    """A finished run folder of the `tiny` preset (2 epochs on the small data, a few seconds)."""
    from trainer.cli import main

    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["--preset", "tiny", "--data-dir", str(small_data_dir), "--out", str(run_dir), "--threads", "1"]) == 0
    return run_dir


pytest_plugins = ["hub_support"]  # the Hub tests' fixtures: HTTP fake Hub, fakes at our boundary, run folders


@pytest.fixture(scope="module")
def predictor(tiny_run):
    """A Predictor of the tiny run, shared by a test module."""
    from name_origin.predict import Predictor

    return Predictor.from_dir(tiny_run)
