"""Steps 1 and 2 of the text pipeline (see name_origin.scripts): a raw name cleaned, lookalikes folded.

1. clean: Unicode format characters (category Cf: soft hyphen, zero-width space, ZWJ/ZWNJ, BOM,
   LRM/RLM) are deleted; punctuation and spaces at the edges are trimmed ("Dubois," -> "Dubois");
   "LAST, First" keeps the part before the comma.
2. lookalikes: inside a word that mixes Latin, Cyrillic and Greek, the letters of the minority
   script are read as their lookalikes in the word's main script ("Nоvak" with a Cyrillic о ->
   "Novak"), from Unicode's confusables data (UTS #39, through the `confusable_homoglyphs` package).
"""

from __future__ import annotations

import functools
import re
import unicodedata

from name_origin.scripts import ALPHABETS, LATIN, script

COMMAS = ",،、"  # Latin, Arabic and ideographic commas (a fullwidth comma is a comma after NFKC)


# --- 1. clean -----------------------------------------------------------------------------------


def delete_format(text: str) -> str:
    """Delete Unicode format characters (category Cf): invisible, they are never word breaks."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf") if not text.isascii() else text


def _is_edge(c: str) -> bool:
    """Stray at the edge of a name: whitespace, punctuation (P*), separators and controls."""
    return c.isspace() or unicodedata.category(c)[0] in "PZC"


def trim(text: str) -> tuple[str, str]:
    """(text without stray punctuation and spaces at its edges, the non-space characters trimmed)."""
    start, end = 0, len(text)
    while start < end and _is_edge(text[start]):
        start += 1
    while end > start and _is_edge(text[end - 1]):
        end -= 1
    return text[start:end], "".join(c for c in text[:start] + text[end:] if not c.isspace())


def split_last_first(text: str) -> tuple[str, str]:
    """("LAST", "First") for a "LAST, First" name, else (text, ""): the surname comes before the comma."""
    cut = next((i for i, c in enumerate(text) if c in COMMAS), -1)
    if cut < 0:
        return text, ""
    last, first = trim(text[:cut])[0], trim(text[cut + 1 :])[0]
    if any(c.isalpha() for c in last) and any(c.isalpha() for c in first):
        return last, first
    return text, ""


# --- 2. lookalikes ------------------------------------------------------------------------------


@functools.cache
def _lookalike_table() -> dict[tuple[str, str], str]:
    """(letter, script) -> the letter of that script it is confusable with, among Latin, Cyrillic and
    Greek single letters: Unicode's confusables.txt as shipped by confusable_homoglyphs (loaded once,
    on the first mixed-script word)."""
    from confusable_homoglyphs.confusables import confusables_data

    table: dict[tuple[str, str], str] = {}
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or not char.isalpha() or script(char) not in ALPHABETS:
            continue
        for h in homoglyphs:
            other = h["c"]
            if len(other) != 1 or not other.isalpha() or (s := script(other)) not in ALPHABETS:
                continue
            if s != script(char) and (s != LATIN or other.isascii()):  # Cyrillic о is ASCII o, not a rarer o
                table.setdefault((char, s), other)
    return table


def _fold_word(word: str) -> tuple[str, list[str]]:
    """(word with its minority-script letters read in its main script, the letters so read)."""
    counts: dict[str, int] = {}
    for c in word:
        if c.isalpha() and (s := script(c)) in ALPHABETS:
            counts[s] = counts.get(s, 0) + 1
    if len(counts) < 2:
        return word, []
    main = max(counts, key=lambda s: (counts[s], s == LATIN))  # a tie reads as Latin
    table = _lookalike_table()
    chars, folded = [], []
    for c in word:
        if c.isalpha() and script(c) in counts and script(c) != main:
            # the lower-case form first: Cyrillic І looks like a Latin l, but і like an i
            twin = table.get((c.lower(), main)) or table.get((c, main))
            if twin:
                folded.append(c)
                c = twin.upper() if c.isupper() else twin
        chars.append(c)
    return "".join(chars), folded


def fold_lookalikes(text: str) -> tuple[str, str]:
    """(text with the minority-script letters of mixed Latin/Cyrillic/Greek words read as their
    lookalikes in the word's main script, the letters so read). Single-script words are left alone."""
    if text.isascii():
        return text, ""
    out, folded = [], []
    for word in re.split(r"(\s+)", text):
        word, letters = _fold_word(word)
        out.append(word)
        folded += letters
    return "".join(out), "".join(dict.fromkeys(folded))
