"""The one text -> indices encoder, shared by training and serving.

normalize_name() folds a raw surname to the training alphabet's form (ASCII, lower case, single
spaces); CharEncoder maps it to indices, with 0 = padding and 1 = unknown character.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import torch

PAD, UNK = 0, 1
MAX_NAME_CHARS = 50  # longer input is refused: the longest training name has 19 characters

# Letters that Unicode does not decompose into an ASCII base + combining mark.
_SPECIAL = str.maketrans(
    {
        "ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o", "Ø": "o",
        "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th", "Þ": "th",
        "ı": "i", "ħ": "h", "Ħ": "h", "ŋ": "ng", "Ŋ": "ng", "ſ": "s",
        "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'",
        "-": " ", "‐": " ", "‑": " ", "–": " ", "—": " ", "_": " ",
    }
)  # fmt: skip


class InvalidNameError(ValueError):
    """A name that cannot be classified; the message is safe to show to a user."""


@dataclass(frozen=True)
class Normalized:
    text: str  # normalised name, what the model sees
    transliterated: bool  # True when non-ASCII letters were folded to ASCII


def _fold(text: str) -> str:
    """Drop the accents of decomposed Latin letters, then map the letters Unicode cannot decompose."""
    kept = (ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return "".join(kept).translate(_SPECIAL)


def normalize_name(raw: str) -> Normalized:
    """Fold a raw name to lower-case ASCII with single spaces. Never raises.

    Latin letters with diacritics lose them (Dvořák -> dvorak); characters with no ASCII form
    (CJK, emoji) are kept as they are and later encoded as UNK.
    """
    raw = str(raw)
    out = " ".join(_fold(unicodedata.normalize("NFKC", raw)).lower().split())
    # A non-ASCII letter that became ASCII (ü, ß, Ł, Æ, fullwidth Ｍ); not punctuation, not CJK.
    transliterated = any(
        ord(c) > 127 and c.isalpha() and (f := _fold(unicodedata.normalize("NFKC", c))) and f.isascii() for c in raw
    )
    return Normalized(out, transliterated)


@dataclass(frozen=True)
class CharEncoder:
    alphabet: str  # characters with an embedding row; index = 2 + position

    @classmethod
    def fit(cls, names) -> CharEncoder:
        """The alphabet of already-normalised training names."""
        return cls("".join(sorted(set("".join(names)))))

    def __post_init__(self):
        object.__setattr__(self, "_index", {c: i + 2 for i, c in enumerate(self.alphabet)})

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 2

    def encode(self, normalized: str) -> list[int]:
        return [self._index.get(c, UNK) for c in normalized]

    def decode(self, indices) -> str:
        return "".join("?" if i == UNK else self.alphabet[i - 2] for i in indices if i != PAD)

    def validate(self, raw: str) -> Normalized:
        """Normalise a user's name or raise InvalidNameError with a message fit for the user."""
        if raw is None or not str(raw).strip():
            raise InvalidNameError("Please type a surname.")
        raw = str(raw)
        if len(raw.strip()) > MAX_NAME_CHARS:
            raise InvalidNameError(
                f"That is {len(raw.strip())} characters; surnames here are at most {MAX_NAME_CHARS}."
            )
        norm = normalize_name(raw)
        if not any(c in self._index and c.isalpha() for c in norm.text):
            raise InvalidNameError("No Latin letters found: type a surname in the Latin alphabet (e.g. Nakamura).")
        return norm


def pad_batch(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad index lists into (batch, max_len) int64 plus their (batch,) lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    out = torch.full((len(sequences), int(lengths.max())), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out, lengths
