"""Evidence: how often an exact normalised name carried each label in the training file.

Shipped as `evidence.safetensors`: sorted 64-bit keyed hashes of the names with (label, count)
rows. It answers "was this exact name in training, and as what?" but holds no name list.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import load_file

EVIDENCE_NAME = "evidence.safetensors"
_KEY = b"name-origin-evidence-v1"


def name_hash(normalized: str) -> int:
    digest = hashlib.blake2b(normalized.encode("utf-8"), digest_size=8, key=_KEY).digest()
    return int.from_bytes(digest, "little", signed=True)


FORMAT = {"format": "name-origin-evidence-v1"}  # safetensors metadata of the file


def build(names: list[str], labels: list[int]) -> dict[str, torch.Tensor]:
    """The table of `evidence.safetensors`: rows (hash, label, count) sorted by hash."""
    counts = Counter(zip((name_hash(n) for n in names), labels, strict=True))
    rows = sorted((h, y, c) for (h, y), c in counts.items())
    return {
        "hash": torch.tensor([r[0] for r in rows], dtype=torch.int64),
        "label": torch.tensor([r[1] for r in rows], dtype=torch.int16),
        "count": torch.tensor([r[2] for r in rows], dtype=torch.int32),
    }


class Evidence:
    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.hash, self.label, self.count = tensors["hash"], tensors["label"], tensors["count"]
        # plain Python lists: a lookup bisects and slices them without a tensor op per call
        self._keys, self._labels, self._counts = self.hash.tolist(), self.label.tolist(), self.count.tolist()

    @classmethod
    def load(cls, path: Path) -> Evidence:
        return cls(load_file(path))

    def lookup(self, normalized: str) -> dict[int, int]:
        """{label index: count} of this exact normalised name in training; {} if unseen."""
        h = name_hash(normalized)
        lo, hi = bisect.bisect_left(self._keys, h), bisect.bisect_right(self._keys, h)
        pairs = zip(self._labels[lo:hi], self._counts[lo:hi], strict=True)
        return dict(sorted(pairs, key=lambda p: -p[1]))

    def seen_mask(self, normalized_names: list[str]) -> torch.Tensor:
        """(n,) bool: which names occur in training."""
        h = torch.tensor([name_hash(n) for n in normalized_names], dtype=torch.int64)
        if len(self.hash) == 0:
            return torch.zeros(len(h), dtype=torch.bool)
        pos = torch.searchsorted(self.hash, h).clamp(max=len(self.hash) - 1)
        return self.hash[pos] == h
