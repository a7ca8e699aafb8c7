"""Hugging Face Hub, serving side: resolve the model the app serves (pushing: trainer/push.py).

MODEL_DIR, then the Hub repo at a pinned revision (standard cache, HF_HUB_OFFLINE honoured),
then the bundled folder. The Hub is asked once, with a bounded timeout and no retries, before any
download: when it cannot be reached we go straight to the cache, so huggingface_hub's retry loops
(up to ~23 s of backoff on a refused connection) are never entered. That one call also lists the
files; they are then fetched one by one under an overall deadline, so a Hub that answers and then
stalls costs at most that deadline. A cached snapshot counts only when it holds every REQUIRED
file (an interrupted download is fetched again).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import httpx2
from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

log = logging.getLogger(__name__)

REQUIRED = ("config.json", "model.safetensors")  # what Predictor.from_dir cannot do without
FIGURES = ("accuracy_curve.png", "reliability.png", "confusion.png", "coverage.png")  # shown on the Model tab
SERVED = (*REQUIRED, "evidence.safetensors", "metrics.json", *FIGURES)  # what the app downloads
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
# hf_xet's defaults (5 attempts, 3 s base delay) make a failing Xet store cost 6-8 minutes before an
# error, uploads and downloads alike; these make it a few seconds. Values the user set win.
XET_RETRIES = {"HF_XET_CLIENT_RETRY_MAX_ATTEMPTS": "3", "HF_XET_CLIENT_RETRY_BASE_DELAY": "1s"}
XET_ROUTE = re.compile(r"/v\d+/(?:chunks|xorbs|xorb-grants|shards|reconstructions)/|CAS Client Error")


class HubError(RuntimeError):
    """A Hub operation failed; the message is one clear sentence plus the retry command."""


def bound_xet_retries() -> None:
    """XET_RETRIES where unset: hf_xet reads them when its session starts (the first transfer)."""
    for name, value in XET_RETRIES.items():
        os.environ.setdefault(name, value)


def xet_failure(e: BaseException) -> str | None:
    """Why hf_xet failed, as "the Hub's Xet storage at URL answered HTTP N / could not be reached"
    (its errors, ConnectionError on upload and RuntimeError on download, name the store's URL); else None."""
    text = str(e)
    if not isinstance(e, (OSError, RuntimeError)) or not XET_ROUTE.search(text):
        return None
    url, status = re.search(r"(https?://[^\s/)]+)", text), re.search(r"\((\d{3}) [A-Za-z]", text)
    where = f" at {url.group(1)}" if url else ""
    return f"the Hub's Xet storage{where} " + (f"answered HTTP {status.group(1)}" if status else "could not be reached")


def short(e: BaseException) -> str:
    """`Type: message` on one line, at most 200 characters."""
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"{type(e).__name__}: {text}"[:200].rstrip(": ")


# -- serve --------------------------------------------------------------------------------------


@dataclass
class ResolvedModel:
    path: Path  # local folder holding config.json + model.safetensors (+ metrics, evidence, ...)
    source: str  # "local folder", "hub", or "bundled"
    revision: str | None  # commit id / revision served, when from the Hub
    notes: list[str]  # why earlier sources were skipped (logged and shown on the page)
    repo_id: str | None = None  # the Hub repo, when from the Hub


def load_served_model(
    model_dir: str | None,
    repo_id: str | None,
    revision: str | None,
    bundled: Path,
    *,
    timeout: float = 4.0,
    download_deadline: float = 60.0,
):
    """(Predictor, ResolvedModel) from the first source that loads: MODEL_DIR, then the Hub repo
    at revision (branch, tag or commit id), then the bundled folder. Never raises for a bad source:
    its reason goes to `notes` (and the log). `timeout` bounds the one Hub round trip made before
    deciding whether the Hub is reachable; `download_deadline` bounds the download after it."""
    from name_origin.predict import Predictor

    notes: list[str] = []
    if model_dir:
        loaded = try_load(Predictor, Path(model_dir), f"local folder {model_dir}", notes, source="local folder")
        if loaded:
            return loaded
    if repo_id:
        bound_xet_retries()  # else a failing Xet store keeps the download thread retrying for minutes
        label = f"hub {repo_id}@{revision or 'main'}"
        snapshot = hub_snapshot(repo_id, revision or None, (timeout, download_deadline), notes, label)
        if snapshot is not None:
            where, sha = f"{label} (commit {snapshot.name})", snapshot.name
            loaded = try_load(Predictor, snapshot, where, notes, source="hub", revision=sha, repo_id=repo_id)
            if loaded:
                return loaded
    loaded = try_load(Predictor, Path(bundled), f"bundled model {bundled}", notes, source="bundled")
    if loaded:
        return loaded
    raise HubError("No model could be loaded: " + "; ".join(notes))


def add_note(notes: list[str], note: str) -> None:
    log.warning("%s", note)
    notes.append(note)


def try_load(predictor_cls, path: Path, where: str, notes: list[str], *, source: str, revision=None, repo_id=None):
    """(Predictor, ResolvedModel), or None with the reason noted. Strict safetensors load only."""
    try:
        missing = [name for name in REQUIRED if not (path / name).is_file()]
        if missing:
            raise FileNotFoundError(f"no {', '.join(missing)}")
        predictor = predictor_cls.from_dir(path)
    except Exception as e:  # noqa: BLE001 - a broken source must not crash the app: try the next one
        add_note(notes, f"{where} could not be loaded: {short(e)}")
        return None
    log.info("serving the model from %s", where)
    return predictor, ResolvedModel(path, source, revision, notes, repo_id)


def hub_snapshot(repo_id: str, revision: str | None, limits: tuple[float, float], notes: list[str], label: str):
    """The local snapshot folder of repo_id@revision (downloaded or cached), or None with a note.
    limits: (seconds for the info call, seconds for the whole download)."""
    timeout, deadline = limits
    pinned = bool(revision and COMMIT_ID.fullmatch(revision))  # a commit id, not a branch or tag
    try:
        if constants.is_offline_mode():
            log.info("%s: HF_HUB_OFFLINE is set, using the local cache only", label)
            return cached_snapshot(repo_id, revision)
        if pinned:  # a commit never changes: a complete cache is enough
            try:
                return cached_snapshot(repo_id, revision)
            except LocalEntryNotFoundError:  # not cached, or only partly: download what is missing
                pass
        info = hub_info(repo_id, revision, timeout, label, notes)
        if info is None:
            return cached_snapshot(repo_id, revision)
        previous = None  # what a branch or tag resolved to in the cache before this download
        if not pinned:
            with contextlib.suppress(LocalEntryNotFoundError):
                previous = cached_snapshot(repo_id, revision)
        try:
            return within(deadline, download_served, repo_id, revision, info, timeout)
        # reachable, then failed; hf_xet raises ConnectionError / RuntimeError for a failing Xet store
        except (TimeoutError, httpx2.TransportError, ConnectionError, RuntimeError, LocalEntryNotFoundError) as e:
            add_note(notes, f"{label}: the download failed ({xet_failure(e) or short(e)}); trying the local cache")
            return cached_or_previous(repo_id, revision, previous, notes, label)
    except Exception as e:  # noqa: BLE001 - any failure means: fall back to the next source
        add_note(notes, f"{label} skipped: {hub_reason(e, revision)}")
        return None


def hub_info(repo_id: str, revision: str | None, timeout: float, label: str, notes: list[str]):
    """Ask the Hub for repo_id@revision once (no retry, bounded wait): its ModelInfo (commit and
    file list), or None when it cannot be reached (or answers 5xx); raises when it answers no
    (unknown repo or revision, bad token...)."""
    try:
        return HfApi().model_info(repo_id, revision=revision, timeout=timeout)
    except HfHubHTTPError as e:
        if e.response is None or e.response.status_code < 500:
            raise
        reason = e
    except (httpx2.TransportError, ConnectionError) as e:  # ConnectionError: OfflineModeIsEnabled
        reason = e
    add_note(notes, f"{label}: the Hub could not be reached ({short(reason)}); trying the local cache")
    return None


def download_served(repo_id: str, revision: str | None, info, timeout: float) -> Path:
    """Download the SERVED files the revision holds (its file list came with `info`) into the
    standard cache; returns the snapshot folder. File by file, because every request of
    hf_hub_download has a timeout, while snapshot_download lists the repo without one."""
    if info.siblings is None:
        raise RuntimeError(f"the Hub did not list the files of {repo_id}@{revision or 'main'}")
    present = {s.rfilename for s in info.siblings}
    missing = [name for name in REQUIRED if name not in present]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in this revision")
    wanted = [name for name in SERVED if name in present]
    folders = {Path(hf_hub_download(repo_id, name, revision=revision, etag_timeout=timeout)).parent for name in wanted}
    folder = folders.pop()
    if folders or folder.name != info.sha:  # the branch moved meanwhile: never serve a mix of commits
        raise RuntimeError(f"{repo_id}@{revision or 'main'} moved to another commit during the download; start again")
    return folder


def within(seconds: float, fn, *args):
    """fn(*args) on a daemon thread, or TimeoutError after `seconds`. A file request that fails is
    retried by huggingface_hub with a 60 s timeout and backoff, so only a deadline bounds it; the
    thread is left to finish or fail on its own."""
    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = e

    worker = threading.Thread(target=run, name="hub-download", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"the Hub did not deliver the model files within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def cached_snapshot(repo_id: str, revision: str | None) -> Path:
    """The cached snapshot of repo_id@revision holding every REQUIRED file; raises
    LocalEntryNotFoundError when there is none, or only a partial one (an interrupted download)."""
    path = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(SERVED), local_files_only=True))
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise LocalEntryNotFoundError(f"the cached snapshot {path} lacks {', '.join(missing)}")
    return path


