"""The one text -> indices encoder, shared by training and serving.

normalize_name() reads a raw surname in any script and folds it to the training alphabet's form
(ASCII, lower case, single spaces) through the steps of name_origin.scripts: clean, lookalikes,
scripts, transliteration. CharEncoder maps it to indices, with 0 = padding and 1 = unknown character.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass

import torch

from name_origin import clean, readers, scripts

PAD, UNK = 0, 1
MAX_NAME_CHARS = 50  # longer input is refused: the longest training name has 19 characters

# Punctuation the training data writes another way: typographic apostrophes are ', dashes are spaces.
# Commas left inside a name (not "LAST, First") are word breaks: the clean training names have none.
_PUNCT = str.maketrans(
    {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "-": " ", "‐": " ", "‑": " ", "–": " ", "—": " ", "_": " ",
     ",": " ", "،": " ", "、": " "}
)  # fmt: skip


class InvalidNameError(ValueError):
    """A name that cannot be classified; the message is safe to show to a user."""


@dataclass(frozen=True)
class Normalized:
    text: str  # normalised name, what the model sees
    transliterated: bool  # True when non-ASCII letters were folded to ASCII
    script: str = ""  # the script(s) of its letters, in words: "Latin", "Cyrillic", "Han and Hiragana"
    marks: frozenset[str] = frozenset()  # the letters' evidence for the script prior (scripts.evidence)
    stripped: str = ""  # punctuation trimmed at the edges ("," of "Dubois,")
    given: str = ""  # the given name after the comma of "LAST, First", not classified
    lookalikes: str = ""  # letters of another script read as their Latin (Cyrillic, Greek) lookalikes
    format_chars: bool = False  # invisible format characters (soft hyphen, zero-width space, BOM) deleted
    notes: tuple[str, ...] = ()  # what a reader should know about how the name was read

    @property
    def native(self) -> bool:
        """Read from a script other than Latin."""
        return self.script not in ("", "Latin")


def normalize_name(raw: str) -> Normalized:
    """Read a raw name in any script as lower-case ASCII with single spaces. Never raises.

    Dvořák -> dvorak, Иванов -> ivanov, 김 -> kim, さとう -> sato, "Dubois, Marc" -> dubois,
    Kowal\u00adski -> kowalski. Characters that are not letters and have no ASCII form (emoji) are
    kept as they are and later encoded as UNK. Cached: the same raw name is read once.
    """
    return _normalize(str(raw))


@functools.lru_cache(maxsize=1 << 14)
def read_chars(text: str) -> str:
    """text read as normalize_name reads a name's letters, without trimming or cutting at commas:
    what each character becomes ("" for a format character, " " for a dash or comma, "kim" for 김)."""
    text = clean.delete_format(unicodedata.normalize("NFKC", clean.apostrophes(text)))
    return readers.transliterate(text.lower()).translate(_PUNCT).lower()


@functools.lru_cache(maxsize=1 << 16)
def _normalize(raw: str) -> Normalized:
    raw = clean.apostrophes(raw)  # before NFKC, which splits ´ into a space and an accent
    nfkc = unicodedata.normalize("NFKC", raw)
    text = clean.delete_format(nfkc)
    core, stripped = clean.trim(text)
    core, given = clean.split_last_first(core)
    core, lookalikes = clean.fold_lookalikes(core)
    codes = scripts.letter_scripts(core)
    out = " ".join(readers.transliterate(core.lower()).translate(_PUNCT).lower().split())
    # A non-ASCII letter read as ASCII (ü, ß, Ł, И, 김, fullwidth Ｍ); not punctuation, not emoji.
    letters = core if nfkc == raw else raw
    transliterated = any(ord(c) > 127 and c.isalpha() for c in letters) and out.isascii()
    notes = []
    if given:
        notes.append(f"Classified “{core}”, the surname before the comma (LAST, First); “{given}” is the given name.")
    if lookalikes:
        which = ", ".join(f"{c} ({scripts.script_name(scripts.script(c))})" for c in lookalikes)
        notes.append(f"Read {which} as the Latin letter it looks like.")
    notes += readers.notes_for(codes)
    invisible = sorted({f"U+{ord(c):04X}" for c in nfkc if c not in text})  # what delete_format took out
    if invisible:
        notes.append(f"Removed invisible characters: {', '.join(invisible)}.")
    return Normalized(
        text=out,
        transliterated=transliterated,
        script=" and ".join(scripts.script_name(c) for c in codes),
        marks=scripts.evidence(core),
        stripped=stripped,
        given=given,
        lookalikes=lookalikes,
        format_chars=len(text) != len(nfkc),
        notes=tuple(notes),
    )


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
        if "\ufffd" in raw:  # U+FFFD: a decoder already lost a letter here; any answer would be a guess
            raise InvalidNameError(
                "This name holds \ufffd, a character lost in decoding: retype it, or save the file as UTF-8."
            )
        norm = normalize_name(raw)
        if not any(c in self._index and c.isalpha() for c in norm.text):
            raise InvalidNameError(
                "No letters found: type a surname in Latin letters or any other alphabet (e.g. Nakamura, Иванов)."
            )
        return norm


def pad_batch(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad index lists into (batch, max_len) int64 plus their (batch,) lengths."""
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    out = torch.full((len(sequences), int(lengths.max())), PAD, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out, lengths
