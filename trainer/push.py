"""Push a run folder to a Hugging Face Hub model repo as one commit.

`create_repo(exist_ok=True)`, then `HfApi.upload_folder`: every file of the run folder but
`resume/`, hidden and temporary files (IGNORED), in one commit (huggingface_hub splits a folder
into several commits only past hundreds of files; a run has about a dozen). An existing repo keeps
its visibility, so `--private` onto an existing public repo is refused before anything is uploaded.
The token comes from HF_TOKEN or the stored login and is never printed or logged; every failure
becomes a `HubError` of one sentence + the retry command. Binary files go through Xet where hf_xet
is installed (huggingface_hub's choice); HF_HUB_DISABLE_XET=1 pushes them over plain LFS.
"""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

import httpx2  # huggingface_hub's HTTP client: its transport errors reach us as they are
from huggingface_hub import CommitInfo, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects

from name_origin.hub import REQUIRED, HubError, short

log = logging.getLogger(__name__)

# fnmatch patterns on repo paths (`*` crosses `/`): the resume state, hidden files at any depth,
# temporary files, and tmp* folders (atomic writes in progress).
IGNORED = ["resume/*", "__pycache__/*", "*/__pycache__/*", ".*", "*/.*", "tmp*/*",
           "*.tmp", "*.temp", "*.incomplete", "*.lock", "*.part", "*.swp", "*~"]  # fmt: skip


def run_files(run_dir: Path) -> list[str]:
    """Repo paths of the files a push uploads, filtered the way upload_folder filters them."""
    paths = sorted(p.relative_to(run_dir).as_posix() for p in Path(run_dir).rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=IGNORED))


def retry_command(run_dir: Path, repo_id: str, private: bool = False) -> str:
    cmd = f"python -m trainer push {shlex.quote(str(run_dir))} --repo-id {shlex.quote(repo_id)}"
    return cmd + (" --private" if private else "")


def push_run(
    run_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
) -> CommitInfo:
    """Upload every artifact of run_dir to the model repo as one commit; returns its CommitInfo
    (`.oid`, `.commit_url`). Raises HubError; never touches run_dir."""
    run_dir = Path(run_dir)
    retry = retry_command(run_dir, repo_id, private)
    missing = [name for name in REQUIRED if not (run_dir / name).is_file()]
    if missing:
        raise HubError(f"{run_dir} is not a finished run folder (no {', '.join(missing)}). Retry with: {retry}")
    token = token or get_token()
    if not token:
        raise HubError(f"No Hugging Face token found: set HF_TOKEN or run `hf auth login`. Retry with: {retry}")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if private and not api.repo_info(repo_id).private:  # exist_ok=True leaves an existing repo as it is
            raise HubError(
                f"{repo_id} exists and is public; --private cannot change that (make it private in its settings "
                f"on the Hub, or push without --private), so nothing was pushed. Retry with: {retry}"
            )
        message = commit_message or f"Upload run {run_dir.name}"
        info = api.upload_folder(repo_id=repo_id, folder_path=run_dir, commit_message=message, ignore_patterns=IGNORED)
    except HubError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever failed (HTTP, network, storage, disk), one sentence + retry
        raise HubError(f"Push to {repo_id} failed: {push_failure(e, repo_id, api.endpoint)} Retry with: {retry}") from e
    log.info("pushed %s to %s as commit %s", run_dir, repo_id, info.oid)
    return info


def push_failure(e: Exception, repo_id: str, endpoint: str) -> str:
    """Why a push failed, as the end of one sentence (never includes the token)."""
    status = e.response.status_code if isinstance(e, HfHubHTTPError) else None
    if isinstance(e, RepositoryNotFoundError):
        return f"repository {repo_id} was not found or this token cannot see it (HTTP {status})."
    if status == 401:
        return "the Hub rejected the token (HTTP 401); check HF_TOKEN or run `hf auth login`."
    if status == 403:
        return f"this token may not create or write {repo_id} (HTTP 403); check the repo id and its write access."
    if status is not None:
        return f"the Hub answered HTTP {status}."
    if isinstance(e, httpx2.TransportError):
        return f"the Hub at {endpoint} could not be reached ({short(e)})."
    return f"{short(e).rstrip('.')}."
