"""Pushing a run: one real round trip through the HTTP fake Hub (push in one process, load the
pushed commit in a fresh one, same predictions, then the same commit from the cache with the Hub
gone), and every push failure as one sentence with the command to retry."""

from __future__ import annotations

import logging
import time

import pytest
from hub_support import (
    REPO,
    SHA,
    closed_port_url,
    connect_error,
    http_error,
    in_fresh_process,
    load_in_fresh_process,
    probs_of,
    use_endpoint,
)
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from name_origin.hub import HubError, load_served_model
from trainer.cli import main as cli_main
from trainer.push import IGNORED, push_run, run_files

PUSHED = {  # what a run folder holds (report.py may add more): all of it is pushed
    "README.md", "accuracy_curve.png", "config.json", "confusion.png", "coverage.csv", "coverage.png",
    "evidence.safetensors", "metrics.csv", "metrics.json", "model.safetensors", "per_class.csv", "reliability.png",
    "model.onnx",
}  # fmt: skip


def test_run_files_skip_resume_temp_and_hidden(run_copy, tiny_run):
    assert set(run_files(run_copy)) == {p.name for p in tiny_run.iterdir()} >= PUSHED


@pytest.mark.slow  # three real processes
def test_round_trip_push_then_fresh_process_loads_the_commit(
    hub, run_copy, tiny_run, tmp_path, monkeypatch, one_thread
):
    from name_origin.predict import Predictor

    push = in_fresh_process(["-m", "trainer", "push", str(run_copy), "--repo-id", REPO, "--commit-message", "tiny"],
                            hub.env(tmp_path / "pusher"))  # fmt: skip
    assert push.returncode == 0, push.stderr
    oid, files = hub.head(REPO)
    assert f"commit {oid}" in push.stdout and f"{hub.url}/{REPO}/commit/{oid}" in push.stdout
    assert len(hub.commit_payloads) == 1 and hub.commit_payloads[0][0]["value"]["summary"] == "tiny"
    assert set(files) == set(run_files(run_copy)) and all(files[f] == (run_copy / f).read_bytes() for f in files)
    lfs = {line["value"]["path"] for line in hub.commit_payloads[0] if line["key"] == "lfsFile"}
    assert lfs == {f for f in files if f.endswith((".safetensors", ".png", ".onnx"))}  # plain LFS, not Xet
    assert hub.token not in push.stdout + push.stderr

    bundled, home = tmp_path / "no-bundled-model", tmp_path / "server"  # only the Hub can satisfy the load
    online = load_in_fresh_process(hub, home, oid, bundled)
    assert (online["source"], online["revision"], online["notes"]) == ("hub", oid, [])
    assert online["runtime"].startswith("ONNX Runtime (model.onnx"), online["runtime"]  # the pushed export serves
    assert online["probs"] == probs_of(Predictor.from_dir(tiny_run))  # same ranking, bit-identical values

    hub.stop()  # its port refuses connections: the commit is served from the cache
    use_endpoint(monkeypatch, hub.url, home)
    start = time.monotonic()
    _, resolved = load_served_model(None, REPO, oid, bundled)
    assert time.monotonic() - start < 15  # an offline start serves within 15 s
    assert (resolved.source, resolved.revision) == ("hub", oid)
    assert len(resolved.notes) == 1 and "could not be reached (ConnectError" in resolved.notes[0]


def test_push_is_one_upload_folder_call_printing_commit_and_url(boundary, run_copy, capsys):
    assert cli_main(["push", str(run_copy), "--repo-id", REPO, "--commit-message", "tiny"]) == 0
    (call,) = boundary.pushed
    assert call == {"repo_id": REPO, "folder_path": run_copy, "commit_message": "tiny", "ignore_patterns": IGNORED}
    out = capsys.readouterr().out
    assert f"commit {SHA}" in out and f"https://huggingface.co/{REPO}/commit/{SHA}" in out


PUSH_FAILURES = {  # case: (what create_repo raises, words expected in the sentence)
    "bad token (401)": (http_error(HfHubHTTPError, 401), "the Hub rejected the token (HTTP 401)"),
    "foreign namespace (403)": (http_error(HfHubHTTPError, 403), f"may not create or write {REPO} (HTTP 403)"),
    "not found (404)": (http_error(RepositoryNotFoundError, 404), f"repository {REPO} was not found"),
    "hub outage (503)": (http_error(HfHubHTTPError, 503), "the Hub answered HTTP 503"),
    "unreachable": (connect_error(), "the Hub at https://hub.test could not be reached (ConnectError"),
    "disk": (PermissionError("[Errno 13] Permission denied: 'model.safetensors'"), "PermissionError: [Errno 13]"),
}


@pytest.mark.parametrize("case", [*PUSH_FAILURES, "no token", "not a run folder"])
def test_push_failure_is_one_sentence_with_retry(case, boundary, run_copy, monkeypatch, caplog):
    boundary.push_error, expected = PUSH_FAILURES.get(case, (None, ""))
    if case == "no token":
        monkeypatch.setattr("trainer.push.get_token", lambda: None)
        expected = "No Hugging Face token found: set HF_TOKEN or run `hf auth login`."
    if case == "not a run folder":
        (run_copy / "model.safetensors").unlink()
        expected = f"{run_copy} is not a finished run folder (no model.safetensors)."
    caplog.set_level(logging.DEBUG)
    assert cli_main(["push", str(run_copy), "--repo-id", REPO]) == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0] and expected in errors[0], errors
    assert errors[0].endswith(f"Retry with: python -m trainer push {run_copy} --repo-id {REPO}")
    assert not boundary.pushed and "hf_fake_SECRET" not in caplog.text


def test_private_push_onto_an_existing_public_repo_is_refused(boundary, run_copy):
    boundary.public = True
    with pytest.raises(HubError) as raised:
        push_run(run_copy, REPO, private=True)
    message = str(raised.value)
    assert message.startswith(f"{REPO} exists and is public; --private cannot change that") and "\n" not in message
    assert message.endswith(f"Retry with: python -m trainer push {run_copy} --repo-id {REPO} --private")
    assert not boundary.pushed  # nothing uploaded
    boundary.public = False  # made private on the Hub: the same command now goes through
    assert push_run(run_copy, REPO, private=True).oid == SHA


def test_push_to_a_closed_port_is_one_sentence(run_copy, tmp_path, monkeypatch):
    """No fake at the boundary: huggingface_hub's own error for a refused connection."""
    use_endpoint(monkeypatch, closed_port_url(), tmp_path / "home")
    monkeypatch.setenv("HF_TOKEN", "hf_fake_SECRET")
    with pytest.raises(HubError, match=r"^Push to .* failed: the Hub at http://127.0.0.1:\d+ could not be reached"):
        push_run(run_copy, REPO)
