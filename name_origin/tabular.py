"""Read the batch upload the way spreadsheet programs write it: bytes in, a Table out.

The bytes become text in name_origin.decode (BOM, UTF-8, else a guessed legacy code page; what is
not text raises TableError). A guessed encoding is reported, and a name with U+FFFD (or one that
still reads garbled) is never classified: its row keeps a reason. Then the separator: Excel's "sep=;"
first line when present, else whichever of tab, semicolon and comma splits most rows into the same
number of cells (none: one column). The first row is a header when one of its cells names a name
column in one of the app's languages (name_origin.headers; case and accents ignored), unless the
caller says. The names come from the column whose header names a surname (else a generic "name"),
else the first, unless the caller says. Names stay aligned with the file's rows: a blank or
unreadable cell keeps its row with a reason. An empty or oversized file raises TableError too.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from name_origin.decode import CONTROLS, LEGACY, SAVE_AS_UTF8, WORD, TableError, decode, encoding_name, garbled
from name_origin.headers import fold, header_kind

MAX_BYTES = 5 * 1024 * 1024  # the app's upload limit (launch(max_file_size="5mb"))
TOO_BIG = f"That file is over the {MAX_BYTES // 2**20} MB limit: please split it."
SNIFF_ROWS = 200  # rows the separator is judged on
_SEP_LINE = re.compile(r'\A"?sep=([^\r\n"])"?[ \t]*(?:\r\n|\r|\n|\Z)', re.IGNORECASE)


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
        return encoding_name(self.encoding)

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


# --- separator ----------------------------------------------------------------------------------


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


def _records(text: str) -> tuple[str, bool, list[list[str]]]:
    """(delimiter, whether a sep= line set it, the rows of cells) of a file's text."""
    sep = _SEP_LINE.match(text)
    delimiter = sep.group(1) if sep else find_delimiter(text)
    if sep:
        text = text[sep.end() :]
    try:
        return delimiter, bool(sep), _parse(text, delimiter)
    except csv.Error as e:
        if "field limit" in str(e):
            raise TableError("That file has a cell over 128 KB long: is a quote mark left open?") from None
        raise TableError(f"That file could not be read as CSV ({e}).") from None


# --- header, column, rows -----------------------------------------------------------------------


def name_problem(cell: str, guessed_encoding: str | None = None) -> str:
    """Why a cell cannot be classified ("" when it can). guessed_encoding: the code page the file was
    guessed to be in, when it was, so a name that still reads garbled is held back too."""
    if not cell:
        return "Empty cell: no name in this row."
    if "\ufffd" in cell:
        return f"Holds characters that could not be decoded (shown as �): {SAVE_AS_UTF8}."
    if "\n" in cell or "\r" in cell:
        return "This cell runs over several lines (a stray quote mark?)."
    if CONTROLS.search(cell):
        return "Holds control characters."
    if guessed_encoding and any(garbled(w) for w in WORD.findall(cell)):
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


Rows = list[tuple[int, list[str]]]  # (row number as a spreadsheet shows it, the row's stripped cells)


def _split_header(records: list[list[str]], header: bool | None) -> tuple[bool, list[str], Rows]:
    """(whether there is a header row, a label per column, the data rows). header: None detects it.
    Blank rows at the end are dropped; blank rows above a header go with it."""
    numbered = [(i + 1, [c.strip() for c in r]) for i, r in enumerate(records)]
    while numbered and not any(numbered[-1][1]):
        numbered.pop()  # the blank rows spreadsheet programs leave at the end
    start = next((k for k, (_, r) in enumerate(numbered) if any(r)), len(numbered))
    first = numbered[start][1] if start < len(numbered) else []
    header = bool(first) and (any(header_kind(c) for c in first) if header is None else header)
    width = max((len(r) for _, r in numbered[:1000]), default=1) or 1
    if not header:
        return False, [f"column {i + 1}" for i in range(width)], numbered
    columns = [first[i] if i < len(first) and first[i] else f"column {i + 1}" for i in range(width)]
    return True, columns, numbered[start + 1 :]


def read_table(data: bytes, header: bool | None = None, column: int | str | None = None) -> Table:
    """A CSV/TSV/text file's bytes -> Table. header: None detects it, True/False says. column: None
    picks it; an index (0 = first) or a header cell's text chooses. Raises TableError."""
    if len(data) > MAX_BYTES:
        raise TableError(TOO_BIG)
    if not data.strip(b" \t\r\n\x00" + codecs.BOM_UTF8 + b"\xff\xfe"):
        raise TableError("That file is empty.")
    text, encoding, guessed = decode(data)
    delimiter, sep_line, records = _records(text.lstrip("\ufeff"))
    header, columns, numbered = _split_header(records, header)
    index = _pick_column(columns, header, column)
    examples = [next((r[i] for _, r in numbered[:100] if i < len(r) and r[i]), "") for i in range(len(columns))]
    names = [r[index] if index < len(r) else "" for _, r in numbered]
    label = LEGACY.get(encoding) if guessed else None  # None for UTF-8 with a few bad bytes
    problem = {n: name_problem(n, label) for n in set(names)}
    notes = []
    if guessed and encoding == "utf-8":
        notes.append(f"Some of its bytes are not valid UTF-8 and show as �: {SAVE_AS_UTF8}.")
    elif guessed:
        notes.append(f"It is not UTF-8, so its encoding was guessed: if names look wrong, {SAVE_AS_UTF8}.")
    rows, problems = [n for n, _ in numbered], [problem[n] for n in names]
    return Table(encoding, delimiter, header, columns, index, names, rows, problems, guessed, sep_line, notes, examples)


def read_file(path: str | Path, header: bool | None = None, column: int | str | None = None) -> Table:
    """read_table() of a file on disk; an unreadable or oversized file raises TableError."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise TableError(TOO_BIG)
        data = path.read_bytes()
    except OSError:
        raise TableError("That file could not be opened: please upload it again.") from None
    return read_table(data, header, column)


def from_text(text: str | None) -> Table:
    """Pasted names, one per line: blank lines are skipped, the rest keep their line numbers."""
    lines = [(i + 1, s.strip()) for i, s in enumerate((text or "").splitlines()) if s.strip()]
    names = [s for _, s in lines]
    return Table("", "", False, [], 0, names, [i for i, _ in lines], [name_problem(s) for s in names])
