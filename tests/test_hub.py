"""trainer.hub against an in-memory fake Hub on 127.0.0.1 (tests/fake_hub.py): push a run as one
commit, load it back by commit id in a fresh process, cache + offline mode, and every failure path
(clear push errors; fallback to the bundled model with a reason). Nothing leaves the loopback."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_hub import FakeHub

from trainer.cli import main as cli_main
from trainer.hub import HubError, load_served_model, push_run, run_files

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
from trainer.hub import load_served_model
predictor, resolved = load_served_model(None, sys.argv[1], sys.argv[2], Path(sys.argv[3]))
print(json.dumps({
    "source": resolved.source, "revision": resolved.revision, "notes": resolved.notes,
    "weights_sha256": hashlib.sha256((resolved.path / "model.safetensors").read_bytes()).hexdigest(),
    "probs": [predictor.predict(name).probs for name in sys.argv[4:]],
}))
"""


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A started fake Hub; huggingface_hub in this process points at it, with a fresh cache and
    token path, xet off (classic LFS uploads) and HF_TOKEN set to the Hub's token."""
    from huggingface_hub import constants

    fake = FakeHub().start()
    home = tmp_path / "hf_home"
    monkeypatch.setattr(constants, "ENDPOINT", fake.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", fake.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_TOKEN", fake.token)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
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


# -- push -------------------------------------------------------------------------------------------


def test_run_files_skip_resume_temp_and_hidden(run_copy, artifacts):
    assert set(run_files(run_copy)) == artifacts


