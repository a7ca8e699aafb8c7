"""The model: embedding -> 2-layer bidirectional GRU over packed sequences -> linear.

`NameGRU` holds `members` independent copies of that classifier and averages their
probabilities (members=1 is the plain course architecture). It saves and loads through
huggingface_hub's PyTorchModelHubMixin: config.json + model.safetensors, strict, no pickles.
"""

import math
import os

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors.torch import load_model
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from trainer import cells
from trainer.config import ModelConfig
from trainer.encoding import PAD
from trainer.packed_gru import dropout, packed_bigru, packed_bigrus

WEIGHTS_NAME = "model.safetensors"


class BiGRUClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD)
        self.dropout_p = cfg.dropout  # on embeddings, between GRU layers and before the head
        self.gru = nn.GRU(
            cfg.embed_dim,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(2 * cfg.hidden_size, cfg.num_classes)
        self.cpu_kernel = False  # train on CPU with trainer.packed_gru (nn.GRU's maths, faster)
        self.compiled_cells = False  # ... with its compiled gate arithmetic (trainer/cells.py)

    def uses_kernel(self, x: torch.Tensor) -> bool:
        """Training on CPU goes through trainer.packed_gru; inference (nn.GRU is faster there)
        and CUDA (cuDNN) through nn.GRU."""
        return self.cpu_kernel and torch.is_grad_enabled() and x.device.type == "cpu"

    def kernel_inputs(self, x: torch.Tensor, lengths: torch.Tensor, sorted_desc: bool):
        """(packed GRU input, embedding or None) for trainer.packed_gru. Without embedding dropout
        the kernel looks up the first layer's input projection per character (packed indices)
        instead of multiplying out each embedding."""
        table = not (self.training and self.dropout_p > 0)
        inputs = x if table else dropout(self.embedding(x), self.dropout_p, self.training)  # (batch, seq[, embed])
        packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=sorted_desc)
        return packed, self.embedding.weight if table else None

    def classify(self, h_n: torch.Tensor) -> torch.Tensor:
        last = torch.cat([h_n[-2], h_n[-1]], dim=1)  # (batch, 2*hidden): last layer, fwd ++ bwd
        return self.head(dropout(last, self.dropout_p, self.training))  # (batch, classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, sorted_desc: bool = False) -> torch.Tensor:
        if self.uses_kernel(x):
            h_n = packed_bigru(self.gru, *self.kernel_inputs(x, lengths, sorted_desc), compiled=self.compiled_cells)
        else:
            emb = dropout(self.embedding(x), self.dropout_p, self.training)  # (batch, seq, embed)
            packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=sorted_desc)
            _, h_n = self.gru(packed)  # (layers * 2, batch, hidden), in the batch's original order
        return self.classify(h_n)


def combine_members(member_logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """(members, batch, classes) logits -> (batch, classes) log of the mean tempered probability.

    Averaging probabilities (a deep ensemble), each member's logits divided by the temperature,
    is better calibrated on validation than averaging log-probabilities."""
    logp = (member_logits / temperature).log_softmax(-1)  # (members, batch, classes)
    return logp.logsumexp(0) - math.log(member_logits.shape[0])


class NameGRU(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="name-origin",
    tags=["text-classification", "surnames", "char-rnn"],
    license="mit",
    pipeline_tag="text-classification",
):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(BiGRUClassifier(config) for _ in range(config.members))

    def use_cpu_kernel(self, on: bool, compiled: bool = True) -> None:
        """Train with trainer.packed_gru on CPU (on) or with nn.GRU (off); weights are the same.
        compiled: its gate arithmetic from trainer/cells.py, built here (not in the first epoch)."""
        compiled = compiled and on and cells.load() is not None
        for member in self.members:
            member.cpu_kernel, member.compiled_cells = on, compiled

    def member_logits(self, x: torch.Tensor, lengths: torch.Tensor, sorted_desc: bool = False) -> torch.Tensor:
        """(members, batch, classes). Training on CPU runs all members' GRUs in one kernel call."""
        if len(self.members) > 1 and all(m.uses_kernel(x) for m in self.members):
            packs, embeddings = zip(*(m.kernel_inputs(x, lengths, sorted_desc) for m in self.members), strict=True)
            tables = None if embeddings[0] is None else list(embeddings)
            h_ns = packed_bigrus([m.gru for m in self.members], list(packs), tables, self.members[0].compiled_cells)
            return torch.stack([m.classify(h_n) for m, h_n in zip(self.members, h_ns, strict=True)])
        return torch.stack([m(x, lengths, sorted_desc) for m in self.members])

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, sorted_desc: bool = False, temperature: float = 1.0
    ) -> torch.Tensor:
        """Log of the members' mean probability at this softmax temperature: (batch, classes)."""
        return combine_members(self.member_logits(x, lengths, sorted_desc), temperature)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir,
        force_download: bool,
        local_files_only: bool,
        token,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs,
    ):
        """Safetensors only and strict by default: a checkpoint must rebuild its exact model."""
        model = cls(**model_kwargs)
        if os.path.isdir(model_id):
            path = os.path.join(model_id, WEIGHTS_NAME)
        else:
            path = hf_hub_download(
                repo_id=model_id,
                filename=WEIGHTS_NAME,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        load_model(model, path, strict=strict, device=str(map_location))
        return model.eval()
