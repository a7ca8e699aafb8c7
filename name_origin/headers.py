"""The header cells that name a name column, in the app's 18 languages (and a few close ones).

A spreadsheet's first row is a header when one of its cells is such a word; the names come from the
column whose header names a surname (else a generic "name"). Cells are compared folded (fold():
case, accents and the punctuation around words ignored), except EXACT_WORDS, whose accents tell
them apart from common surnames. name_origin.decode also looks for these words in a file's first
line to choose between code pages (苗字, Фамилия).
"""

from __future__ import annotations

import re
import unicodedata

# SURNAME_WORDS pick the names column; NAME_WORDS (a generic "name") too when no surname column is
# there; OTHER_WORDS (given names) only mark a header row.
SURNAME_WORDS = {
    "surname", "surnames", "last name", "last names", "lastname", "family name", "family names", "familyname",
    "nachname", "nachnamen", "familienname", "zuname",  # German
    "nom", "noms", "nom de famille", "patronyme",  # French
    "apellido", "apellidos", "primer apellido",  # Spanish
    "cognome", "cognomi",  # Italian
    "achternaam", "familienaam", "geslachtsnaam",  # Dutch
    "nazwisko", "nazwiska",  # Polish
    "prijmeni",  # Czech příjmení
    "sobrenome", "apelido", "apelidos",  # Portuguese (Brazil, Portugal)
    "фамилия", "фамилии",  # Russian
    "επωνυμο", "επιθετο",  # Greek επώνυμο, επίθετο
    "성", "성씨",  # Korean
    "姓", "姓氏",  # Chinese, Japanese
    "苗字", "名字",  # Japanese
    "اسم العائلة", "العائلة", "اللقب", "الكنية",  # Arabic
    "sloinne",  # Irish
    "sloinneadh",  # Scottish Gaelic
}  # fmt: skip
NAME_WORDS = {
    "name", "names", "full name", "fullname",
    "nome",  # Italian, Portuguese
    "naam",  # Dutch
    "名前", "氏名", "姓名", "이름", "الاسم", "ho va ten", "ho ten", "ainm",
}  # fmt: skip
OTHER_WORDS = {
    "first name", "firstname", "given name", "given names", "forename", "forenames", "vorname", "vornamen",
    "prenom", "prenoms", "nombre", "nombres", "voornaam", "imie", "jmeno", "имя", "ονομα", "名",
    "nome proprio", "primeiro nome", "ceadainm",
}  # fmt: skip
# Matched with their accents only: without them they are common surnames (Vietnamese "họ" is "Ho").
EXACT_WORDS = {"họ": "surname", "tên": "other"}


def fold(cell: str) -> str:
    """A header cell compared without case, accents, or the punctuation around words."""
    text = unicodedata.normalize("NFKD", cell.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[_\-.:*#()\[\]\"'/]+", " ", text).split())


SURNAME_WORDS, NAME_WORDS, OTHER_WORDS = (
    {fold(w) for w in words} for words in (SURNAME_WORDS, NAME_WORDS, OTHER_WORDS)
)


def header_kind(cell: str) -> str | None:
    """'surname', 'name' or 'other' for a header cell that names a name column, else None."""
    exact = " ".join(unicodedata.normalize("NFC", cell).casefold().split())
    if exact in EXACT_WORDS:
        return EXACT_WORDS[exact]
    folded = fold(cell)
    for kind, words in (("surname", SURNAME_WORDS), ("name", NAME_WORDS), ("other", OTHER_WORDS)):
        if folded in words:
            return kind
    return None
