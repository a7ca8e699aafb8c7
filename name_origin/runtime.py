"""ONNX Runtime serving of a run's model.onnx, used only where it answers as the PyTorch model does.

model.onnx is the trained NameGRU exported by `python -m trainer` (trainer/export.py,
torch.onnx.export): one graph, (batch, seq) int64 character indices of one exact length ->
(members, batch, classes) logits, every member's nn.GRU as ONNX's GRU operator. It exists for
speed alone: one name runs several times faster than through torch's per-step GRU loop
(bench/serve_speed.py prints both side by side). The PyTorch weights stay the source of truth:
a session is used only after it gives the same logits as the loaded NameGRU on probe batches, so
a stale, corrupt or foreign model.onnx is passed over (with the reason) and PyTorch serves.
"""

from __future__ import annotations

import torch

from name_origin.encoding import UNK
from name_origin.model import NameGRU

ONNX_NAME = "model.onnx"
INPUT, OUTPUT = "x", "logits"  # the graph's input and output names
AGREEMENT = 1e-4  # max |logit difference| to the PyTorch model on the probe (float32 rounding is ~1e-6)


class OnnxMismatchError(ValueError):
    """model.onnx does not compute the served weights' logits (another run's, or a different export)."""


class OnnxMembers:
    """(batch, seq) int64 indices, all rows one length -> (members, batch, classes) float32 logits.

    One ONNX Runtime CPU session on the calling thread (intra- and inter-op threads 1): the
    Predictor spreads a request's batches over its own worker threads, and `run` is thread-safe.
    `model` is a file's path or its bytes. Raises onnxruntime's errors for a model it cannot load."""

    def __init__(self, model):
        import onnxruntime as ort  # imported here: the package works without it (PyTorch then serves)

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: the Model tab says which runtime serves
        model = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x.contiguous().numpy()})[0])


def probe_batch(vocab_size: int) -> list[torch.Tensor]:
    """Deterministic (batch, seq) index batches over the letters and UNK: batch sizes 1 and 3,
    lengths 1, 6 and 17, so an export with a fixed batch size or length fails the check."""
    letters = torch.arange(UNK, vocab_size)
    return [letters[(torch.arange(b * n).view(b, n) * 5 + n) % len(letters)] for b in (1, 3) for n in (1, 6, 17)]


def check_agreement(session: OnnxMembers, model: NameGRU) -> float:
    """Largest |logit difference| between the session and the model on probe_batch; raises
    OnnxMismatchError above AGREEMENT (or when the shapes differ)."""
    worst = 0.0
    for x in probe_batch(model.config.vocab_size):
        with torch.inference_mode():
            expected = model.member_logits(x, None)  # (members, batch, classes)
        got = session(x)
        if got.shape != expected.shape:
            raise OnnxMismatchError(
                f"{ONNX_NAME} gives logits of shape {tuple(got.shape)}, the weights {tuple(expected.shape)}"
            )
        worst = max(worst, float((got - expected).abs().max()))
    if not worst <= AGREEMENT:
        raise OnnxMismatchError(
            f"{ONNX_NAME} differs from model.safetensors by {worst:.3g} in a logit (another run's export?)"
        )
    return worst
