"""An uploaded file's bytes to text: the encoding spreadsheet programs saved it in, and whether the
text reads as names at all.

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
   Фамилия; name_origin.headers); fewest Latin alphabets for all the accents; fewest rare CJK
   characters; charset-normalizer's mess, then coherence; LEGACY's order (Windows-1252 first; Latin-1
   reads the same in it). A best reading that still garbles most words means the file is not text we
   can read.

Anything that is not text (binary junk, an .xlsx renamed .csv, a file full of control characters)
raises TableError with one message fit for users.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata

from charset_normalizer import from_bytes

from name_origin.headers import header_kind

SAMPLE_BYTES = 32_768  # of lines with non-ASCII bytes: what the encoding is judged on
SAVE_AS_UTF8 = 'save it from your spreadsheet as "CSV UTF-8" and upload it again'
NOT_TEXT = f"That file does not look like a CSV or text file: {SAVE_AS_UTF8}."

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
WORD = re.compile(r"[^\s!-/:-@\[-`{-~0-9]+")  # runs of anything but spaces, ASCII punctuation and digits
CONTROLS = re.compile(r"[\x00-\x08\x0e-\x19\x1b-\x1f\x7f\x80-\x9f]")  # not \t \n \v \f \r, nor \x1a (DOS end of file)
_INNER = re.compile(f"[{re.escape(INNER_MARKS)}]")
_HIGH, _EOL = re.compile(rb"[\x80-\xff]"), re.compile(rb"[\r\n]")


class TableError(ValueError):
    """A file that cannot be read as a table of names; the message is safe to show to a user."""


def encoding_name(codec: str) -> str:
    """A codec as users know it: "utf-8-sig" -> "UTF-8 (with BOM)", "cp1252" -> "Windows-1252 (...)"."""
    return UNICODE_NAMES.get(codec) or LEGACY.get(codec, codec)


# --- does it read as names? ---------------------------------------------------------------------


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
    words = [w for w in WORD.findall(text) if not w.isascii()]
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


# --- which code page ----------------------------------------------------------------------------


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


def _ranked(data: bytes) -> list[tuple[tuple, str, bool]]:
    """(sort key, codec, whether most words read garbled) of each code page that can read data's
    non-ASCII lines, best first: see the module docstring for the order."""
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
    return sorted(ranked)


def _legacy(data: bytes) -> tuple[str, str]:
    """(text, codec) of data that is not UTF-8: the best reading of the whole file (_ranked())."""
    for _, enc, mostly in _ranked(data):
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
                raise TableError(NOT_TEXT) from None
            text, enc = _legacy(data)
            guessed = True
    if "\x00" in text or len(CONTROLS.findall(text)) > max(2, len(text) // 200):
        raise TableError(NOT_TEXT)
    return text, enc, guessed
