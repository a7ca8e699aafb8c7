"""The model: embedding -> 2-layer bidirectional nn.GRU over packed sequences -> linear.

`NameGRU` holds `members` independent copies of that classifier and averages their probabilities
(members=1 is the plain course architecture). It saves and loads through huggingface_hub's
PyTorchModelHubMixin: config.json + model.safetensors, strict, no pickles.
"""

# No `from __future__ import annotations` here: PyTorchModelHubMixin reads the real type of
# `config` to rebuild a ModelConfig from config.json.
import math
import os

import torch
from huggingface_hub import PyTorchModelHubMixin, hf_hub_download
from safetensors.torch import load_model
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from name_origin.config import ModelConfig
from name_origin.encoding import PAD

WEIGHTS_NAME = "model.safetensors"


class BiGRUClassifier(nn.Module):
    """One classifier: (batch, seq) character indices + (batch,) lengths -> (batch, classes) logits."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=PAD)
        self.dropout = nn.Dropout(cfg.dropout)  # on embeddings and before the head
        self.gru = nn.GRU(
            cfg.embed_dim,
            cfg.hidden_size,
            num_layers=cfg.num_layers,
            bidirectional=True,
            batch_first=True,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,  # between GRU layers
        )
        self.head = nn.Linear(2 * cfg.hidden_size, cfg.num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None, sorted_desc: bool = False) -> torch.Tensor:
        """lengths None: every row fills all `seq` steps (one exact length), so there is nothing to
        pack; this is the graph exported to ONNX (name_origin.runtime) and gives the packed result."""
        emb = self.dropout(self.embedding(x))  # (batch, seq, embed)
        if lengths is None:
            _, h_n = self.gru(emb)  # (layers * 2, batch, hidden)
        else:
            packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=sorted_desc)
            _, h_n = self.gru(packed)  # (layers * 2, batch, hidden), in the batch's original order
        last = torch.cat([h_n[-2], h_n[-1]], dim=1)  # (batch, 2*hidden): last layer, forward ++ backward
        return self.head(self.dropout(last))  # (batch, classes)


def combine_members(member_logits: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """(members, batch, classes) logits -> (batch, classes) log of the mean tempered probability.

    Averaging probabilities (a deep ensemble, Lakshminarayanan et al. 2017), each member's logits
    divided by the temperature, is better calibrated on validation than averaging log-probabilities."""
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

    def member_logits(self, x: torch.Tensor, lengths: torch.Tensor | None, sorted_desc: bool = False) -> torch.Tensor:
        """(batch, seq) indices, (batch,) lengths or None (all rows seq long) -> (members, batch, classes) logits."""
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
        """Safetensors only and strict by default: a checkpoint must rebuild its exact model.
        Raises safetensors/torch errors for a file that does not match the config."""
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
