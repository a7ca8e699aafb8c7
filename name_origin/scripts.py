"""What script each letter of a name is in, and what that says about the language.

The text pipeline that encoding.normalize_name() runs, in order (each step a small pure function):

1. clean (name_origin.clean): format characters deleted, edge punctuation trimmed, "LAST, First" cut;
2. lookalikes (name_origin.clean): Cyrillic or Greek letters inside an otherwise Latin word read as
   the Latin letters they look like (Unicode confusables, UTS #39);
3. scripts (here): each letter's Unicode script (ISO 15924 code) from `fontTools.unicodedata`
   (Unicode 18), and the evidence() a name's letters give: its non-Latin scripts and its non-ASCII
   Latin letters;
4. transliteration (name_origin.readers): anyascii, with a documented rule per script where its
   output departs from how the training data spells names of that script.

The script prior (used by the predictor, not by normalize_name) is here too: `script_prior()` turns
a name's evidence into a prior over the languages, from the Unicode CLDR exemplar characters of each
language's locale (CLDR_EXEMPLARS below, with its source).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from fontTools import unicodedata as ucd

LATIN, CYRILLIC, GREEK = "Latn", "Cyrl", "Grek"
HAN, HANGUL, HIRAGANA, KATAKANA, ARABIC = "Hani", "Hang", "Hira", "Kana", "Arab"
# Han alone is read as Mandarin pinyin, a reading imposed on Japanese kanji too: the model's answer
# on it is no evidence between Chinese and Japanese, so p(c|x) is taken as the prior (Bayes with
# an uninformative observation). Kana or Hangul beside it would say which.
UNREADABLE = frozenset({HAN})
ALPHABETS = {LATIN, CYRILLIC, GREEK}  # the scripts whose letters look alike (and read as one word side by side)
NEUTRAL_SCRIPTS = {"Zyyy", "Zinh", "Zzzz"}  # Common, Inherited, Unknown: say nothing about a language


# --- 3. scripts ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def script(char: str) -> str:
    """ISO 15924 code of a character's Unicode script ("Latn", "Cyrl", "Hani", "Zyyy" for Common …)."""
    return ucd.script(char)


def script_name(code: str) -> str:
    """The English name of an ISO 15924 script code ("Cyrl" -> "Cyrillic"); the code if unknown."""
    return ucd.script_name(code, default=code)


def letter_scripts(text: str) -> tuple[str, ...]:
    """Scripts of the letters of text, in order of first appearance; Common and Inherited left out."""
    if text.isascii():
        return (LATIN,) if any(c.isalpha() for c in text) else ()
    return tuple(dict.fromkeys(s for c in text if c.isalpha() and (s := script(c)) not in NEUTRAL_SCRIPTS))


def evidence(text: str) -> frozenset[str]:
    """What the letters of text tell about its language: the script code of each non-Latin letter
    and each non-ASCII Latin letter itself (lower case, composed). Empty for plain ASCII names."""
    if text.isascii():
        return frozenset()
    marks = set()
    for c in unicodedata.normalize("NFC", text.lower()):
        if not c.isalpha() or c.isascii():
            continue
        s = script(c)
        if s == LATIN:
            marks.add(c)
        elif s not in NEUTRAL_SCRIPTS:
            marks.add(s)
    return frozenset(marks)


# --- the script prior ---------------------------------------------------------------------------

# Main exemplar characters (the letters of everyday writing) of each language's CLDR locale, copied
# verbatim from Unicode CLDR, cldr-json package cldr-misc-full, main/<locale>/characters.json,
# key "exemplarCharacters": CLDR 48 (cldr-json 48.2.0-BETA0) for cs de el ga gd it nl pl pt vi, and
# CLDR 42 (cldr-json 42.0.0) for ar en es fr ru. {…} sequences (cs ch, nl ij) are not single letters.
# ko, ja and zh list thousands of syllables or ideographs; what counts here is their scripts: ko
# Hangul syllables; ja hiragana, katakana and kanji (Han); zh Han.
CLDR_EXEMPLARS = {
    "ar": "[\\u064B \\u064C \\u064D \\u064E \\u064F \\u0650 \\u0651 \\u0652 \\u0670 "
    "ء أ ؤ إ ئ ا آ ب ة ت ث ج ح خ د ذ ر ز س ش ص ض ط ظ ع غ ف ق ك ل م ن ه و ى ي]",
    "cs": "[aá b c č dď eéě f g h {ch} ií j k l m nň oó p q r ř s š tť uúů v w x yý z ž]",
    "de": "[aä b c d e f g h i j k l m n oö p q r s ß t uü v w x y z]",
    "el": "[αά β γ δ εέ ζ ηή θ ιίϊΐ κ λ μ ν ξ οό π ρ σς τ υύϋΰ φ χ ψ ωώ]",
    "en": "[a b c d e f g h i j k l m n o p q r s t u v w x y z]",
    "es": "[a á b c d e é f g h i í j k l m n ñ o ó p q r s t u ú ü v w x y z]",
    "fr": "[a à â æ b c ç d e é è ê ë f g h i î ï j k l m n o ô œ p q r s t u ù û ü v w x y ÿ z]",
    "ga": "[aá b c d eé f g h ií l m n oó p r s t uú]",
    "gd": "[aà b c d eè f g h iì l m n oò p r s t uù]",
    "it": "[aà b c d eéè f g h iì j k l m n oò p q r s t uù v w x y z]",
    "nl": "[aáä b c d eéë f g h iíï {ij}{íj́} j k l m n oóö p q r s t uúü v w x y z]",
    "pl": "[a ą b c ć d e ę f g h i j k l ł m n ń o ó p r s ś t u w y z ź ż]",
    "pt": "[aáàâã b cç d eéê f g h ií j k l m n oóòôõ p q r s t uú v w x y z]",
    "ru": "[а б в г д е ё ж з и й к л м н о п р с т у ф х ц ч ш щ ъ ы ь э ю я]",
    "vi": "[aàảãáạ ăằẳẵắặ âầẩẫấậ b c d đ eèẻẽéẹ êềểễếệ g h iìỉĩíị k l m n oòỏõóọ ôồổỗốộ ơờởỡớợ p q r s t "
    "uùủũúụ ưừửữứự v x yỳỷỹýỵ]",
}
CLDR_SCRIPTS = {"ko": (HANGUL,), "ja": (HIRAGANA, KATAKANA, HAN), "zh": (HAN,)}
LOCALES = {
    "Arabic": "ar", "Chinese": "zh", "Czech": "cs", "Dutch": "nl", "English": "en", "French": "fr", "German": "de",
    "Greek": "el", "Irish": "ga", "Italian": "it", "Japanese": "ja", "Korean": "ko", "Polish": "pl",
    "Portuguese": "pt", "Russian": "ru", "Scottish": "gd", "Spanish": "es", "Vietnamese": "vi",
}  # fmt: skip
# Weight of a language whose orthography lacks a mark of the name, against 1 for those that have
# it. A script: near zero, since among these languages only Russian writes Cyrillic (a Japanese name
# typed in Cyrillic reads as Russian); not exactly zero, so the other bars keep the model's order.
# A Latin letter: a hundredth, a prior and not a veto, since names keep their letters across
# borders (Müller in an English list, Zoë in a French one).
SCRIPT_FLOOR, LETTER_FLOOR = 1e-4, 1e-2


