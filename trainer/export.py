"""Export a trained NameGRU to model.onnx (torch.onnx.export), the graph the app serves with ONNX Runtime.

The graph is NameGRU.member_logits for a batch of one exact length (lengths None: nothing to
pack), with the batch size and the length dynamic; name_origin.runtime loads it and uses it only
where it agrees with the weights. torch's dynamo exporter (it needs `onnx` and `onnxscript`)
writes each nn.GRU as ONNX's GRU operator.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from name_origin.encoding import UNK
from name_origin.model import NameGRU
from name_origin.runtime import INPUT, ONNX_NAME, OUTPUT, OnnxMembers, check_agreement
from trainer.checkpoint import atomic_write_bytes

log = logging.getLogger(__name__)


class MemberLogits(nn.Module):
    """(batch, seq) int64 indices, every row seq long -> (members, batch, classes) logits."""

    def __init__(self, model: NameGRU):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.member_logits(x, None)


def forget_gru_dispatch() -> None:
    """Clear the dispatch caches of aten.gru. torch.onnx.export swaps in a while_loop GRU
    decomposition (dynamic length) for the export and restores the old kernel afterwards without
    clearing the op's dispatch cache, so a second export in one process (torch 2.13) got the
    step-by-step decomposition and a length fixed at the example's. The agreement check below
    would refuse such a file; this makes the second export right."""
    for op in (torch.ops.aten.gru.input, torch.ops.aten.gru.data):
        getattr(op, "_dispatch_cache", {}).clear()


def weights_as_float16(proto: onnx.ModelProto) -> int:
    """Store each float32 initializer that float16 holds exactly (the run's weights are rounded to
    float16 before they are saved, report.round_to_half) as float16, cast back to float32 by a
    Cast node at the start of the graph. ONNX Runtime's CPU GRU computes in float32 only; it folds
    these Casts when it loads the file, so the results are bit-identical and the file is half the
    size. Edits `proto` in place; returns the number of initializers stored as float16."""
    graph, casts = proto.graph, []
    inputs = {i.name for i in graph.input}  # an initializer that is also an input is a default a caller may replace
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT or init.name in inputs:
            continue
        values = numpy_helper.to_array(init)
        half = values.astype(np.float16)
        if values.size < 64 or not np.array_equal(half.astype(np.float32), values):
            continue  # small constants, or values float16 would change
        name = init.name
        init.CopyFrom(numpy_helper.from_array(half, f"{name}.float16"))
        casts.append(helper.make_node("Cast", [f"{name}.float16"], [name], to=TensorProto.FLOAT))
    nodes = casts + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(proto)
    return len(casts)


def export_onnx(model: NameGRU, run_dir: Path) -> Path:
    """Write run_dir/model.onnx for `model` (eval mode, on CPU, float32) once ONNX Runtime gives
    its logits (runtime.check_agreement: batches of 1 and 3, lengths 1 to 17); returns the path.
    Raises OnnxMismatchError when it does not, and then leaves any earlier model.onnx as it was:
    a run folder never gets an export that disagrees with its weights."""
    model = model.eval()
    example = torch.full((2, 3), UNK, dtype=torch.long)
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("seq")}
    forget_gru_dispatch()
    with warnings.catch_warnings():  # torch.export's deprecation notices about its own internals
        warnings.simplefilter("ignore", (FutureWarning, UserWarning, DeprecationWarning))
        program = torch.onnx.export(
            MemberLogits(model), (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
            dynamic_shapes=(dims,), external_data=False, verbose=False,
        )  # fmt: skip
    proto = program.model_proto
    weights_as_float16(proto)
    data = proto.SerializeToString()
    worst = check_agreement(OnnxMembers(data), model)  # checked in memory: only an agreeing file is written
    path = Path(run_dir) / ONNX_NAME
    atomic_write_bytes(path, data)
    log.info("wrote %s (ONNX Runtime's logits within %.1g of PyTorch's)", path, worst)
    return path
