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


def load_served_model(model_dir: str | None, repo_id: str | None, revision: str | None, bundled: Path):
    """(Predictor, ResolvedModel) from the first source that loads: MODEL_DIR, then the Hub repo
    at revision, then the bundled folder. Placeholder: Hub step not implemented yet."""
    from trainer.predict import Predictor

    notes: list[str] = []
    for path, source in ((model_dir, "local folder"), (bundled, "bundled")):
        if not path:
            continue
        try:
            return Predictor.from_dir(path), ResolvedModel(Path(path), source, None, notes)
        except Exception as e:  # noqa: BLE001 - any failure means: try the next source
            notes.append(f"{source} {path}: {e}")
    raise HubError("no model could be loaded: " + "; ".join(notes))
