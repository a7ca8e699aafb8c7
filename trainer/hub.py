"""Hugging Face Hub: push a run folder as one commit; resolve the model the app serves.

(Interface fixed here; implementation in progress.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class HubError(RuntimeError):
    """A Hub operation failed; the message is one clear sentence plus the retry command."""


def push_run(run_dir: Path, repo_id: str, *, private: bool = False, commit_message: str | None = None):
    """Upload every artifact of run_dir to the model repo as one commit; returns the CommitInfo
    (with .oid and .url). Raises HubError; never touches run_dir."""
    raise NotImplementedError


@dataclass
class ResolvedModel:
    path: Path  # local folder holding config.json + model.safetensors (+ metrics, evidence, ...)
    source: str  # "local folder", "hub", or "bundled"
    revision: str | None  # commit id / revision served, when from the Hub
    notes: list[str]  # why earlier sources were skipped (logged and shown on the page)