def cached_or_previous(repo_id: str, revision: str | None, previous: Path | None, notes: list[str], label: str):
    """After a failed download: the cached snapshot of revision, else `previous`, the complete
    snapshot the branch had in the cache before. huggingface_hub moves refs/<branch> to the new
    commit before it downloads, so without this a failed download of a new head would leave the
    cache pointing at an incomplete snapshot, now and at every later offline start; the ref is
    moved back to `previous`, which the next successful download moves on."""
    try:
        return cached_snapshot(repo_id, revision)
    except LocalEntryNotFoundError:
        if previous is None:
            raise
    ref = previous.parent.parent / "refs" / (revision or "main")  # <repo folder>/snapshots/<commit>
    ref.write_text(previous.name)
    add_note(notes, f"{label}: serving commit {previous.name}, the last one completely in the local cache")
    return previous


def hub_reason(e: Exception, revision: str | None) -> str:
    """Why the Hub source was skipped, in a few words (never includes the token)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, RevisionNotFoundError):
        return f"revision {revision!r} does not exist"
    if isinstance(e, RepositoryNotFoundError):
        return f"repository not found or not accessible with this token (HTTP {status})"
    if isinstance(e, LocalEntryNotFoundError):
        return "nothing usable for this revision in the local cache"
    if isinstance(e, EntryNotFoundError):
        return f"a file is missing ({short(e)})"
    if isinstance(e, HfHubHTTPError) and status == 401:
        return "the Hub refused access (HTTP 401): check HF_TOKEN or `hf auth login`"
    if isinstance(e, HfHubHTTPError):
        return f"the Hub answered HTTP {status}"
    return short(e)