def test_push_is_one_commit_with_every_artifact(hub, run_copy, artifacts, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    before = tree_state(run_copy)
    commit = push_run(run_copy, REPO, private=True, commit_message="tiny run")

    assert len(hub.commit_requests) == 1 and hub.commit_requests[0]["header"]["summary"] == "tiny run"
    head = hub.head(REPO)
    assert commit.oid == head.oid and commit.url == f"{hub.url}/{REPO}/commit/{head.oid}"
    files = hub.files(REPO)
    assert set(files) == artifacts | {".gitattributes"}  # no resume/, temp or hidden files
    assert all(files[name] == (run_copy / name).read_bytes() for name in artifacts)
    lfs = {op["value"]["path"] for op in hub.commit_requests[0]["operations"] if op["key"] == "lfsFile"}
    assert lfs == {name for name in artifacts if name.endswith((".safetensors", ".png"))}
    assert hub.repos[REPO].private
    assert tree_state(run_copy) == before
    assert all(r.authorization is None for r in hub.requests if r.role == "cdn")  # token stays on the Hub
    assert hub.token not in caplog.text + "".join(capfd.readouterr())


def test_push_uses_the_stored_login(hub, tiny_run, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_TOKEN")
    Path(constants.HF_TOKEN_PATH).parent.mkdir(parents=True)
    Path(constants.HF_TOKEN_PATH).write_text(hub.token)
    assert push_run(tiny_run, REPO).oid == hub.head(REPO).oid
    assert {r.authorization for r in hub.requests if r.role == "hub"} == {f"Bearer {hub.token}"}


@pytest.mark.slow  # trains the tiny preset
def test_train_then_push_uploads_the_finished_run(hub, small_data_dir, tmp_path, capsys):
    run = tmp_path / "trained"
    argv = ["--preset", "tiny", "--data-dir", str(small_data_dir), "--out", str(run), "--threads", "1"]
    assert cli_main([*argv, "--push", "--repo-id", REPO, "--commit-message", "trained"]) == 0
    oid = hub.head(REPO).oid
    out = capsys.readouterr().out
    assert f"commit {oid}" in out and f"{hub.url}/{REPO}/commit/{oid}" in out
    assert len(hub.commit_requests) == 1 and hub.head(REPO).message == "trained"
    names = {p.name for p in run.iterdir()}
    assert names >= ARTIFACTS and "resume" not in names
    assert set(hub.files(REPO)) == names | {".gitattributes"}


def test_push_to_existing_repo_adds_one_commit(hub, run_copy):
    first = push_run(run_copy, REPO)
    (run_copy / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    second = push_run(run_copy, REPO, commit_message="again")
    assert hub.head(REPO).oid == second.oid and hub.head(REPO).parent == first.oid
    assert len(hub.commit_requests) == 2
    assert hub.files(REPO)["metrics.csv"] == b"epoch,loss\n1,0.5\n"


@pytest.mark.slow  # a real process
def test_cli_push_prints_commit_id_and_url(hub, run_copy, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "trainer", "push", str(run_copy), "--repo-id", REPO, "--commit-message", "cli"],
        cwd=ROOT, env={**os.environ, **hub.env(tmp_path / "home")}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    oid = hub.head(REPO).oid
    assert f"commit {oid}" in proc.stdout and f"{hub.url}/{REPO}/commit/{oid}" in proc.stdout
    assert hub.token not in proc.stdout + proc.stderr
    assert len(hub.commit_requests) == 1 and hub.head(REPO).message == "cli"


PUSH_FAILURES = {  # case: (how to break it, words expected in the sentence)
    "no token": (lambda mp, hub, run: mp.delenv("HF_TOKEN"), "No Hugging Face token found"),
    "bad token (401)": (lambda mp, hub, run: mp.setenv("HF_TOKEN", "hf_wrong_SECRET"), "rejected the token (HTTP 401)"),
    "foreign namespace (403)": (lambda mp, hub, run: None, "may not create or write someone-else/names (HTTP 403)"),
    "network down": (lambda mp, hub, run: point_at(mp, f"http://127.0.0.1:{closed_port()}"), "could not be reached"),
    "hub outage (503)": (lambda mp, hub, run: setattr(hub, "outage", 503), "the Hub answered HTTP 503"),
    "not a run folder": (lambda mp, hub, run: (run / "model.safetensors").unlink(), "not a finished run folder"),
}


@pytest.mark.parametrize("case", PUSH_FAILURES)
def test_cli_push_failure_is_one_sentence_with_retry(case, hub, run_copy, monkeypatch, caplog, capfd):
    breaker, expected = PUSH_FAILURES[case]
    repo = "someone-else/names" if "403" in case else REPO
    breaker(monkeypatch, hub, run_copy)
    before = tree_state(run_copy)
    caplog.set_level(logging.DEBUG)

    assert cli_main(["push", str(run_copy), "--repo-id", repo]) == 1

    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert expected in errors[0] and f"python -m trainer push {run_copy} --repo-id {repo}" in errors[0]
    assert tree_state(run_copy) == before and not hub.commit_requests
    assert hub.token not in caplog.text + "".join(capfd.readouterr()) and "hf_wrong_SECRET" not in caplog.text


@pytest.mark.slow  # a real process
def test_cli_push_bad_token_exits_nonzero_in_a_real_process(hub, run_copy, tmp_path):
    env = {**os.environ, **hub.env(tmp_path / "home"), "HF_TOKEN": "hf_wrong_SECRET"}
    proc = subprocess.run([sys.executable, "-m", "trainer", "push", str(run_copy), "--repo-id", REPO],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and proc.stdout == ""
    assert "HTTP 401" in proc.stderr and f"Retry with: python -m trainer push {run_copy}" in proc.stderr
    assert "hf_wrong_SECRET" not in proc.stderr and REPO not in hub.repos


def test_private_push_onto_an_existing_public_repo_is_refused(hub, run_copy):
    hub.create(REPO, private=False)
    initial = hub.head(REPO).oid
    with pytest.raises(HubError) as raised:
        push_run(run_copy, REPO, private=True)
    message = str(raised.value)
    assert message.startswith(f"{REPO} exists and is public; --private cannot change that") and "\n" not in message
    assert message.endswith(f"Retry with: python -m trainer push {run_copy} --repo-id {REPO} --private")
    assert not hub.repos[REPO].private and hub.head(REPO).oid == initial and not hub.commit_requests
    assert not [r for r in hub.requests if r.role == "cdn" or "/preupload/" in r.path]  # nothing uploaded

    hub.repos[REPO].private = True  # made private on the Hub: the same command now goes through
    assert push_run(run_copy, REPO, private=True).oid == hub.head(REPO).oid != initial


def test_push_run_raises_huberror(hub, tiny_run):
    with pytest.raises(HubError, match=r"^Push to someone-else/x failed: .*HTTP 403.*Retry with: python -m trainer"):
        push_run(tiny_run, "someone-else/x")


# -- load ---------------------------------------------------------------------------------------


@pytest.mark.slow  # two real processes
def test_round_trip_fresh_process_by_commit_id_then_offline(hub, tiny_run, pushed, tmp_path):
    from trainer.predict import Predictor

    expected = probs_of(Predictor.from_dir(tiny_run))
    bundled = tmp_path / "no-bundled-model"  # so only the Hub can satisfy the load
    home = tmp_path / "fresh_home"

    online = load_in_subprocess(hub, home, pushed, bundled)
    assert (online["source"], online["revision"], online["notes"]) == ("hub", pushed, [])
    assert online["weights_sha256"] == hashlib.sha256((tiny_run / "model.safetensors").read_bytes()).hexdigest()
    for got, want in zip(online["probs"], expected, strict=True):
        assert list(got) == list(want) and got == want  # same ranking, bit-identical values

    hub.stop()  # pre-seeded cache, no server, HF_HUB_OFFLINE=1
    offline = load_in_subprocess(hub, home, pushed, bundled, HF_HUB_OFFLINE="1")
    assert (offline["source"], offline["revision"]) == ("hub", pushed)
    assert offline["probs"] == online["probs"]


def test_load_by_branch_tag_and_commit_id(hub, tiny_run, pushed, tmp_path):
    hub.repos[REPO].tags["v1"] = pushed
    for revision in ("main", "v1", pushed):
        predictor, resolved = load_served_model(None, REPO, revision, tmp_path / "none")
        assert (resolved.source, resolved.repo_id, resolved.revision, resolved.notes) == ("hub", REPO, pushed, [])
        assert resolved.path.name == pushed and (resolved.path / "evidence.safetensors").is_file()
    assert predictor.metrics() is not None


def test_local_folder_comes_first_and_skips_the_hub(hub, tiny_run, tmp_path):
    _, resolved = load_served_model(str(tiny_run), REPO, "main", tmp_path / "none")
    assert (resolved.source, resolved.path, resolved.notes) == ("local folder", tiny_run, [])
    assert not hub.requests


def test_bad_local_folder_falls_through_to_the_hub(hub, pushed, tmp_path):
    _, resolved = load_served_model(str(tmp_path / "missing"), REPO, "main", tmp_path / "none")
    assert resolved.source == "hub" and "local folder" in resolved.notes[0]


def test_partial_cache_of_a_commit_is_completed_from_the_hub(hub, pushed, tiny_run, monkeypatch):
    from huggingface_hub import constants, hf_hub_download

    snapshot = Path(hf_hub_download(REPO, "config.json", revision=pushed)).parent  # an interrupted download
    assert [p.name for p in snapshot.iterdir()] == ["config.json"]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # offline, a partial snapshot is not a model
    _, resolved = load_served_model(None, REPO, pushed, tiny_run)
    assert resolved.source == "bundled" and "nothing usable" in resolved.notes[0]

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # online, the rest is downloaded
    _, resolved = load_served_model(None, REPO, pushed, tiny_run)
    assert (resolved.source, resolved.revision, resolved.path, resolved.notes) == ("hub", pushed, snapshot, [])
    assert (snapshot / "model.safetensors").read_bytes() == (tiny_run / "model.safetensors").read_bytes()
    assert any(r.path.endswith(f"/resolve/{pushed}/model.safetensors") for r in hub.requests)


def test_offline_mode_uses_the_cache_without_any_request(hub, pushed, tiny_run, monkeypatch, sent):
    from huggingface_hub import constants

    load_served_model(None, REPO, "main", tiny_run)  # seeds the cache (and refs/main)
    seen, sent_before = len(hub.requests), len(sent)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the Hub stays up: any request would reach it
    for revision in ("main", pushed):
        _, resolved = load_served_model(None, REPO, revision, tiny_run)
        assert (resolved.source, resolved.revision, resolved.notes) == ("hub", pushed, [])
    _, resolved = load_served_model(None, REPO, "never-downloaded", tiny_run)
    assert resolved.source == "bundled" and "nothing usable" in resolved.notes[0]
    assert len(hub.requests) == seen and len(sent) == sent_before  # zero requests, not even refused ones


def test_hub_down_with_cache_serves_the_cached_snapshot(hub, pushed, tiny_run, sent):
    load_served_model(None, REPO, "main", tiny_run)
    hub.stop()  # its port now refuses connections
    sent.clear()
    _, resolved = load_served_model(None, REPO, "main", tiny_run)
    assert (resolved.source, resolved.revision) == ("hub", pushed)
    assert "could not be reached" in resolved.notes[0]
    assert len(sent) == 1 and bounded(sent[0], 10), sent  # asked once with a bounded wait: no retry loop


@pytest.mark.parametrize("revision", ["main", "0123456789abcdef0123456789abcdef01234567"])
def test_network_down_nothing_cached_serves_bundled_without_retrying(hub, tiny_run, monkeypatch, sent, revision):
    url = f"http://127.0.0.1:{closed_port()}"  # connection refused
    point_at(monkeypatch, url)
    _, resolved = load_served_model(None, REPO, revision, tiny_run)
    assert resolved.source == "bundled", resolved.notes
    assert "could not be reached (ConnectError" in resolved.notes[0] and "nothing usable" in resolved.notes[1]
    assert [r.url for r in sent] == [f"{url}/api/models/{REPO}/revision/{revision}"]  # one attempt, no retry loop
    assert bounded(sent[0], 10), sent


def test_hub_outage_nothing_cached_serves_bundled_without_retrying(hub, tiny_run, sent):
    hub.outage = 503
    _, resolved = load_served_model(None, REPO, "main", tiny_run)
    assert resolved.source == "bundled"
    assert "could not be reached (HfHubHTTPError" in resolved.notes[0] and "503" in resolved.notes[0]
    assert len([r for r in hub.requests if r.role == "hub"]) == 1  # asked once: no retry loop
    assert len(sent) == 1 and bounded(sent[0], 10), sent


def test_unresponsive_hub_times_out_to_bundled(hub, tiny_run, monkeypatch, sent):
    with socket.socket() as blackhole:  # accepts connections (backlog), never answers
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        point_at(monkeypatch, f"http://127.0.0.1:{blackhole.getsockname()[1]}")
        _, resolved = load_served_model(None, REPO, "main", tiny_run, timeout=1.0)
        blackhole.setblocking(False)
        connections = 0
        while True:  # every connection the client opened is still in the backlog
            try:
                blackhole.accept()[0].close()
            except BlockingIOError:
                break
            connections += 1
    assert resolved.source == "bundled" and "Timeout" in resolved.notes[0], resolved.notes
    assert connections == 1 and len(sent) == 1, (connections, sent)  # one try, no retry loop
    assert set(sent[0].timeout.values()) == {1.0}  # the caller's timeout bounds every phase of it


def break_hub(case: str, hub: FakeHub, run: Path, monkeypatch, tmp_path: Path) -> str:
    """Set up one failure case on the fake Hub; returns the revision to ask for."""
    if case == "unknown repo":
        return "main"
    if case == "private repo, no token":
        push_run(run, REPO, private=True)
        monkeypatch.delenv("HF_TOKEN")
        return "main"
    if case == "incompatible shapes":  # config.json disagrees with the weights
        run = Path(shutil.copytree(run, tmp_path / "wrong-shapes"))
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**config, "hidden_size": 2 * config["hidden_size"]}))
    oid = push_run(run, REPO).oid
    if case == "missing file":
        hub.hide_file("model.safetensors")
    if case == "corrupt safetensors":
        hub.corrupt_file(REPO, "model.safetensors")
    if case == "bad token (401)":
        monkeypatch.setenv("HF_TOKEN", "hf_wrong_SECRET")
    if case == "token required, none sent (401)":
        hub.require_token = True
        monkeypatch.delenv("HF_TOKEN")
    return {"unknown revision": "v9", "unknown commit id": "ab" * 20}.get(case, oid)


LOAD_FAILURES = {  # case: words expected in the note
    "unknown repo": "repository not found",
    "private repo, no token": "repository not found",
    "unknown revision": "revision 'v9' does not exist",
    "unknown commit id": f"revision '{'ab' * 20}' does not exist",
    "missing file": "no model.safetensors",
    "corrupt safetensors": "could not be loaded: SafetensorError",
    "incompatible shapes": "Error(s) in loading state_dict for NameGRU: size mismatch",
    "bad token (401)": "the Hub refused access (HTTP 401): check HF_TOKEN",
    "token required, none sent (401)": "the Hub refused access (HTTP 401): check HF_TOKEN",
}


@pytest.mark.parametrize("case", LOAD_FAILURES)
def test_bad_hub_source_falls_back_to_bundled_with_a_reason(case, hub, tiny_run, monkeypatch, tmp_path, caplog, sent):
    revision = break_hub(case, hub, tiny_run, monkeypatch, tmp_path)
    expected = LOAD_FAILURES[case]
    caplog.set_level(logging.DEBUG)
    sent.clear()
    predictor, resolved = load_served_model(None, REPO, revision, tiny_run)
    assert (resolved.source, resolved.path, resolved.revision) == ("bundled", tiny_run, None)
    assert len(resolved.notes) == 1 and expected in resolved.notes[0], resolved.notes
    assert resolved.notes[0] in caplog.text  # logged too
    assert hub.token not in caplog.text and "hf_wrong_SECRET" not in caplog.text
    assert predictor.predict("Nakamura").probs
    attempts = [(r.method, r.url) for r in sent]
    assert attempts and len(set(attempts)) == len(attempts), attempts  # nothing was retried


def test_nothing_loads_raises_huberror(hub, tmp_path):
    with pytest.raises(HubError, match="No model could be loaded"):
        load_served_model(str(tmp_path / "a"), "tester/none", "main", tmp_path / "b")
