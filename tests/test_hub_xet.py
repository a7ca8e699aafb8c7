"""Pushing a run the way a real user's push goes: through Xet (hf_xet installed, HF_HUB_DISABLE_XET off).
The fake Hub hands out a write token for the fake CAS of tests/fake_xet.py, which rebuilds every
uploaded file from its xorbs and shard. Nothing leaves the loopback."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time

import pytest
from fake_xet import FakeCas, XetHub
from hub_support import REPO, closed_port, tree_state, use_fake_hub

from trainer.hub import XET_RETRIES, HubError
from trainer.push import push_run

BINARY = (".safetensors", ".png")  # what the fake Hub's preupload sends to LFS, hence to Xet


@pytest.fixture
def xet_hub(tmp_path, monkeypatch):
    """A started fake Hub + fake CAS; huggingface_hub points at the Hub with xet ON, HF_TOKEN set to
    the Hub's token, and a fresh hf_xet session and cache (no chunk of another test to dedup against)."""
    from huggingface_hub.utils import _xet

    cas = FakeCas().start()
    hub = XetHub(cas).start()
    home = tmp_path / "hf_home"
    use_fake_hub(monkeypatch, hub, home, xet=True)
    monkeypatch.setenv("HF_XET_CACHE", str(home / "xet"))
    monkeypatch.setattr(_xet, "_GLOBAL_XET_HOLDER", _xet.XetSessionHolder())  # created at first use, after the env
    yield hub
    hub.stop()
    cas.stop()


def local_files(run, names) -> dict[str, tuple[str, int]]:
    return {n: (hashlib.sha256((run / n).read_bytes()).hexdigest(), (run / n).stat().st_size) for n in names}


def test_xet_push_sends_binaries_to_the_cas_and_commits_once(xet_hub, run_copy, artifacts):
    cas = xet_hub.cas
    commit = push_run(run_copy, REPO, commit_message="xet run")

    binaries = {name for name in artifacts if name.endswith(BINARY)}
    local = local_files(run_copy, artifacts)
    assert binaries and artifacts - binaries  # both kinds are pushed
    # The CAS: dedup queries, xorbs (grant API refused: direct), then one shard (v2 refused: v1) listing
    # every binary file by sha256 and size; the fake CAS refuses a shard whose xorbs it did not get first
    routes = {(r.method, re.sub("[0-9a-f]{64}", "{hash}", r.path)) for r in cas.requests}
    assert routes == {("GET", "/v1/chunks/default/{hash}"), ("POST", "/v1/xorb-grants/default/{hash}"),
                      ("POST", "/v1/xorbs/default/{hash}"), ("POST", "/v2/shards"), ("POST", "/v1/shards")}  # fmt: skip
    assert len(cas.paths("/v1/shards")) == len(cas.shards) == 1 and cas.requests[-1].path == "/v1/shards"
    assert {(f.sha256, f.size) for f in cas.shards[0]} == {local[name] for name in binaries}
    assert all(cas.files[local[name][0]] == (run_copy / name).read_bytes() for name in binaries)  # rebuilt
    chunk_bytes = sum(len(chunk) for chunks in cas.xorbs.values() for chunk in chunks)
    assert 0 < chunk_bytes <= sum(local[name][1] for name in binaries)  # dedup can only shrink it
    # The Hub: one commit; binaries as lfsFile (sha256, size), text inline; the classic LFS path unused
    assert len(xet_hub.commit_requests) == 1 and commit.oid == xet_hub.head(REPO).oid
    ops = xet_hub.commit_requests[0]["operations"]
    lfs = {op["value"]["path"]: (op["value"]["oid"], op["value"]["size"]) for op in ops if op["key"] == "lfsFile"}
    assert lfs == {name: local[name] for name in binaries}
    assert {op["value"]["path"] for op in ops if op["key"] == "file"} == artifacts - binaries
    files = xet_hub.files(REPO)
    assert set(files) == artifacts | {".gitattributes"}
    assert all(files[name] == (run_copy / name).read_bytes() for name in artifacts)
    assert not [r for r in xet_hub.requests if r.role == "cdn" or r.path.endswith("/info/lfs/objects/batch")]


