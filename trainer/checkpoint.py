"""Atomic writes and the resumable training state (safetensors + JSON, never pickle)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

RESUME_DIR = "resume"  # inside a run folder; removed once the run completes


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are meant to be shared (no os.fchmod on Windows)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)  # after save_file, which recreates the file as 0600
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_resume_state(run_dir: Path, *, model, best_state, optimizer, scheduler, batch_gen, progress: dict) -> None:
    """Everything needed to continue after the last completed epoch."""
    folder = Path(run_dir) / RESUME_DIR
    folder.mkdir(parents=True, exist_ok=True)
    optim_tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"best.{k}": v for k, v in best_state.items()}
    tensors |= optim_tensors
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.batches"] = batch_gen.get_state()
    if torch.cuda.is_available():  # dropout on a GPU draws from the CUDA generator
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"optimizer": optim_meta, "scheduler": scheduler.state_dict() if scheduler else None, "progress": progress}
    # The JSON part also rides in the safetensors header, so one rename switches the whole state
    # (a kill between two files can never pair epoch-k weights with epoch-(k-1) progress).
    atomic_save_tensors(folder / "state.safetensors", tensors, metadata={"state": json.dumps(meta)})
    atomic_write_json(folder / "state.json", meta)  # readable copy; written last, so it marks a finished save


def load_resume_state(run_dir: Path) -> dict:
    folder = Path(run_dir) / RESUME_DIR
    tensors = load_file(folder / "state.safetensors")
    with safe_open(folder / "state.safetensors", framework="pt") as f:
        header = f.metadata() or {}
    meta = json.loads(header["state"]) if "state" in header else json.loads((folder / "state.json").read_text())
    pick = lambda prefix: {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}  # noqa: E731
    return {
        "model": pick("model."),
        "best": pick("best."),
        "optimizer": _unflatten_optimizer(tensors, meta["optimizer"]),
        "scheduler": meta["scheduler"],
        "rng_torch": tensors["rng.torch"],
        "rng_batches": tensors["rng.batches"],
        "rng_cuda": tensors.get("rng.cuda"),
        "progress": meta["progress"],
    }
