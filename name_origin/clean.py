"""Steps 1 and 2 of the text pipeline (see name_origin.scripts): a raw name cleaned, lookalikes folded.

1. clean: Unicode format characters (category Cf: soft hyphen, zero-width space, ZWJ/ZWNJ, BOM,
   LRM/RLM) are deleted; every apostrophe-like character (` ´ ’ ‘ ʼ) is read as ' (before NFKC,
   which splits ´ into a space and an accent); punctuation and spaces at the edges are trimmed
   ("Dubois," -> "Dubois", "`Smith`" -> "Smith"); "LAST, First" keeps the part before the comma.
2. lookalikes: inside a word (a run of letters between spaces, hyphens, apostrophes...) that is
   otherwise Latin, a Cyrillic or Greek letter is read as its Latin lookalike ("Nоvak" with a
   Cyrillic о -> "Novak"), from Unicode's confusables data (UTS #39, through the
   `confusable_homoglyphs` package). Words of their own script are left alone ("Ivanov-Иванов").
"""

from __future__ import annotations

import functools
import itertools
import unicodedata

from name_origin.scripts import ALPHABETS, LATIN, script

COMMAS = ",،、"  # Latin, Arabic and ideographic commas (a fullwidth comma is a comma after NFKC)
APOSTROPHES = "`´’‘ʼ'"  # all read as '; to Unicode ʼ (U+02BC) is a letter and ` ´ are symbols, not punctuation
_APOSTROPHE = str.maketrans(dict.fromkeys(APOSTROPHES, "'"))


# --- 1. clean -----------------------------------------------------------------------------------


def delete_format(text: str) -> str:
    """Delete Unicode format characters (category Cf): invisible, they are never word breaks."""
    return "".join(c for c in text if unicodedata.category(c) != "Cf") if not text.isascii() else text


def apostrophes(text: str) -> str:
    """Every apostrophe-like character (` ´ ’ ‘ ʼ) as the ASCII ' the training data writes."""
    return text if text.isascii() and "`" not in text else text.translate(_APOSTROPHE)


def _is_edge(c: str) -> bool:
    """Stray at the edge of a name: whitespace, punctuation (P*), separators, controls, apostrophes."""
    return c.isspace() or unicodedata.category(c)[0] in "PZC" or c in APOSTROPHES


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


def _latin_twin(c: str) -> str:
    """The Latin letter a Cyrillic or Greek letter looks like, in its case ("" when none does).
    The lower-case form first: Cyrillic І looks like a Latin l, but і like an i."""
    table = _lookalike_table()
    twin = table.get((c.lower(), LATIN)) or table.get((c, LATIN)) or ""
    return twin.upper() if twin and c.isupper() else twin


def _fold_word(word: str) -> tuple[str, list[str]]:
    """(word with its Cyrillic and Greek letters read as Latin, those letters) when the word is
    otherwise Latin: it has Latin letters, at least as many as the others, and each other letter
    looks like a Latin one. Any other word is left as it is (Иванов, Иванoв, Παπαδόπουλος)."""
    others = [c for c in word if c.isalpha() and script(c) != LATIN]
    latin = sum(c.isalpha() for c in word) - len(others)
    if not others or latin < len(others) or any(script(c) not in ALPHABETS for c in others):
        return word, []
    twins = {c: _latin_twin(c) for c in others}
    if not all(twins.values()):
        return word, []
    return "".join(twins.get(c, c) for c in word), others


def _is_word_char(c: str) -> bool:
    return c.isalpha() or unicodedata.category(c)[0] == "M"


def fold_lookalikes(text: str) -> tuple[str, str]:
    """(text with the Cyrillic and Greek letters of otherwise Latin words read as their Latin
    lookalikes, the letters so read). A word is a run of letters (and their marks) between spaces,
    hyphens, apostrophes or other non-letters: "Ivanov-Иванов" is two words, each of one script."""
    if text.isascii():
        return text, ""
    out, folded = [], []
    for is_word, chars in itertools.groupby(text, _is_word_char):
        word = "".join(chars)
        word, letters = _fold_word(word) if is_word else (word, [])
        out.append(word)
        folded += letters
    return "".join(out), "".join(dict.fromkeys(folded))
