"""Read the batch upload the way spreadsheet programs write it: bytes in, a Table out.

The text encoding is found in this order:
1. a byte-order mark: UTF-8, UTF-16 LE/BE (Excel's "Unicode text"), UTF-32;
2. strict UTF-8 (plain ASCII included);
3. otherwise a legacy code page. charset-normalizer proposes the code pages spreadsheet programs
   save in (LEGACY) and scores their mess and coherence, but a short file (a few names, a handful of
   accented bytes) is too little for any detector: for "Müller;Lefèvre" in Windows-1252 it ranks
   Windows-1250 ("Lefčvre") first. So each reading is also checked the way names read (garbled()):
   a word that mixes scripts ("Mьller"), puts a symbol between letters (Polish "Łukasz" in 1252:
   "£ukasz"), has a capital inside ("MŸller"), only accented letters, Cyrillic or Greek without a
   vowel, or accents that no single language has ("Dvoøák"). Readings rank by: fewest garbled words;
   valid UTF-8 sequences (mostly-UTF-8 text with a few bad bytes is read as UTF-8, U+FFFD in their
   place); single-byte before multi-byte code pages; a first row that holds a header word (苗字,
   Фамилия); fewest Latin alphabets for all the accents; fewest rare CJK characters; charset-
   normalizer's mess, then coherence; LEGACY's order (Windows-1252 first; Latin-1 reads the same in
   it). A best reading that still garbles most words means the file is not text we can read.

A guessed encoding is reported, and a name with U+FFFD (or one that still reads garbled) is never
classified: its row keeps a reason. Then the separator: Excel's "sep=;" first line when present, else
whichever of tab, semicolon and comma splits most rows into the same number of cells (none: one
column). The first row is a header when one of its cells names a name column in one of the app's
languages (HEADER_WORDS; case and accents ignored), unless the caller says. The names come from the
column whose header names a surname (else a generic "name"), else the first, unless the caller says.
Names stay aligned with the file's rows: a blank or unreadable cell keeps its row with a reason.
Anything that is not text (binary junk, an .xlsx renamed .csv, an empty file) raises TableError with
one message fit for users.
"""

from __future__ import annotations

import codecs
import csv
import functools
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

MAX_BYTES = 5 * 1024 * 1024  # the app's upload limit (launch(max_file_size="5mb"))
SAMPLE_BYTES = 32_768  # of lines with non-ASCII bytes: what the encoding is judged on
SNIFF_ROWS = 200  # rows the separator is judged on
SAVE_AS_UTF8 = 'save it from your spreadsheet as "CSV UTF-8" and upload it again'

