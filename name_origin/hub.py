"""Hugging Face Hub, serving side: which model the app serves (pushing: trainer/push.py).

Sources, the first that loads wins: MODEL_DIR, then the Hub repo at a revision (a branch, a tag
or, best, the commit id `python -m trainer push` printed), then huggingface_hub's local cache of
that repo and revision, then the bundled `model/`. Every source passed over leaves a note: logged,
and shown on the Model tab.

The Hub is asked once, with a bounded wait (`model_info(timeout=...)`), before anything is
downloaded, and when that probe fails we go straight to the cache (`local_files_only=True`), so an
offline start serves quickly (hf_hub_download retries a refused connection with backoff when a
file is not cached). The probe also lists the revision's files and its commit id; each served file
is then fetched with hf_hub_download at that commit, every request bounded by huggingface_hub's
own HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT (snapshot_download's repo-info request has no
timeout, so a Hub that answers the probe and then stalls could hang the start). Deciding whether
a cached snapshot is complete is snapshot_download's job (`local_files_only=True`). Nothing here
edits the cache or the environment (HF_HUB_OFFLINE, HF_XET_* and the timeouts are the user's).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, constants, hf_hub_download, metadata_load, snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

log = logging.getLogger(__name__)

REQUIRED = ("config.json", "model.safetensors")  # what Predictor.from_dir cannot do without
FIGURES = ("accuracy_curve.png", "reliability.png", "confusion.png", "coverage.png")  # shown on the Model tab
SERVED = [
    *REQUIRED,
    "evidence.safetensors",
    "heldout.safetensors",
    "metrics.json",
    "external.json",
    "model.onnx",  # runtime.ONNX_NAME: served by ONNX Runtime when it agrees with the weights
    *FIGURES,
]  # downloaded
PROBE_TIMEOUT = 4.0  # seconds the one reachability probe may wait for the Hub


class HubError(RuntimeError):
    """A Hub operation failed; the message is one clear sentence plus the retry command."""


def short(e: BaseException, hide: Path | None = None) -> str:
    """`Type: message` on one line, at most 200 characters; with `hide`, that folder's absolute
    path (as given and resolved) is written as its name as given, so the page never shows the
    server's paths."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    folder = Path(hide) if hide is not None else None
    name = folder and (folder.name or folder.resolve().name)  # "" for the root: nothing to hide
    if name:  # absolute paths only: a relative one may be a common word
        absolute = {str(folder.resolve())} | ({str(folder)} if folder.is_absolute() else set())
        for where in sorted(absolute, key=len, reverse=True):
            text = text.replace(where, name)
    return f"{type(e).__name__}: {text}"[:200].rstrip(": ")


def default_repo(readme: Path) -> str | None:
    """The first `models:` entry of the YAML front matter of `readme` (the Space's README.md): the
    Hub repo the app serves unless MODEL_REPO says otherwise, so it is written in one place only.
    None when the file, its front matter or the entry is missing."""
    try:
        metadata = metadata_load(readme) or {}
    except FileNotFoundError:
        return None
    models = metadata.get("models")
    models = [models] if isinstance(models, str) else models or []
    return str(models[0]) if models else None


@dataclass(frozen=True)
class ResolvedModel:
    path: Path  # local folder holding config.json + model.safetensors (+ metrics, evidence, ...)
    source: str  # "local folder", "hub", or "bundled"
    revision: str | None  # commit id served, when from the Hub
    notes: list[str]  # why earlier sources were passed over (logged and shown on the page)
    repo_id: str | None = None  # the Hub repo, when from the Hub


def load_served_model(
    model_dir: str | None,
    repo_id: str | None,
    revision: str | None,
    bundled: Path,
    *,
    timeout: float = PROBE_TIMEOUT,
):
    """(Predictor, ResolvedModel) from the first source that loads: MODEL_DIR, then the Hub repo
    at revision ("main" when None) or its local cache, then the bundled folder. Never raises for a
    bad source, whose reason goes to `notes` (and the log); raises HubError when none loads.
    `timeout` bounds the one probe that decides whether the Hub can be reached."""
    notes: list[str] = []
    if model_dir:
        loaded = try_load(Path(model_dir), "local folder", f"local folder {Path(model_dir).name}", notes)
        if loaded:
            return loaded
    if repo_id:
        revision = revision or "main"
        snapshot = hub_snapshot(repo_id, revision, timeout, notes)
        if snapshot is not None:  # the cache's snapshot folders are named by commit id
            where = f"hub {repo_id}@{revision} (commit {snapshot.name})"
            loaded = try_load(snapshot, "hub", where, notes, revision=snapshot.name, repo_id=repo_id)
            if loaded:
                return loaded
    loaded = try_load(Path(bundled), "bundled", "the bundled model (model/)", notes)
    if loaded:
        return loaded
    raise HubError("No model could be loaded: " + "; ".join(notes))


