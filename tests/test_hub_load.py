"""Which source is served: MODEL_DIR, the Hub, its local cache or the bundled model, with the reason
for each source passed over. huggingface_hub is replaced at our boundary (`boundary`, see
hub_support.py); the one real download is in test_hub_push.py's round trip."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest
from hub_support import REPO, SHA, closed_port_url, connect_error, http_error, snapshot, use_endpoint
from huggingface_hub.errors import (
    HfHubHTTPError,
    IncompleteSnapshotError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from name_origin.hub import HubError, ResolvedModel, default_repo, load_served_model
from name_origin.model_tab import served_text


def folder_for(spec, run: Path, root: Path):
    """A snapshot folder of run for "ok", with garbled weights for "corrupt", with a config that
    disagrees with the weights for "shapes"; anything else (an exception, None) as it is."""
    if spec not in ("ok", "corrupt", "shapes"):
        return spec
    folder = snapshot(run, root)
    weights, config = folder / "model.safetensors", json.loads((folder / "config.json").read_text())
    if spec == "corrupt":
        weights.write_bytes(b"\xff" * 8 + weights.read_bytes()[8:])  # safetensors: an absurd header length
    if spec == "shapes":
        (folder / "config.json").write_text(json.dumps({**config, "hidden_size": 2 * config["hidden_size"]}))
    return folder


CASES = {  # case: (probe, download, cache; source served, calls made, words of each note)
    "hub answers": (None, "ok", None, "hub", ["probe", "download"], []),
    "hub down, cached": (connect_error(), None, "ok", "hub", ["probe", "cache"],
                         ["could not be reached (ConnectError"]),
    "hub down, nothing cached": (connect_error(), None, None, "bundled", ["probe", "cache"],
                                 ["could not be reached (ConnectError", "nothing usable for this revision"]),
    "hub outage (503), cached": (http_error(HfHubHTTPError, 503), None, "ok", "hub", ["probe", "cache"],
                                 ["could not be reached (HfHubHTTPError"]),
    "download fails, cached": (None, OSError("read timed out"), "ok", "hub", ["probe", "download", "cache"],
                               ["the download failed (OSError: read timed out); trying the local cache"]),
    "cache incomplete": (connect_error(), None, IncompleteSnapshotError("missing", snapshot_path="x"), "bundled",
                         ["probe", "cache"], ["could not be reached", "holds only part of this revision"]),
    "corrupt download": (None, "corrupt", None, "bundled", ["probe", "download"],
                         ["could not be loaded: SafetensorError"]),
    "incompatible download": (None, "shapes", None, "bundled", ["probe", "download"],
                              ["could not be loaded: RuntimeError: Error(s) in loading state_dict for NameGRU"]),
    "revision not found": (http_error(RevisionNotFoundError, 404), None, "ok", "bundled", ["probe"],
                           ["revision 'main' does not exist"]),
    "repo not found": (http_error(RepositoryNotFoundError, 404), None, "ok", "bundled", ["probe"],
                       ["repository not found or not accessible with this token (HTTP 404)"]),
    "token refused (401)": (http_error(HfHubHTTPError, 401), None, "ok", "bundled", ["probe"],
                            ["the Hub refused access (HTTP 401): check HF_TOKEN"]),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_which_source_is_served(case, boundary, tiny_run, tmp_path, caplog):
    probe, download, cache, source, calls, notes = CASES[case]
    boundary.probe = probe
    boundary.download, boundary.cache = (folder_for(spec, tiny_run, tmp_path) for spec in (download, cache))
    predictor, resolved = load_served_model(None, REPO, "main", tiny_run)
    assert (resolved.source, boundary.calls) == (source, calls)
    assert (resolved.revision, resolved.repo_id) == ((SHA, REPO) if source == "hub" else (None, None))
    assert len(resolved.notes) == len(notes), resolved.notes
    assert all(n in got for n, got in zip(notes, resolved.notes, strict=True)), resolved.notes
    assert all(note in caplog.text for note in resolved.notes)  # logged too
    assert predictor.predict("Nakamura").probs


def test_offline_mode_uses_only_the_cache(boundary, tiny_run, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    boundary.cache = snapshot(tiny_run, tmp_path)
    _, resolved = load_served_model(None, REPO, SHA, tiny_run)
    assert (resolved.source, resolved.revision, resolved.notes, boundary.calls) == ("hub", SHA, [], ["cache"])


def test_local_folder_comes_first_and_skips_the_hub(boundary, tiny_run, tmp_path):
    _, resolved = load_served_model(str(tiny_run), REPO, "main", tmp_path / "none")
    assert (resolved.source, resolved.path, resolved.notes, boundary.calls) == ("local folder", tiny_run, [], [])


def test_broken_local_folder_falls_through_to_the_hub(boundary, tiny_run, tmp_path):
    broken = Path(shutil.copytree(tiny_run, tmp_path / "broken"))
    (broken / "model.safetensors").unlink()
    boundary.download = snapshot(tiny_run, tmp_path)
    _, resolved = load_served_model(str(broken), REPO, "main", tmp_path / "none")
    assert resolved.source == "hub" and resolved.notes == ["local folder broken could not be loaded: "
                                                           "FileNotFoundError: no model.safetensors"]  # fmt: skip


def test_no_repo_skips_the_hub_and_nothing_loading_raises(boundary, tmp_path):
    with pytest.raises(HubError, match="No model could be loaded: local folder .* could not be loaded"):
        load_served_model(str(tmp_path / "a"), None, "main", tmp_path / "b")
    assert boundary.calls == []


@pytest.mark.parametrize("port", ["closed", "silent"])
def test_offline_start_serves_the_bundled_model_within_15_s(port, tiny_run, tmp_path, monkeypatch):
    """The real huggingface_hub against a port that refuses connections (one refused probe, no
    retry loop), or one that accepts them and never answers (the probe's timeout bounds it)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections wait in the backlog: never accepted, never answered
        url = closed_port_url() if port == "closed" else f"http://127.0.0.1:{silent.getsockname()[1]}"
        use_endpoint(monkeypatch, url, tmp_path / "home")
        start = time.monotonic()
        _, resolved = load_served_model(None, REPO, "main", tiny_run, timeout=1.0)
        elapsed = time.monotonic() - start
    assert elapsed < 15 and resolved.source == "bundled"
    assert f"could not be reached ({'ConnectError' if port == 'closed' else 'ReadTimeout'}" in resolved.notes[0]


def test_default_repo_is_the_models_entry_of_the_readme(tmp_path):
    assert default_repo(Path(__file__).resolve().parent.parent / "README.md") == "name-origin/surname-bigru"
    (tmp_path / "README.md").write_text("---\nmodels: me/names\n---\n# x\n")
    assert default_repo(tmp_path / "README.md") == "me/names"
    (tmp_path / "README.md").write_text("# no front matter\n")
    assert default_repo(tmp_path / "README.md") is None and default_repo(tmp_path / "missing.md") is None


def test_served_text_names_the_bundled_model_without_the_server_path(tiny_run):
    text = served_text(ResolvedModel(tiny_run, "bundled", None, ["hub me/names@main skipped: x"]))
    assert text.startswith("**Serving** the bundled model (`model/` in this repository).") and str(tiny_run) not in text
    text = served_text(ResolvedModel(tiny_run, "local folder", None, []))
    assert text == "**Serving** the local folder model: tiny." and str(tiny_run.parent) not in text  # no server path