# Code pages spreadsheet programs save CSV/text in, in the order that breaks ties (most common first).
LEGACY = {
    "cp1252": "Windows-1252 (Western European)",
    "cp1250": "Windows-1250 (Central European)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "cp1253": "Windows-1253 (Greek)",
    "cp1254": "Windows-1254 (Turkish)",
    "cp1257": "Windows-1257 (Baltic)",
    "cp1256": "Windows-1256 (Arabic)",
    "mac_roman": "Mac OS Roman",
    "iso8859_2": "ISO-8859-2 (Central European)",
    "koi8_r": "KOI8-R (Cyrillic)",
    "latin_1": "ISO-8859-1 (Latin-1)",
    # Multi-byte code pages of Japanese, Chinese and Korean Excel: chosen only when no single-byte
    # one reads as well, as short runs of any high bytes decode to some ideographs or syllables.
    "cp932": "Shift_JIS (Japanese)",
    "cp949": "CP949/EUC-KR (Korean)",
    "gb18030": "GB18030/GBK (Simplified Chinese)",
    "big5": "Big5 (Traditional Chinese)",
}
MULTI_BYTE = {"cp932", "gb18030", "cp949", "big5"}
UNICODE_NAMES = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (with BOM)", "utf-16": "UTF-16", "utf-32": "UTF-32"}
BOMS = [  # UTF-32 LE first: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
SIGNATURES = [  # binary files people upload by mistake
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF"),
    (b"{\\rtf", "an RTF document"),
]

# Header cells, folded (see fold()). SURNAME_WORDS pick the names column; NAME_WORDS (a generic
# "name") too when no surname column is there; OTHER_WORDS (given names) only mark a header row.
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

# The accented letters of the languages that write names in Latin letters: a word whose accented
# letters no single one of them has (e.g. "dvoøák", Czech read in the wrong code page) reads garbled.
LATIN_ALPHABETS = [
    set(s)
    for s in (
        "äöüß", "àâæçéèêëîïôœùûüÿ", "áéíñóúü", "áâãàçéêíóôõú", "àèéìíîòóùú", "àçèéíïòóúü", "áéíóúàèëïöü",
        "æøåéó", "åäöé", "áðéíóúýþæö", "ąćęłńóśźż", "áčďéěíňóřšťúůýž", "áäčďéíĺľňóôŕšťúýž", "čćđšž",
        "áéíóöőúüű", "ăâîșțşţ", "çğıöşüâîû", "ąčęėįšųūž", "āčēģīķļņšūž", "äõöüšž", "áéíóú", "àèìòùé", "çë",
        "ċġħż", "âêîôûŵŷäëïöü",
    )
]  # fmt: skip
EDGE_MARKS = "«»“”„‚‘’‹›¿¡…–—•·´`'\""  # may wrap a word
VOWELS = set("аеёиоуыэюяіїєъαάεέηήιίϊΐοόυύϋΰωώ")  # Cyrillic and Greek: every name has one
SYMBOLS = "€£¥°–—…•·«»“”„‘’‚\xa0"  # may stand alone between separators
INNER_MARKS = "’‘´ʼ·–—‐-'"  # may sit inside a name: O’Brien, Jean–Pierre, Paral·lel
_WORD = re.compile(r"[^\s!-/:-@\[-`{-~0-9]+")  # runs of anything but spaces, ASCII punctuation and digits
_SEP_LINE = re.compile(r'\A"?sep=([^\r\n"])"?[ \t]*(?:\r\n|\r|\n|\Z)', re.IGNORECASE)
_INNER = re.compile(f"[{re.escape(INNER_MARKS)}]")
_HIGH, _EOL = re.compile(rb"[\x80-\xff]"), re.compile(rb"[\r\n]")
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f\x80-\x9f]")  # not \t \n \v \f \r, nor \x1a (DOS end of file)


class TableError(ValueError):
    """A file that cannot be read as a table of names; the message is safe to show to a user."""


@dataclass(frozen=True)
class Table:
    """A batch upload read: how it was read, and one name per data row."""

    encoding: str  # codec name: "utf-8", "utf-8-sig", "utf-16", "cp1252", ...; "" for pasted text
    delimiter: str  # ",", ";", "\t" (or what a sep= line says); "" when each row is one cell
    header: bool  # whether the first row was taken as a header (and left out of names)
    columns: list[str]  # a label per column: the header's cells, else "column 1", "column 2", ...
    column: int  # index of the column the names come from
    names: list[str]  # the chosen cell of each data row, stripped ("" for a blank or missing cell)
    rows: list[int]  # each name's row in the file as a spreadsheet numbers it (the header is row 1)
    problems: list[str]  # per name: "" when it can be classified, else why it is not
    guessed: bool = False  # True when the encoding was guessed (no BOM, not UTF-8)
    sep_line: bool = False  # True when an Excel "sep=" line set the delimiter
    notes: list[str] = field(default_factory=list)  # what a user should know about the reading
    examples: list[str] = field(default_factory=list)  # per column, its first non-blank cell below the header

    @property
    def encoding_name(self) -> str:
        return UNICODE_NAMES.get(self.encoding) or LEGACY.get(self.encoding, self.encoding)

    def describe(self) -> str:
        """One plain-text sentence on how the file was read (the caller escapes it for Markdown)."""
        sep = {",": "comma", ";": "semicolon", "\t": "tab", "": ""}.get(self.delimiter, f"'{self.delimiter}'")
        parts = [f"read as {self.encoding_name}"]
        parts.append(f"{sep}-separated" + (" (from its sep= line)" if self.sep_line else "") if sep else "one column")
        parts.append("first row taken as the header" if self.header else "no header row")
        if len(self.columns) > 1:
            which = f'"{self.columns[self.column]}"' if self.header else str(self.column + 1)
            parts.append(f"names from column {which}")
        return "File " + ", ".join(parts) + "." + "".join(" " + n for n in self.notes)


