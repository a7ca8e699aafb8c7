"""Push a run folder to a Hugging Face Hub model repo as one commit.

`create_repo(exist_ok=True)`, then ONE `create_commit` holding every file of the run folder
(`resume/`, hidden and temporary files excepted). An existing repo keeps its visibility, so `--private`
onto an existing public repo is refused before anything is committed. The token comes from HF_TOKEN
or the stored login and is never printed or logged; every failure becomes a `HubError` of one
sentence + retry command. Binary files go through Xet where hf_xet is installed (what
huggingface_hub does), with bounded retries; tests/test_hub_xet.py runs that path.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from pathlib import Path

import httpx2
from huggingface_hub import CommitInfo, CommitOperationAdd, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from name_origin.hub import REQUIRED, HubError, bound_xet_retries, short, xet_failure

log = logging.getLogger(__name__)

SKIPPED_DIRS = ("resume", "__pycache__")
TEMP_SUFFIXES = (".tmp", ".temp", ".incomplete", ".lock", ".part", ".swp", "~")


class PushedCommit(CommitInfo):
    """huggingface_hub's CommitInfo, plus `.url`: the page of the commit (what the CLI prints)."""

    @property
    def url(self) -> str:
        return self.commit_url


def run_files(run_dir: Path) -> list[str]:
    """Repo paths of every file to push: all of run_dir but resume/, hidden and temporary files."""
    files = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        hidden = any(part.startswith(".") for part in rel.parts)
        temp = rel.name.endswith(TEMP_SUFFIXES) or (len(rel.parts) > 1 and rel.parts[0].startswith("tmp"))
        if path.is_file() and not hidden and not temp and not set(rel.parts[:-1]) & set(SKIPPED_DIRS):
            files.append(rel.as_posix())
    return files


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
) -> PushedCommit:
    """Upload every artifact of run_dir to the model repo as one commit; returns the CommitInfo
    (with .oid and .url). Raises HubError; never touches run_dir."""
    run_dir = Path(run_dir)
    retry = retry_command(run_dir, repo_id, private)
    missing = [name for name in REQUIRED if not (run_dir / name).is_file()]
    if missing:
        raise HubError(f"{run_dir} is not a finished run folder (no {', '.join(missing)}). Retry with: {retry}")
    token = token or get_token()
    if not token:
        raise HubError(f"No Hugging Face token found: set HF_TOKEN or run `hf auth login`. Retry with: {retry}")
    files = run_files(run_dir)
    bound_xet_retries()  # a failing Xet store: a HubError in 4-5 s, not 6-8 minutes
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if private and not api.repo_info(repo_id).private:  # exist_ok=True leaves an existing repo as it is
            raise HubError(
                f"{repo_id} exists and is public; --private cannot change that (make it private in its settings "
                f"on the Hub, or push without --private), so nothing was pushed. Retry with: {retry}"
            )
        operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(run_dir / f)) for f in files]
        info = api.create_commit(repo_id, operations, commit_message=commit_message or f"Upload run {run_dir.name}")
    except HubError:
        raise
    except (httpx2.HTTPError, OSError, ValueError, RuntimeError) as e:  # HfHubHTTPError is an OSError
        raise HubError(f"Push to {repo_id} failed: {push_failure(e, repo_id, api.endpoint)} Retry with: {retry}") from e
    log.info("pushed %d files of %s to %s as commit %s", len(files), run_dir, repo_id, info.oid)
    return PushedCommit(**{f.name: getattr(info, f.name) for f in dataclasses.fields(info) if f.init})


def push_failure(e: Exception, repo_id: str, endpoint: str) -> str:
    """Why a push failed, as the end of one sentence (never includes the token)."""
    status = getattr(getattr(e, "response", None), "status_code", None)
    if isinstance(e, RepositoryNotFoundError):
        return f"repository {repo_id} was not found or this token cannot see it (HTTP {status})."
    if isinstance(e, HfHubHTTPError) and status == 401:
        return "the Hub rejected the token (HTTP 401); check HF_TOKEN or run `hf auth login`."
    if isinstance(e, HfHubHTTPError) and status == 403:
        return f"this token may not create or write {repo_id} (HTTP 403); check the repo id and its write access."
    if isinstance(e, HfHubHTTPError):
        return f"the Hub answered HTTP {status}."
    if isinstance(e, httpx2.TransportError):
        return f"the Hub at {endpoint} could not be reached ({type(e).__name__})."
    xet = xet_failure(e)
    if xet:
        return f"{xet}; retry later, or push over plain LFS with HF_HUB_DISABLE_XET=1."
    return f"{short(e)}."