def _letters(spec: str) -> frozenset[str]:
    """The single letters of a CLDR UnicodeSet like "[aá b {ch} \\u064B]"."""
    body = re.sub(r"\{[^}]*\}", " ", spec.strip()[1:-1])
    body = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), body)
    return frozenset(c for c in unicodedata.normalize("NFC", body) if c.isalpha())


@functools.cache
def orthography(locale: str) -> frozenset[str]:
    """The marks a locale writes: its non-ASCII Latin letters and the scripts of its other letters."""
    if locale in CLDR_SCRIPTS:
        return frozenset(CLDR_SCRIPTS[locale])
    letters = _letters(CLDR_EXEMPLARS[locale])
    return frozenset(c if script(c) == LATIN else script(c) for c in letters if not c.isascii())


@dataclass(frozen=True)
class ScriptPrior:
    """π(language | letters): weights in label order, the languages that write every mark, a sentence."""

    weights: tuple[float, ...]
    languages: tuple[str, ...]  # languages whose orthography holds every mark (empty: no prior)
    text: str  # a sentence for the page
    short: str  # a few words for a table cell: "Cyrillic: Russian"
    reading_is_evidence: bool = True  # False: the ASCII reading cannot tell the script's languages apart


def _and(items) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@functools.lru_cache(maxsize=1024)
def script_prior(labels: tuple[str, ...], marks: frozenset[str]) -> ScriptPrior | None:
    """The prior that the name's marks (evidence()) put on the labels; None when there are none.

    Uniform over the languages whose CLDR orthography contains every mark; the others get
    SCRIPT_FLOOR when a mark is a non-Latin script, else LETTER_FLOOR. When no language writes
    every mark (a script none of them uses, or a letter like ø), the prior is flat: weights all 1."""
    if not marks:
        return None
    scripts = sorted(m for m in marks if len(m) == 4)
    letters = sorted(m for m in marks if len(m) == 1)
    known = [lab for lab in labels if lab in LOCALES]
    fits = tuple(lab for lab in known if marks <= orthography(LOCALES[lab]))
    n = len(labels)
    short = ", ".join(map(script_name, scripts)) if scripts else " ".join(letters)
    short += f": {_and(fits) if fits else f'none of the {n} languages'}"
    if not fits:
        unused = [s for s in scripts if not any(s in orthography(LOCALES[lab]) for lab in known)]
        return ScriptPrior((1.0,) * n, (), _no_prior_text(scripts, letters, unused, n), short)
    floor = SCRIPT_FLOOR if scripts else LETTER_FLOOR
    weights = tuple(1.0 if lab in fits or lab not in LOCALES else floor for lab in labels)
    verb = "uses" if scripts else "writes"
    only = fits[0] + " " + verb if len(fits) == 1 else _and(fits) + " " + verb.rstrip("s")
    text = f"{_what(scripts, letters)}: of the {n} languages only {only} {_them(scripts, letters)}"
    text += f" (Unicode CLDR alphabets); the others are weighted ×{floor:g}."
    return ScriptPrior(weights, fits, text, short, marks != UNREADABLE)


def _what(scripts: list[str], letters: list[str]) -> str:
    """The marks as the prior's sentence opens: "Written in Cyrillic", "The letters á, ř"."""
    if scripts:
        return f"Written in {_and(map(script_name, scripts))}"
    return f"The letter{'s' if len(letters) > 1 else ''} {', '.join(letters)}"


def _them(scripts: list[str], letters: list[str]) -> str:
    return "them" if len(scripts) + len(letters) > 1 else "it"


def _no_prior_text(scripts: list[str], letters: list[str], unused: list[str], n: int) -> str:
    """Why a name whose marks no language writes all of gets a flat prior."""
    if unused:
        return (
            f"Written in {_and(map(script_name, unused))}, which none of the {n} languages uses: read through "
            "its ASCII transliteration, without a script prior."
        )
    them = "all of them" if _them(scripts, letters) == "them" else "it"
    return f"{_what(scripts, letters)}: none of the {n} languages writes {them}, so no prior."
