"""Serving from the fake Hub: by branch, tag or commit id, in a fresh process, from the cache and
offline, and every failure path falling back to the bundled model with a reason."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from fake_hub import FakeHub
from hub_support import (
    REPO,
    bounded,
    closed_port,
    load_in_subprocess,
    point_at,
    probs_of,
)

from name_origin.hub import HubError, load_served_model
from trainer.push import push_run


@pytest.mark.slow  # two real processes
def test_round_trip_fresh_process_by_commit_id_then_offline(hub, tiny_run, pushed, tmp_path):
    from name_origin.predict import Predictor

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


def test_every_request_of_a_hub_load_is_time_bounded(hub, pushed, tmp_path, sent):
    """A Hub that answers and then stalls cannot hang start-up: no request goes out without a
    timeout (snapshot_download's repo listing would), and the file list comes with the one info call."""
    sent.clear()
    _, resolved = load_served_model(None, REPO, "main", tmp_path / "none", timeout=3.0)
    assert (resolved.source, resolved.revision) == ("hub", pushed)
    assert sent and [r for r in sent if not bounded(r, 10)] == []
    assert not [r for r in sent if "/tree/" in r.url]
    assert sum("/api/models/" in r.url for r in sent) == 1


@pytest.mark.parametrize("cached", [False, True])
def test_hub_that_stalls_after_answering_costs_at_most_the_deadline(cached, hub, pushed, tiny_run, tmp_path):
    if cached:  # a complete snapshot of main from an earlier start
        assert load_served_model(None, REPO, "main", tmp_path / "none")[1].source == "hub"
    hub.stall = r"/resolve/"  # the info call answers; every file request then hangs
    start = time.monotonic()
    _, resolved = load_served_model(None, REPO, "main", tiny_run, timeout=0.5, download_deadline=2.0)
    elapsed = time.monotonic() - start
    hub.released.set()  # let the abandoned download thread fail and end before the next test
    for thread in threading.enumerate():
        if thread.name == "hub-download":
            thread.join(30)
    assert elapsed < 6, elapsed
    if cached:
        assert (resolved.source, resolved.revision) == ("hub", pushed)
    else:
        assert (resolved.source, resolved.revision) == ("bundled", None)
        assert "did not deliver the model files within 2 s" in resolved.notes[0], resolved.notes


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

    hub.repos[REPO].tags["v1"] = pushed
    for revision in ("main", "v1"):  # seeds the cache, refs/main and refs/v1
        load_served_model(None, REPO, revision, tiny_run)
    seen, sent_before = len(hub.requests), len(sent)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # the Hub stays up: any request would reach it
    for revision in ("main", "v1", pushed):
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
