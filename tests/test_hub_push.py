"""Pushing a run to the fake Hub (tests/fake_hub.py): one commit with every artifact, and one clear
sentence with the command to retry for every failure. Nothing leaves the loopback."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_support import (
    ARTIFACTS,
    REPO,
    ROOT,
    closed_port,
    point_at,
    tree_state,
)

from name_origin.hub import HubError
from trainer.cli import main as cli_main
from trainer.push import push_run, run_files

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
