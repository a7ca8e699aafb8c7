"""Fixtures and helpers of the Hub tests (test_hub_push.py, test_hub_load.py): the fake Hub of
tests/fake_hub.py on 127.0.0.1, a recorder of every request huggingface_hub sends, run folders.
Loaded as a pytest plugin by tests/conftest.py. Nothing leaves the loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_hub import FakeHub

from name_origin.hub import XET_RETRIES
from trainer.push import push_run

ROOT = Path(__file__).resolve().parent.parent
REPO = "tester/name-origin"
NAMES = ["Nakamura", "O'Brien", "Dvořák", "Schmidt", "Rossi"]
ARTIFACTS = {  # at least these (report.py may add more)
    "README.md", "accuracy_curve.png", "config.json", "confusion.png", "coverage.csv", "coverage.png",
    "evidence.safetensors", "metrics.csv", "metrics.json", "model.safetensors", "per_class.csv", "reliability.png",
}  # fmt: skip
LOAD_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from name_origin.hub import load_served_model
predictor, resolved = load_served_model(None, sys.argv[1], sys.argv[2], Path(sys.argv[3]))
print(json.dumps({
    "source": resolved.source, "revision": resolved.revision, "notes": resolved.notes,
    "weights_sha256": hashlib.sha256((resolved.path / "model.safetensors").read_bytes()).hexdigest(),
    "probs": [predictor.predict(name).probs for name in sys.argv[4:]],
}))
"""


# -- fixtures -----------------------------------------------------------------------------------


def use_fake_hub(monkeypatch, fake: FakeHub, home: Path, xet: bool) -> None:
    """Point huggingface_hub in this process at `fake`: a fresh cache and token path under `home`,
    HF_TOKEN set to the Hub's token, xet on or off (off: classic LFS uploads), hf_xet's own retry
    settings (push_run sets its own where unset; undone after the test)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", not xet)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "0" if xet else "1")
    monkeypatch.setenv("HF_TOKEN", fake.token)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    for name in (*XET_RETRIES, "HF_XET_CLIENT_RETRY_MAX_DURATION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A started fake Hub that huggingface_hub in this process points at, xet off."""
    fake = FakeHub().start()
    use_fake_hub(monkeypatch, fake, tmp_path / "hf_home", xet=False)
    yield fake
    fake.stop()


@dataclass(frozen=True)
class Sent:
    method: str
    url: str
    timeout: dict  # httpx timeouts of the request: connect/read/write/pool seconds (None: unbounded)


@pytest.fixture
def sent() -> list[Sent]:
    """Every HTTP request huggingface_hub sends from now on, retries included (one entry per
    attempt, even when the connection is refused): its shared client gets a recording hook."""
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils._http import default_client_factory

    requests: list[Sent] = []

    def recording_client():
        client = default_client_factory()
        client.event_hooks["request"].append(
            lambda r: requests.append(Sent(r.method, str(r.url), r.extensions.get("timeout", {})))
        )
        return client

    set_client_factory(recording_client)
    yield requests
    set_client_factory(default_client_factory)


def bounded(request: Sent, limit: float) -> bool:
    return bool(request.timeout) and all(t is not None and t <= limit for t in request.timeout.values())


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run plus what must never be pushed: resume/, temp and hidden files."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "resume").mkdir(exist_ok=True)
    (run / "resume" / "state.safetensors").write_bytes(b"optimizer state")
    (run / ".metrics.json.x1y2.tmp").write_text("{}")
    (run / "tmpab12cd").mkdir()
    (run / "tmpab12cd" / "model.safetensors").write_bytes(b"half-written")
    return run


@pytest.fixture
def artifacts(tiny_run) -> set[str]:
    """Every file a finished run holds (the tiny run has no resume/ left)."""
    names = {p.name for p in tiny_run.iterdir()}
    assert names >= ARTIFACTS and all((tiny_run / n).is_file() for n in names)
    return names


@pytest.fixture
def pushed(hub, tiny_run) -> str:
    """REPO on the fake Hub holding tiny_run; returns the commit id."""
    return push_run(tiny_run, REPO).oid


def tree_state(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def point_at(monkeypatch, url: str) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")


def probs_of(predictor) -> list[dict[str, float]]:
    return [predictor.predict(name).probs for name in NAMES]


def load_in_subprocess(hub: FakeHub, hf_home: Path, revision: str, bundled: Path, **env) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, REPO, revision, str(bundled), *NAMES],
        cwd=ROOT, env={**os.environ, **hub.env(hf_home), **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert hub.token not in proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])
