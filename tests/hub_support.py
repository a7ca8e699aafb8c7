"""Helpers of the Hub tests (test_hub_*.py), loaded as a pytest plugin by tests/conftest.py.

Two kinds of fake, nothing leaves the loopback:
- `hub`: the HTTP fake of tests/fake_hub.py, for the one real round trip (push, then download);
- `boundary`: huggingface_hub's functions replaced where our code calls them (name_origin.hub's
  HfApi and snapshot_download, trainer.push's HfApi and get_token), for every failure case.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
from conftest import free_port
from fake_hub import FakeHub
from huggingface_hub import CommitInfo
from huggingface_hub.errors import LocalEntryNotFoundError

from name_origin.hub import REQUIRED

ROOT = Path(__file__).resolve().parent.parent
REPO = "tester/name-origin"
SHA = "0123456789abcdef" * 2 + "01234567"  # a commit id
NAMES = ["Nakamura", "O'Brien", "Dvořák", "Schmidt", "Rossi"]
LOAD_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from name_origin.hub import load_served_model
torch.set_num_threads(1)  # like the app, and like the test process: the same arithmetic
predictor, resolved = load_served_model(None, sys.argv[1], sys.argv[2], Path(sys.argv[3]))
print(json.dumps({"source": resolved.source, "revision": resolved.revision, "notes": resolved.notes,
                  "runtime": predictor.runtime,
                  "probs": [predictor.predict(name).probs for name in sys.argv[4:]]}))
"""


def probs_of(predictor) -> list[dict[str, float]]:
    return [predictor.predict(name).probs for name in NAMES]


def in_fresh_process(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def load_in_fresh_process(hub: FakeHub, hf_home: Path, revision: str, bundled: Path) -> dict:
    proc = in_fresh_process(["-c", LOAD_SCRIPT, REPO, revision, str(bundled), *NAMES], hub.env(hf_home))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def use_endpoint(monkeypatch, url: str, hf_home: Path) -> None:
    """huggingface_hub in this process talks to `url` and caches under hf_home (HF_ENDPOINT and
    HF_HOME are read when it is imported, so its constants are patched)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"  # free a moment ago: nothing listens there


def http_error(cls, status: int, message: str = "error"):
    """A huggingface_hub HTTP error (HfHubHTTPError or a subclass) as the Hub's answer `status`."""
    return cls(message, response=httpx2.Response(status, request=httpx2.Request("GET", "https://hub.test/api")))


def connect_error() -> httpx2.ConnectError:
    return httpx2.ConnectError("[Errno 111] Connection refused")


@pytest.fixture
def hub():
    fake = FakeHub().start()
    yield fake
    fake.stop()


@pytest.fixture
def run_copy(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run plus what must never be pushed: resume/, temp and hidden files."""
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    (run / "resume").mkdir(exist_ok=True)
    (run / "resume" / "state.safetensors").write_bytes(b"optimizer state")
    (run / ".metrics.json.x1y2.tmp").write_text("{}")
    (run / "tmpab12cd").mkdir()
    (run / "tmpab12cd" / "model.safetensors").write_bytes(b"half-written")
    return run


def snapshot(run: Path, root: Path, sha: str = SHA) -> Path:
    """A copy of a run's files in a folder named by commit id, like a snapshot of the cache."""
    return Path(shutil.copytree(run, root / "snapshots" / sha, ignore=shutil.ignore_patterns("resume")))


@dataclass
class Boundary:
    """What huggingface_hub does in one case: the probe answers or raises `probe`; a download
    returns `download` (a folder) or raises it; the cache holds `cache` or raises it (None: empty)."""

    probe: Exception | None = None
    download: Path | Exception | None = None
    cache: Path | Exception | None = None
    calls: list[str] = field(default_factory=list)  # "probe", "download", "cache", in order
    pushed: list[dict] = field(default_factory=list)  # upload_folder's arguments
    push_error: Exception | None = None  # what create_repo raises
    public: bool = False  # the repo exists and is public
    endpoint: str = "https://hub.test"

    def model_info(self, repo_id, *, revision, timeout):
        self.calls.append("probe")
        if self.probe:
            raise self.probe
        files = sorted(p.name for p in self.download.iterdir()) if isinstance(self.download, Path) else REQUIRED
        siblings = [type("Sibling", (), {"rfilename": name}) for name in files]
        return type("Info", (), {"sha": SHA, "siblings": siblings})

    def hf_hub_download(self, repo_id, filename, *, revision):
        if "download" not in self.calls:
            self.calls.append("download")
        if isinstance(self.download, Exception):
            raise self.download
        if self.download is None:
            raise LocalEntryNotFoundError("not on the Hub")
        return str(self.download / filename)

    def snapshot_download(self, repo_id, *, revision, allow_patterns, local_files_only=False):
        self.calls.append("cache" if local_files_only else "download")
        got = self.cache if local_files_only else self.download
        if got is None:
            raise LocalEntryNotFoundError("Cannot find an appropriate cached snapshot folder")
        if isinstance(got, Exception):
            raise got
        return str(got)

    def api(self, token=None):
        return self  # HfApi(...): this object, whose methods are the ones called

    def create_repo(self, repo_id, *, private, exist_ok):
        if self.push_error:
            raise self.push_error

    def repo_info(self, repo_id):
        return type("Info", (), {"private": not self.public})

    def upload_folder(self, **kwargs) -> CommitInfo:
        self.pushed.append(kwargs)
        url = f"https://huggingface.co/{kwargs['repo_id']}/commit/{SHA}"
        return CommitInfo(commit_url=url, commit_message=kwargs["commit_message"], commit_description="", oid=SHA)


@pytest.fixture
def boundary(monkeypatch) -> Boundary:
    from huggingface_hub import constants

    import name_origin.hub
    import trainer.push

    fake = Boundary()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(name_origin.hub, "HfApi", fake.api)
    monkeypatch.setattr(name_origin.hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(name_origin.hub, "hf_hub_download", fake.hf_hub_download)
    monkeypatch.setattr(trainer.push, "HfApi", fake.api)
    monkeypatch.setattr(trainer.push, "get_token", lambda: "hf_fake_SECRET")
    return fake
