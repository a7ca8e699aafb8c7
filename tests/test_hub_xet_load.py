"""Serving a run that was pushed through Xet, the way the app's users get it: the Hub resolves the
binaries as Xet files, and huggingface_hub + hf_xet download them from the CAS (reconstruction, then
xorb byte ranges), not from the LFS-compatible CDN. Fakes: tests/fake_xet.py, tests/fake_xet_read.py.
Nothing leaves the loopback."""

from __future__ import annotations

import hashlib
import re
import shutil
import time

import pytest
from fake_xet import FakeCas, XetHub
from hub_support import REPO, closed_port, probs_of, use_fake_hub
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from trainer.hub import SERVED, load_served_model
from trainer.predict import Predictor
from trainer.push import push_run

XET_SERVED = [name for name in SERVED if name.endswith((".safetensors", ".png"))]  # stored through Xet
DEADLINE = 30.0


def fresh_machine(monkeypatch, hub: XetHub, home) -> None:
    """Another machine: its own Hub cache and hf_xet cache, a new hf_xet session, no cached Xet token."""
    from huggingface_hub.utils import _xet

    use_fake_hub(monkeypatch, hub, home, xet=True)  # also drops the retry settings push_run left behind
    monkeypatch.setenv("HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setattr(_xet, "_GLOBAL_XET_HOLDER", _xet.XetSessionHolder())
    monkeypatch.setattr(_xet, "XET_CONNECTION_INFO_CACHE", {})


@pytest.fixture
def xet_pushed(tiny_run, tmp_path, monkeypatch):
    """tiny_run pushed through Xet with the real push_run; huggingface_hub then points at the same
    fake Hub from a fresh machine (xet on). Yields the XetHub (its CAS: ``.cas``)."""
    cas = FakeCas().start()
    hub = XetHub(cas).start()
    fresh_machine(monkeypatch, hub, tmp_path / "pusher")
    push_run(tiny_run, REPO, commit_message="xet run")
    assert len(cas.shards) == 1 and len(cas.xet_files) == len(XET_SERVED)  # the fake took them as Xet files
    fresh_machine(monkeypatch, hub, tmp_path / "server")
    yield hub
    hub.stop()
    cas.stop()


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def header(request, name: str) -> str | None:
    return next((v for k, v in request.headers.items() if k.lower() == name), None)


def test_xet_round_trip_downloads_through_the_cas_and_predicts_like_the_run(xet_pushed, tiny_run, tmp_path):
    hub, cas = xet_pushed, xet_pushed.cas
    seen_hub, seen_cas = len(hub.requests), len(cas.requests)

    predictor, resolved = load_served_model(None, REPO, "main", tmp_path / "no-bundle", download_deadline=30)

    assert (resolved.source, resolved.revision, resolved.notes) == ("hub", hub.head(REPO).oid, [])
    assert probs_of(predictor) == probs_of(Predictor.from_dir(tiny_run))
    assert all((resolved.path / name).read_bytes() == (tiny_run / name).read_bytes() for name in SERVED)
    # Hub: one read token for the commit (cached for the other files); the LFS bridge (CDN) never used
    got = hub.requests[seen_hub:]
    assert [r.path for r in got if "xet-" in r.path] == [f"/api/models/{REPO}/xet-read-token/{resolved.revision}"]
    assert not [r for r in got if r.role == "cdn"]
    # CAS: per Xet file v2 (404 here), then v1 reconstruction with the read token; then xorb ranges
    calls = cas.requests[seen_cas:]
    routes = {(r.method, re.sub("[0-9a-f]{64}", "{hash}", r.path)) for r in calls}
    assert routes == {("GET", "/v2/reconstructions/{hash}"), ("GET", "/v1/reconstructions/{hash}"),
                      ("GET", "/xorb-data/default/{hash}")}  # fmt: skip
    wanted = {cas.xet_hash[sha256_of(tiny_run / name)] for name in XET_SERVED}
    asked = [r for r in calls if r.path.startswith("/v1/reconstructions/")]
    assert sorted(r.path.rsplit("/", 1)[1] for r in asked) == sorted(wanted)  # each file once
    assert {r.authorization for r in asked} == {f"Bearer {cas.read_token}"}
    fetches = [r for r in calls if r.path.startswith("/xorb-data/")]
    assert fetches and all(r.path.rsplit("/", 1)[1] in cas.stored for r in fetches)
    assert all(re.fullmatch(r"bytes=\d+-\d+", header(r, "range") or "") for r in fetches)  # ranges, not xorbs
    assert not [r for r in fetches if r.authorization]  # no token sent to the (presigned) storage URLs


def test_second_start_serves_the_cache_without_asking_the_cas(xet_pushed, tiny_run, tmp_path):
    hub, cas = xet_pushed, xet_pushed.cas
    first, _ = load_served_model(None, REPO, "main", tmp_path / "no-bundle", download_deadline=30)
    seen_hub, seen_cas = len(hub.requests), len(cas.requests)
    cas.fail = 500  # would break any download through Xet

    predictor, resolved = load_served_model(None, REPO, "main", tmp_path / "no-bundle", download_deadline=30)

    assert (resolved.source, resolved.revision, resolved.notes) == ("hub", hub.head(REPO).oid, [])
    assert probs_of(predictor) == probs_of(first)
    assert cas.requests[seen_cas:] == []  # every file was cached: no reconstruction, no xorb range
    assert [r.path for r in hub.requests[seen_hub:] if "xet-" in r.path or r.role == "cdn"] == []


def test_failed_download_of_a_new_head_keeps_the_last_complete_commit(xet_pushed, tiny_run, tmp_path, monkeypatch):
    """huggingface_hub moves refs/main to the new commit before it downloads a file; a failed download
    must not leave the cache pointing at an incomplete snapshot (else: the bundled model, now and at
    every later offline start)."""
    from huggingface_hub import constants

    hub, cas = xet_pushed, xet_pushed.cas
    first = load_served_model(None, REPO, "main", tmp_path / "no-bundle", download_deadline=30)[1].revision
    changed = tmp_path / "run2"
    shutil.copytree(tiny_run, changed)
    weights = changed / "model.safetensors"  # the same weights in new bytes: a new Xet file to download
    with safe_open(weights, "pt") as f:
        metadata = f.metadata() or {}
    save_file(load_file(weights), weights, {**metadata, "note": "second run"})
    head = push_run(changed, REPO, commit_message="second run").oid
    cas.fail, cas.fail_match = 500, "^/v./reconstructions/"

    predictor, resolved = load_served_model(None, REPO, "main", tiny_run, download_deadline=30)

    assert head == hub.head(REPO).oid != first and (resolved.source, resolved.revision) == ("hub", first)
    assert probs_of(predictor) == probs_of(Predictor.from_dir(tiny_run))
    assert resolved.notes[-1] == f"hub {REPO}@main: serving commit {first}, the last one completely in the local cache"
    assert "Xet storage" in resolved.notes[0]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # a later start without the Hub: same commit
    offline = load_served_model(None, REPO, "main", tiny_run)[1]
    assert (offline.source, offline.revision) == ("hub", first)


CAS_FAILURES = {  # case: (status, regex of the paths) of the failing CAS requests; None: the CAS is down
    "reconstruction answers 500": (500, "^/v./reconstructions/"),
    "xorb ranges answer 500": (500, "^/xorb-data/"),
    "cas down": None,
}


@pytest.mark.parametrize("case", CAS_FAILURES)
def test_failing_cas_falls_back_to_bundled_in_seconds_and_says_why(case, xet_pushed, tiny_run, tmp_path):
    """hf_xet retries for minutes with its own settings; load_served_model bounds them, so the real
    error arrives long before the download deadline and the note names the failing store."""
    hub, cas = xet_pushed, xet_pushed.cas
    seen_hub, seen_cas = len(hub.requests), len(cas.requests)
    if CAS_FAILURES[case] is None:  # the read token hands out an address nobody listens on
        hub.cas_address = f"http://127.0.0.1:{closed_port()}"
    else:
        cas.fail, cas.fail_match = CAS_FAILURES[case]

    started = time.monotonic()
    predictor, resolved = load_served_model(None, REPO, "main", tiny_run, timeout=2, download_deadline=DEADLINE)
    elapsed = time.monotonic() - started

    assert resolved.source == "bundled" and probs_of(predictor) == probs_of(Predictor.from_dir(tiny_run))
    assert elapsed < 10  # bounded retries: not the 30 s deadline
    label, store = f"hub {REPO}@main", hub.cas_address or cas.url
    why = "could not be reached" if case == "cas down" else "answered HTTP 500"
    assert resolved.notes == [
        f"{label}: the download failed (the Hub's Xet storage at {store} {why}); trying the local cache",
        f"{label} skipped: nothing usable for this revision in the local cache",
    ]
    # the failure was the CAS's: the Hub handed out a read token, the bridge (CDN) was not used instead
    assert [r for r in hub.requests[seen_hub:] if "xet-read-token" in r.path]
    assert not [r for r in hub.requests[seen_hub:] if r.role == "cdn"]
    failed = [r for r in cas.requests[seen_cas:] if cas.fail and re.search(cas.fail_match, r.path)]
    assert bool(failed) == (case != "cas down")  # down: nothing reached this CAS


def test_without_xet_the_same_files_come_from_the_bridge(xet_pushed, tiny_run, tmp_path, monkeypatch):
    """Control for the tests above: the 302 of a Xet file leads to a working CDN copy, so a client
    that ignored Xet would download there; 'nothing from the CDN' above is a real check."""
    from huggingface_hub import constants

    hub, cas = xet_pushed, xet_pushed.cas
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    seen_hub, seen_cas = len(hub.requests), len(cas.requests)

    predictor, resolved = load_served_model(None, REPO, "main", tmp_path / "no-bundle", download_deadline=30)

    assert resolved.source == "hub" and probs_of(predictor) == probs_of(Predictor.from_dir(tiny_run))
    cdn = sorted(r.path for r in hub.requests[seen_hub:] if r.role == "cdn")
    assert cdn == sorted(f"/blobs/{sha256_of(tiny_run / name)}" for name in XET_SERVED)
    assert cas.requests[seen_cas:] == []