def fold(cell: str) -> str:
    """A header cell compared without case, accents, or the punctuation around words."""
    text = unicodedata.normalize("NFKD", cell.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[_\-.:*#()\[\]\"'/]+", " ", text).split())


SURNAME_WORDS, NAME_WORDS, OTHER_WORDS = (
    {fold(w) for w in words} for words in (SURNAME_WORDS, NAME_WORDS, OTHER_WORDS)
)
HEADER_WORDS = SURNAME_WORDS | NAME_WORDS | OTHER_WORDS | set(EXACT_WORDS)  # as fold() leaves them


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


# --- encoding ---------------------------------------------------------------------------------


def _script(c: str) -> str:
    name = unicodedata.name(c, "")
    if name.startswith("HALFWIDTH"):
        return "HALFWIDTH"  # half-width katakana: a Japanese name is written all in them or not at all
    if "CJK" in name or "HIRAGANA" in name or "KATAKANA" in name:
        return "CJK"
    return "LATIN" if "LATIN" in name else name.split(" ", 1)[0]


@functools.lru_cache(maxsize=65_536)
def garbled(word: str) -> bool:
    """True for a word as no language writes it: what text read in the wrong code page looks like."""
    word = unicodedata.normalize("NFC", word).strip(EDGE_MARKS)
    if "\ufffd" in word:
        return True  # bytes that did not decode
    if word.isascii():
        return False
    if not any(c.isalpha() for c in word):  # "€", "–" alone are fine; "∞≠", "†‘؛" are not
        return len(word) > 1 or word not in SYMBOLS
    if any(not (c.isalpha() or unicodedata.combining(c) or c in INNER_MARKS) for c in word):
        return True  # a symbol or control character between letters: "£ukasz", "M³ller"
    scripts = {_script(c) for c in word if c.isalpha()}
    if len(scripts) > 1:
        return True  # "Mьller"
    if scripts & {"CYRILLIC", "GREEK"} and len(word) > 1 and not VOWELS.intersection(word.lower()):
        return True  # "Нх": Chinese "王" read in Windows-1251 (an initial, "П", is fine)
    for part in _INNER.split(word):  # O’Éilidhe: a capital after the mark is fine
        if not part.isupper() and any(c.isupper() and not c.isascii() for c in part[1:]):
            return True  # "MŸller", "ImiÍ", "йБЮМНБ"; ASCII inner capitals are names: McDonald
    if scripts == {"LATIN"} and len(word) > 1 and not any(c.isascii() for c in word):
        return True  # "ÕÔ", "Èâàíîâ": no name is all accented letters
    return len(_alphabets({c for c in word.lower() if c.isalpha() and not c.isascii()})) > 1


def _alphabets(letters: set[str]) -> list[set[str]]:
    """Latin alphabets (greedy) that together hold letters; a letter none holds counts as one more.
    [] for no accented Latin letter, one for letters a single language writes."""
    letters = {c for c in letters if _script(c) == "LATIN"}
    chosen: list[set[str]] = []
    while letters:
        best = max(LATIN_ALPHABETS, key=lambda a: len(a & letters))
        chosen.append(best & letters or {letters.pop()})
        letters -= best
    return chosen


def garbled_words(text: str) -> tuple[int, int, bool]:
    """(garbled words, Latin alphabets that all of text's accents need, whether most of text is garbled)."""
    words = [w for w in _WORD.findall(text) if not w.isascii()]
    bad = [w for w in words if garbled(w)]
    accents = {c for w in words for c in w.lower() if c.isalpha() and not c.isascii()}
    bad_chars, chars = sum(map(len, bad)), sum(map(len, words))
    mostly = (len(bad) >= 3 and 2 * len(bad) > len(words)) or (bad_chars >= 16 and 2 * bad_chars > chars)
    return len(bad), len(_alphabets(accents)), mostly


def _rare(code: bytes, encoding: str) -> bool:
    if len(code) != 2:
        return len(code) > 1 or code[0] >= 0x80  # half-width katakana, GB18030's four-byte part
    if encoding == "cp932":
        return code[0] >= 0x98  # beyond JIS X 0208 level 1
    if encoding == "cp949":
        return not (0xB0 <= code[0] <= 0xC8 and code[1] >= 0xA1)  # beyond KS X 1001's syllables
    if encoding == "gb18030":
        return code[0] < 0xA1 or code[1] < 0xA1  # beyond GB 2312
    return code[0] >= 0xC9  # beyond Big5 level 1


def rare_characters(text: str, encoding: str) -> int:
    """How many characters of text lie in the rarely used part of a multi-byte code page: where other
    CJK code pages' bytes land (Shift_JIS read as Korean gives syllables outside KS X 1001)."""
    if encoding not in MULTI_BYTE:
        return 0
    return sum(text.count(c) for c in set(text) if not c.isascii() and _rare(c.encode(encoding), encoding))


def _non_ascii_lines(data: bytes) -> bytes:
    """The lines of data that hold a non-ASCII byte, about SAMPLE_BYTES of them: all that tells code
    pages apart. Cut after an ASCII byte, which never splits a multi-byte character."""
    out, size, pos = [], 0, 0
    while size < SAMPLE_BYTES and (high := _HIGH.search(data, pos)):
        start = max(data.rfind(b"\n", 0, high.start()), data.rfind(b"\r", 0, high.start())) + 1
        end = _EOL.search(data, high.end())
        pos = end.start() if end else len(data)
        out.append(data[start:pos])
        size += pos - start + 1
    sample = b"\n".join(out)
    if len(sample) > SAMPLE_BYTES:
        cut = SAMPLE_BYTES
        while cut > 0 and sample[cut - 1] >= 0x80:
            cut -= 1
        sample = sample[:cut]
    return sample


def _header_hit(line: bytes, encoding: str) -> bool:
    """Whether the file's first line, read in encoding, holds a header word (苗字, Nachname...)."""
    try:
        cells = re.split(r"[,;\t]", line.decode(encoding))
    except UnicodeDecodeError:
        return False
    return any(header_kind(c.strip().strip('"')) for c in cells)


def _legacy(data: bytes) -> tuple[str, str]:
    """(text, codec) of data that is not UTF-8: see the module docstring."""
    sample, eol = _non_ascii_lines(data), _EOL.search(data, 0, 4096)
    first_line = data[: eol.start() if eol else 4096]
    scores: dict[str, tuple[float, float]] = {}
    for match in from_bytes(sample, cp_isolation=list(LEGACY), threshold=1.0):
        for enc in match.could_be_from_charset:
            scores.setdefault(codecs.lookup(enc).name, (match.chaos, match.coherence))
    ranked = []
    for i, enc in enumerate([*LEGACY, "utf-8"]):  # UTF-8 with U+FFFD for its bad bytes: last on ties
        try:
            text = sample.decode(enc, errors="replace" if enc == "utf-8" else "strict")
        except UnicodeDecodeError:
            continue
        chaos, coherence = scores.get(codecs.lookup(enc).name, (1.0, 0.0))
        bad, alphabets, mostly = garbled_words(text)
        hit = _header_hit(first_line, enc)
        rare = rare_characters(text, enc)
        # Valid multi-byte UTF-8 sequences are no accident: on a tie, UTF-8 with a few bad bytes wins.
        utf8 = enc == "utf-8" and sum(not c.isascii() for c in text) >= 2 * text.count("\ufffd")
        key = (bad, not utf8, enc in MULTI_BYTE, not hit, alphabets, rare, chaos, -coherence, i)
        ranked.append((key, enc, mostly))
    for _, enc, mostly in sorted(ranked):
        try:
            text = data.decode(enc, errors="replace" if enc == "utf-8" else "strict")
        except UnicodeDecodeError:  # a byte past the sample that this code page lacks
            continue
        if mostly:
            break  # the best reading still garbles most words: not text in any code page we know
        return text, enc
    raise TableError(f"Could not work out this file's text encoding: {SAVE_AS_UTF8}.")


def decode(data: bytes) -> tuple[str, str, bool]:
    """(text, codec, guessed) of an uploaded file's bytes; TableError for what is not text."""
    for signature, what in SIGNATURES:
        if data.startswith(signature):
            raise TableError(f"That file is {what}, not a CSV: {SAVE_AS_UTF8}.")
    bom = next((enc for mark, enc in BOMS if data.startswith(mark)), None)
    if bom:
        text, enc, guessed = data.decode(bom, errors="replace"), bom, False
    else:
        try:
            text, enc, guessed = data.decode("utf-8"), "utf-8", False
        except UnicodeDecodeError:
            if b"\x00" in data:  # UTF-16 without a BOM, or not text at all
                raise TableError(f"That file does not look like a CSV or text file: {SAVE_AS_UTF8}.") from None
            text, enc = _legacy(data)
            guessed = True
    controls = len(_CONTROLS.findall(text))
    if "\x00" in text or controls > max(2, len(text) // 200):
        raise TableError(f"That file does not look like a CSV or text file: {SAVE_AS_UTF8}.")
    return text, enc, guessed


# --- rows, separator, header, column ------------------------------------------------------------


def _parse(text: str, delimiter: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter or "\x1f", skipinitialspace=True)
    return list(reader)


def find_delimiter(text: str) -> str:
    """Tab, semicolon or comma: the one that splits most of the first rows into the same number (> 1)
    of cells (ties in that order); "" when none does for at least half of them (a single column)."""
    head = text[:65_536]
    head = head[: head.rfind("\n") + 1] or head  # whole lines only
    best, best_share = "", 0.0
    for d in "\t;,":
        try:
            rows = [r for r in _parse(head, d) if any(c.strip() for c in r)][:SNIFF_ROWS]
        except csv.Error:
            continue
        width, count = Counter(len(r) for r in rows).most_common(1)[0] if rows else (0, 0)
        if width > 1 and count / len(rows) > best_share:
            best, best_share = d, count / len(rows)
    return best if best_share >= 0.5 else ""


def name_problem(cell: str, guessed_encoding: str | None = None) -> str:
    """Why a cell cannot be classified ("" when it can). guessed_encoding: the code page the file was
    guessed to be in, when it was, so a name that still reads garbled is held back too."""
    if not cell:
        return "Empty cell: no name in this row."
    if "\ufffd" in cell:
        return f"Holds characters that could not be decoded (shown as �): {SAVE_AS_UTF8}."
    if "\n" in cell or "\r" in cell:
        return "This cell runs over several lines (a stray quote mark?)."
    if _CONTROLS.search(cell):
        return "Holds control characters."
    if guessed_encoding and any(garbled(w) for w in _WORD.findall(cell)):
        return f"Looks garbled: the file's encoding was guessed as {guessed_encoding}; {SAVE_AS_UTF8}."
    return ""


def _pick_column(columns: list[str], header: bool, column: int | str | None) -> int:
    if column is None or column == "":
        if header:
            for kind in ("surname", "name"):
                found = next((i for i, c in enumerate(columns) if header_kind(c) == kind), None)
                if found is not None:
                    return found
        return 0
    if isinstance(column, str) and not column.strip().lstrip("-").isdigit():
        wanted = fold(column)
        found = next((i for i, c in enumerate(columns) if fold(c) == wanted), None)
        if found is None:
            raise TableError(f"There is no column {column!r}; the columns are: {', '.join(columns)}.")
        return found
    index = int(column)
    if not 0 <= index < len(columns):
        raise TableError(f"There is no column {index + 1}: the file has {len(columns)}.")
    return index


def read_table(data: bytes, header: bool | None = None, column: int | str | None = None) -> Table:
    """A CSV/TSV/text file's bytes -> Table. header: None detects it, True/False says. column: None
    picks it; an index (0 = first) or a header cell's text chooses. Raises TableError."""
    if len(data) > MAX_BYTES:
        raise TableError(f"That file is over the {MAX_BYTES // 2**20} MB limit: please split it.")
    if not data.strip(b" \t\r\n\x00" + codecs.BOM_UTF8 + b"\xff\xfe"):
        raise TableError("That file is empty.")
    text, encoding, guessed = decode(data)
    text = text.lstrip("\ufeff")
    sep = _SEP_LINE.match(text)
    delimiter = sep.group(1) if sep else find_delimiter(text)
    if sep:
        text = text[sep.end() :]
    try:
        records = _parse(text, delimiter)
    except csv.Error as e:
        if "field limit" in str(e):
            raise TableError("That file has a cell over 128 KB long: is a quote mark left open?") from None
        raise TableError(f"That file could not be read as CSV ({e}).") from None
    numbered = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(records)]
    while numbered and not any(numbered[-1][1]):
        numbered.pop()  # the blank rows spreadsheet programs leave at the end
    start = next((k for k, (_, r) in enumerate(numbered) if any(r)), len(numbered))
    first = numbered[start][1] if start < len(numbered) else []
    header = bool(first) and (any(header_kind(c) for c in first) if header is None else header)
    width = max((len(r) for _, r in numbered[:1000]), default=1) or 1
    if header:
        head, numbered = first, numbered[start + 1 :]  # blank rows above a header go with it
        columns = [head[i] if i < len(head) and head[i] else f"column {i + 1}" for i in range(width)]
    else:
        columns = [f"column {i + 1}" for i in range(width)]
    index = _pick_column(columns, header, column)
    examples = [next((r[i] for _, r in numbered[:100] if i < len(r) and r[i]), "") for i in range(width)]
    names = [r[index] if index < len(r) else "" for _, r in numbered]
    label = LEGACY.get(encoding) if guessed else None  # None for UTF-8 with a few bad bytes
    problem = {n: name_problem(n, label) for n in set(names)}
    problems = [problem[n] for n in names]
    notes = []
    if guessed and encoding == "utf-8":
        notes.append(f"Some of its bytes are not valid UTF-8 and show as �: {SAVE_AS_UTF8}.")
    elif guessed:
        notes.append(f"It is not UTF-8, so its encoding was guessed: if names look wrong, {SAVE_AS_UTF8}.")
    rows = [n for n, _ in numbered]
    return Table(
        encoding, delimiter, header, columns, index, names, rows, problems, guessed, bool(sep), notes, examples
    )


def read_file(path: str | Path, header: bool | None = None, column: int | str | None = None) -> Table:
    """read_table() of a file on disk; an unreadable or oversized file raises TableError."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TableError(f"That file is over the {MAX_BYTES // 2**20} MB limit: please split it.")
        data = path.read_bytes()
    except OSError:
        raise TableError("That file could not be opened: please upload it again.") from None
    return read_table(data, header, column)


def from_text(text: str | None) -> Table:
    """Pasted names, one per line: blank lines are skipped, the rest keep their line numbers."""
    lines = [(i + 1, s.strip()) for i, s in enumerate((text or "").splitlines()) if s.strip()]
    names = [s for _, s in lines]
    return Table("", "", False, [], 0, names, [i for i, _ in lines], [name_problem(s) for s in names])
