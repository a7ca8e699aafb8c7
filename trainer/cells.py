"""The compiled gate arithmetic of trainer.packed_gru (trainer/gru_cells.c), built at first use.

One call per time step replaces about ten torch operations in the forward and as many in the
backward (README, Speed). It needs a C compiler (`$CC`, else gcc or cc) and is built into a
temporary folder once per process (about half a second); where none is found or the build
fails, `load()` returns None and packed_gru uses torch operations, with the same results.
`NAME_ORIGIN_NO_CC=1` turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("gru_cells.c")
FLAGS = [
    "-O3",
    "-march=native",
    "-ffast-math",
    "-fopenmp",
    "-fPIC",
]  # libmvec's vector exp/tanh; rows split over threads
SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


@functools.lru_cache(maxsize=1)
def load() -> ctypes.CDLL | None:
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if os.environ.get("NAME_ORIGIN_NO_CC") or not compiler or not sys.platform.startswith("linux"):
        return None
    build = Path(tempfile.mkdtemp(prefix="name-origin-cells-"))
    try:
        objects = []
        for double in (0, 1):
            obj = build / f"cells{double}.o"
            cmd = [compiler, *FLAGS, f"-DREAL_IS_DOUBLE={double}", "-c", str(SOURCE), "-o", str(obj)]
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            objects.append(str(obj))
        # linked without -ffast-math, so loading it leaves the process's floating-point flags alone
        lib_path = build / "gru_cells.so"
        subprocess.run(
            [compiler, "-shared", "-fopenmp", *objects, "-o", str(lib_path), "-lmvec", "-lm"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return ctypes.CDLL(str(lib_path))
    except (OSError, subprocess.SubprocessError) as e:
        log.info("compiled GRU cells unavailable (%s); training uses torch operations", e)
        return None
    finally:
        shutil.rmtree(build, ignore_errors=True)  # the loaded library stays mapped


def _args(*items) -> list:
    return [ctypes.c_void_p(t.data_ptr()) if isinstance(t, torch.Tensor) else ctypes.c_long(t) for t in items]


def forward_step(lib, g, gh, b_hn, h, saved, plan_step) -> None:
    """saved: (h_prev, rz, ghn, n, out), each (L, S, width), contiguous like g, gh, b_hn, h."""
    (start, rows, fwd, rev), (L, S, H3), batch = plan_step, g.shape, h.shape[1]
    fn = getattr(lib, f"gru_forward_step_{SUFFIX[g.dtype]}")
    fn(*_args(g, gh, b_hn, h, *saved, L, S, H3 // 3, batch, start, rows, fwd, rev))


def backward_step(lib, dh, d_out, saved, d_all, gz, plan_step) -> None:
    """saved: (rz, ghn, n, h_prev); d_out may be None."""
    (start, rows, fwd, rev), (L, S, H4), batch = plan_step, d_all.shape, dh.shape[1]
    fn = getattr(lib, f"gru_backward_step_{SUFFIX[dh.dtype]}")
    d_out_ptr = ctypes.c_void_p(d_out.data_ptr()) if d_out is not None else ctypes.c_void_p(None)
    fn(*_args(dh), d_out_ptr, *_args(*saved, d_all, gz, L, S, H4 // 4, batch, start, rows, fwd, rev))