def add_note(notes: list[str], note: str) -> None:
    log.warning("%s", note)
    notes.append(note)


def try_load(path: Path, source: str, where: str, notes: list[str], *, revision=None, repo_id=None):
    """(Predictor, ResolvedModel), or None with the reason noted. Strict safetensors load only.
    Notes are shown on the page: they name folders by their last part, never the server's paths
    (the log has them)."""
    from name_origin.predict import Predictor  # torch: not for `trainer push`, which imports this module

    try:
        missing = [name for name in REQUIRED if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"no {', '.join(missing)}")
        predictor = Predictor.from_dir(path)
    except Exception as e:  # noqa: BLE001 - a broken source must not crash the app: try the next one
        log.warning("could not load %s", path.resolve())
        add_note(notes, f"{where} could not be loaded: {short(e, hide=path)}")
        return None
    log.info("serving the model from %s (%s)", where, path.resolve())
    return predictor, ResolvedModel(path, source, revision, notes, repo_id)


def hub_snapshot(repo_id: str, revision: str, timeout: float, notes: list[str]) -> Path | None:
    """The snapshot folder of repo_id@revision: downloaded when the Hub answers the probe, else
    (or when the download fails) from the local cache; None, with a note, when neither has it."""
    label = f"hub {repo_id}@{revision}"
    try:
        if constants.is_offline_mode():
            log.info("%s: HF_HUB_OFFLINE is set, using the local cache only", label)
        elif (info := probe(repo_id, revision, timeout, label, notes)) is not None:
            try:
                return download(repo_id, info)
            except Exception as e:  # noqa: BLE001 - answered, then failed (network, storage): the cache may hold it
                add_note(notes, f"{label}: the download failed ({short(e)}); trying the local cache")
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=SERVED, local_files_only=True))
    except Exception as e:  # noqa: BLE001 - any failure means: fall back to the next source
        add_note(notes, f"{label} skipped: {hub_reason(e, revision)}")
        return None


def download(repo_id: str, info) -> Path:
    """Fetch the SERVED files the probed revision holds, at its commit id (never a mix of commits);
    returns the cache's snapshot folder. Raises FileNotFoundError when a REQUIRED file is missing."""
    present = {s.rfilename for s in info.siblings or []}
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in commit {info.sha}")
    paths = [hf_hub_download(repo_id, name, revision=info.sha) for name in SERVED if name in present]
    return Path(paths[0]).parent


def probe(repo_id: str, revision: str, timeout: float, label: str, notes: list[str]):
    """Ask the Hub once, waiting at most `timeout` s, about repo_id@revision: its ModelInfo (commit
    id and file list) when it answers; None, with a note, when it cannot be reached or answers 5xx;
    raises the HfHubHTTPError when it answers no (unknown repo or revision, refused token): the
    cache must not hide that."""
    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=timeout)  # the endpoint and token of now
    except HfHubHTTPError as e:
        if e.response.status_code < 500:
            raise
        reason: Exception = e
    except Exception as e:  # noqa: BLE001 - refused, timed out, offline, not a Hub: whatever it is, try the cache
        reason = e
    add_note(notes, f"{label}: the Hub could not be reached ({short(reason)}); trying the local cache")
    return None


def hub_reason(e: Exception, revision: str) -> str:
    """Why the Hub source was skipped, in a few words (never includes the token)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, RevisionNotFoundError):
        return f"revision {revision!r} does not exist"
    if isinstance(e, RepositoryNotFoundError):
        return f"repository not found or not accessible with this token (HTTP {status})"
    if isinstance(e, IncompleteSnapshotError):
        return "the local cache holds only part of this revision (an interrupted download)"
    if isinstance(e, LocalEntryNotFoundError):
        return "nothing usable for this revision in the local cache"
    if isinstance(e, HfHubHTTPError) and status == 401:
        return "the Hub refused access (HTTP 401): check HF_TOKEN or `hf auth login`"
    if isinstance(e, HfHubHTTPError):
        return f"the Hub answered HTTP {status}"
    return short(e)