def test_second_push_resends_no_xorb_and_commits_only_the_change(xet_hub, run_copy, artifacts):
    cas = xet_hub.cas
    push_run(run_copy, REPO)
    xorbs, shards = cas.paths("/v1/xorbs/"), len(cas.shards)
    (run_copy / "metrics.csv").write_text("epoch,loss\n1,0.5\n")
    push_run(run_copy, REPO, commit_message="again")

    assert cas.paths("/v1/xorbs/") == xorbs  # every chunk is known: deduplicated, no data sent again
    assert len(cas.shards) == shards + 1  # hf_xet still registers the binaries again, in a new shard
    assert {f.sha256 for f in cas.shards[-1]} == {f.sha256 for f in cas.shards[0]}
    ops = {op["value"]["path"]: op["key"] for op in xet_hub.commit_requests[1]["operations"]}
    assert len(xet_hub.commit_requests) == 2 and ops == {"metrics.csv": "file"}  # unchanged files left out
    assert xet_hub.files(REPO)["metrics.csv"] == b"epoch,loss\n1,0.5\n"
    assert xet_hub.head(REPO).files.keys() == artifacts | {".gitattributes"}


def test_hub_token_goes_to_the_hub_only_and_the_cas_gets_the_xet_token(xet_hub, run_copy, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    push_run(run_copy, REPO)
    cas = xet_hub.cas

    token_requests = [r for r in xet_hub.requests if "/xet-write-token/" in r.path]
    assert [r.path for r in token_requests] == [f"/api/models/{REPO}/xet-write-token/main"]
    assert {r.authorization for r in xet_hub.requests} == {f"Bearer {xet_hub.token}"}  # token route included
    assert cas.requests and {r.authorization for r in cas.requests} == {f"Bearer {cas.access_token}"}
    assert not [r for r in cas.requests if any(xet_hub.token in v for v in r.headers.values())]
    assert not [r for r in xet_hub.requests if cas.access_token in (r.authorization or "")]
    output = caplog.text + "".join(capfd.readouterr())
    assert xet_hub.token not in output and cas.access_token not in output


def test_the_cas_refuses_a_wrong_xet_token(xet_hub, run_copy):
    """The fake CAS checks the token it gets, so the assertions above on what it got mean something.
    A 401 is not retried: this fails at once with hf_xet's default retry settings."""
    other = FakeCas(access_token="xet_other_token").start()  # expects another token than the Hub hands out
    xet_hub.cas_address = other.url
    try:
        with pytest.raises(HubError, match="401"):
            push_run(run_copy, REPO)
    finally:
        other.stop()
    assert other.requests and {r.authorization for r in other.requests} == {f"Bearer {xet_hub.cas.access_token}"}
    assert not other.xorbs and not other.shards and not xet_hub.commit_requests


CAS_FAILURES = {  # case: (how to break it, words expected in the message)
    "cas answers 500": (
        lambda hub: setattr(hub.cas, "fail", 500),
        lambda hub: f"the Hub's Xet storage at {hub.cas.url} answered HTTP 500;",
    ),
    "cas down": (
        lambda hub: setattr(hub, "cas_address", f"http://127.0.0.1:{closed_port()}"),
        lambda hub: f"the Hub's Xet storage at {hub.cas_address} could not be reached;",
    ),
}


@pytest.mark.parametrize("case", CAS_FAILURES)
def test_cas_failure_is_one_huberror_and_nothing_committed(case, xet_hub, run_copy):
    """With hf_xet's own retry settings this takes 6-8 minutes; push_run bounds them."""
    breaker, expected = CAS_FAILURES[case]
    breaker(xet_hub)
    before = tree_state(run_copy)

    started = time.monotonic()
    with pytest.raises(HubError) as raised:
        push_run(run_copy, REPO)
    elapsed = time.monotonic() - started

    message = str(raised.value)
    assert message.startswith(f"Push to {REPO} failed: ") and "\n" not in message and expected(xet_hub) in message
    assert message.endswith(f"Retry with: python -m trainer push {run_copy} --repo-id {REPO}")
    assert xet_hub.token not in message and xet_hub.cas.access_token not in message
    assert "HF_HUB_DISABLE_XET=1" in message  # the way around a failing store
    assert elapsed < 30  # push_run's bounded retries
    assert not xet_hub.commit_requests and tree_state(run_copy) == before


def test_retry_settings_the_user_chose_are_kept(xet_hub, run_copy, monkeypatch):
    monkeypatch.setenv("HF_XET_CLIENT_RETRY_MAX_ATTEMPTS", "1")
    push_run(run_copy, REPO)
    assert os.environ["HF_XET_CLIENT_RETRY_MAX_ATTEMPTS"] == "1"
    assert os.environ["HF_XET_CLIENT_RETRY_BASE_DELAY"] == XET_RETRIES["HF_XET_CLIENT_RETRY_BASE_DELAY"]
