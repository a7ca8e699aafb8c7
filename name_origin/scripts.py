"""Any script in, the training data's romanization out; and what the script says about the language.

The steps that encoding.normalize_name() runs, in order (each a small pure function here):

1. clean: Unicode format characters (category Cf: soft hyphen, zero-width space, ZWJ/ZWNJ, BOM,
   LRM/RLM) are deleted; punctuation and spaces at the edges are trimmed ("Dubois," -> "Dubois");
   "LAST, First" keeps the part before the comma.
2. lookalikes: inside a word that mixes Latin, Cyrillic and Greek, the letters of the minority
   script are read as their lookalikes in the word's main script ("Nоvak" with a Cyrillic о ->
   "Novak"), from Unicode's confusables data (UTS #39, through the `confusable_homoglyphs` package).
3. scripts: each letter's Unicode script (ISO 15924 code) from `fontTools.unicodedata` (Unicode 18).
4. transliteration: `anyascii` romanizes every letter; where its output departs from how the
   training data spells names of that script, a short documented rule per script comes first
   (Greek, Cyrillic, kana, Hangul surnames, Arabic; see the readers below).
5. script prior (used by the predictor, not by normalize_name): `script_prior()` turns the scripts
   and the non-ASCII Latin letters of a name into a prior over the languages, from the Unicode CLDR
   exemplar characters of each language's locale.

Han characters alone cannot tell Chinese from Japanese: anyascii reads them as Mandarin pinyin
(田中 -> tianzhong, not Tanaka) and a note says so.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from anyascii import anyascii
from fontTools import unicodedata as ucd

LATIN, CYRILLIC, GREEK = "Latn", "Cyrl", "Grek"
HAN, HANGUL, HIRAGANA, KATAKANA, ARABIC = "Hani", "Hang", "Hira", "Kana", "Arab"
NEUTRAL_SCRIPTS = {"Zyyy", "Zinh", "Zzzz"}  # Common, Inherited, Unknown: say nothing about a language
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
    alphabets = (LATIN, CYRILLIC, GREEK)
    for char, homoglyphs in confusables_data.items():
        if len(char) != 1 or not char.isalpha() or ucd.script(char) not in alphabets:
            continue
        for h in homoglyphs:
            other = h["c"]
            if len(other) != 1 or not other.isalpha() or (s := ucd.script(other)) not in alphabets:
                continue
            if s != ucd.script(char) and (s != LATIN or other.isascii()):  # Cyrillic о is ASCII o, not a rarer o
                table.setdefault((char, s), other)
    return table


def fold_lookalikes(text: str) -> tuple[str, str]:
    """(text with the minority-script letters of mixed Latin/Cyrillic/Greek words read as their
    lookalikes in the word's main script, the letters so read). Single-script words are left alone."""
    if text.isascii():
        return text, ""
    out, folded = [], []
    for word in re.split(r"(\s+)", text):
        counts: dict[str, int] = {}
        for c in word:
            if c.isalpha() and (s := script(c)) in (LATIN, CYRILLIC, GREEK):
                counts[s] = counts.get(s, 0) + 1
        if len(counts) > 1:
            main = max(counts, key=lambda s: (counts[s], s == LATIN))  # a tie reads as Latin
            table = _lookalike_table()
            chars = []
            for c in word:
                if c.isalpha() and script(c) in counts and script(c) != main:
                    # the lower-case form first: Cyrillic І looks like a Latin l, but і like an i
                    twin = table.get((c.lower(), main)) or table.get((c, main))
                    if twin:
                        folded.append(c)
                        c = twin.upper() if c.isupper() else twin
                chars.append(c)
            word = "".join(chars)
        out.append(word)
    return "".join(out), "".join(dict.fromkeys(folded))


# --- 3. scripts ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def script(char: str) -> str:
    """ISO 15924 code of a character's Unicode script ("Latn", "Cyrl", "Hani", "Zyyy" for Common …)."""
    return ucd.script(char)


def script_name(code: str) -> str:
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


# --- 4. transliteration: one reader per script, anyascii for the rest ----------------------------

# Greek: ELOT 743 / ISO 843 (the UN-recommended transcription), which is how the training data
# writes Greek names: ου -> ou (Papadopoulos, Christodoulou), αυ/ευ -> av/ev (Avgerinos,
# Paraskevopoulos), γγ -> ng (Angelopoulos); μπ, ντ, γκ -> b, d, g at the start of a word and mb,
# nt, ng inside it (Paloumbas, Kotsilimbas). anyascii writes υ as y everywhere (Papadopoylos).
_GREEK_PAIRS = {"ου": "ou", "αυ": "av", "ευ": "ev", "ηυ": "iv", "γγ": "ng", "γξ": "nx", "γχ": "nch"}
_GREEK_STOPS = {"μπ": ("b", "mb"), "ντ": ("d", "nt"), "γκ": ("g", "ng")}
_GREEK_RULE = re.compile("|".join([*_GREEK_PAIRS, *_GREEK_STOPS]))


def _greek(word: str) -> str:
    # Drop the tonos (acute) only: a diaeresis (ϋ) says the vowels do not form a pair (Προϋπολογισμός).
    word = unicodedata.normalize("NFC", unicodedata.normalize("NFD", word).replace("\u0301", ""))

    def pair(m: re.Match) -> str:
        g = m.group()
        return _GREEK_PAIRS.get(g) or _GREEK_STOPS[g][m.start() > 0]

    return anyascii(_GREEK_RULE.sub(pair, word))


# Cyrillic: anyascii's scientific-style romanization, with two rules from the training data's
# Russian names: a word-final -ий/-ый is -y (604 training names end in -sky, 1 in -skiy), and
# й after a vowel is i (ai 221 : ay 16, ei 93 : ey 6, oi 34 : oy 12: Chaikovsky, Tsoi). The soft
# and hard signs ь/ъ stay an apostrophe, as in the training names that keep them (Dan'ko, V'yugin).
_CYR_VOWELS = "аеёиоуыэюяіїє"


def _cyrillic(word: str) -> str:
    word = re.sub("[иы]й$", "y", word)
    word = re.sub(f"(?<=[{_CYR_VOWELS}])й", "i", word)
    return anyascii(word)


# Japanese kana: modified Hepburn as the training data writes Japanese names, without long-vowel
# marks (Sato, Ito, Ono, Goto: さとう, いとう, おおの, ごとう): a u after an o or u syllable and an o
# after an o are dropped unless a bare vowel follows (いのうえ stays Inoue); ー is dropped; small
# ゃゅょ join the syllable before (きょう -> kyo, ちゅうじょう -> chujo; anyascii writes kiyou,
# chiyuujiyou); っ doubles the next consonant (さっぽろ -> sapporo, まっちゃ -> matcha).
_SMALL_Y = {"ゃ": "a", "ゅ": "u", "ょ": "o"}
_SMALL_VOWEL = {"ぁ": "a", "ぃ": "i", "ぅ": "u", "ぇ": "e", "ぉ": "o"}
_VOWELS = {"a", "i", "u", "e", "o"}


def _kana(word: str) -> str:
    hira = "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in word)  # katakana -> hiragana
    syllables: list[str] = []
    double = False
    i = 0
    while i < len(hira):
        c, nxt = hira[i], hira[i + 1 : i + 2]
        i += 1
        if c == "っ":
            double = True
            continue
        r = anyascii(c).lower()
        if not r:  # ー and other marks
            continue
        if nxt in _SMALL_Y and r.endswith("i") and len(r) > 1:
            base = r[:-1]
            r = base + ("" if base in ("sh", "ch", "j") else "y") + _SMALL_Y[nxt]
            i += 1
        elif nxt in _SMALL_VOWEL and len(r) > 1:
            r = r[:-1] + _SMALL_VOWEL[nxt]  # ファ -> fa, ティ -> ti
            i += 1
        if double and r[0] not in _VOWELS:
            r = ("t" if r.startswith("ch") else r[0]) + r
        double = False
        syllables.append(r)
    out: list[str] = []
    for k, s in enumerate(syllables):
        after = syllables[k + 1] if k + 1 < len(syllables) else ""
        long_vowel = out and ((s == "u" and out[-1][-1] in "ou") or (s == "o" and out[-1][-1] == "o"))
        if long_vowel and after not in _VOWELS:
            continue
        out.append(s)
    return "".join(out)


# Korean surnames as people spell them, not as Revised Romanization does (anyascii writes 김 Gim,
# 이 I, 박 Bak). The surnames that head Statistics Korea's 2015 Population and Housing Census
# (김 이 박 최 정 강 조 윤 장 임 are the top ten), each with its most common passport spelling as
# surveyed by the National Institute of Korean Language (국립국어원, 2009) and tabulated in
# Wikipedia's "List of Korean surnames"; where two spellings are close (정 Jung/Jeong), the one the
# training data holds. A Hangul word that starts with one of them is read surname first.
KOREAN_SURNAMES = {
    "김": "Kim", "이": "Lee", "박": "Park", "최": "Choi", "정": "Jung", "강": "Kang", "조": "Cho",
    "윤": "Yoon", "장": "Jang", "임": "Lim", "한": "Han", "오": "Oh", "서": "Seo", "신": "Shin",
    "권": "Kwon", "황": "Hwang", "안": "Ahn", "송": "Song", "전": "Jeon", "홍": "Hong", "유": "Yoo",
    "고": "Ko", "문": "Moon", "양": "Yang", "손": "Son", "배": "Bae", "백": "Baek", "허": "Heo",
    "남": "Nam", "심": "Shim", "노": "Noh", "하": "Ha", "곽": "Kwak", "성": "Sung", "차": "Cha",
    "주": "Joo", "우": "Woo", "구": "Koo", "민": "Min", "류": "Ryu", "나": "Na", "진": "Jin",
    "지": "Ji", "엄": "Um", "채": "Chae", "원": "Won", "천": "Chun", "방": "Bang", "공": "Kong",
    "현": "Hyun", "함": "Ham", "변": "Byun", "염": "Yeom", "여": "Yeo", "추": "Choo", "도": "Do",
    "소": "So", "석": "Seok", "선": "Sun", "설": "Seol", "마": "Ma", "길": "Gil", "연": "Yeon",
    "표": "Pyo", "명": "Myung", "기": "Ki", "반": "Ban", "왕": "Wang", "금": "Keum", "옥": "Ok",
    "육": "Yook", "인": "In", "맹": "Maeng", "제": "Je", "모": "Mo", "탁": "Tak", "국": "Kook",
    "남궁": "Namgung", "황보": "Hwangbo", "제갈": "Jegal", "선우": "Sunwoo", "독고": "Dokgo",
}  # fmt: skip


def _hangul(word: str) -> str:
    if word in KOREAN_SURNAMES:
        return KOREAN_SURNAMES[word]
    for n in (2, 1):  # surname first, the given name after it by Revised Romanization
        if word[:n] in KOREAN_SURNAMES:
            return KOREAN_SURNAMES[word[:n]] + " " + anyascii(word[n:])
    return anyascii(word)


# Arabic: the script leaves short vowels unwritten, so only consonants and long vowels can be read
# (محمد -> mhmd). Following ALA-LC without its diacritics, alif is a (anyascii drops it), alif with
# hamza below is i, and hamza and ayn, which ALA-LC writes ʼ ʻ, are left out: the training data's
# Arabic names carry no apostrophes.
_ARABIC = str.maketrans({"ا": "a", "أ": "a", "آ": "a", "ٱ": "a", "إ": "i", "ء": "", "ع": "", "ؤ": "u", "ئ": "i"})


def _arabic(word: str) -> str:
    return anyascii(word.translate(_ARABIC))


READERS = {GREEK: _greek, CYRILLIC: _cyrillic, "kana": _kana, HANGUL: _hangul, ARABIC: _arabic}
NOTES = {
    HAN: "Han characters alone cannot tell Chinese from Japanese: they are read as Mandarin pinyin "
    "(田中 reads tianzhong, not Tanaka), so a Japanese name written in kanji reads as Chinese.",
    ARABIC: "Arabic script leaves short vowels unwritten: the model reads the consonants and long vowels only.",
}


def _reader(c: str) -> str | None:
    """Which reader a character goes to: a script code, "kana", "inherit" (a combining mark or a letter
    of no script: the reader before it), or None (kept as it is: ASCII non-letters, punctuation,
    symbols, digits)."""
    if c.isascii():
        return LATIN if c.isalpha() else None
    category = unicodedata.category(c)
    if category[0] == "M":
        return "inherit"
    if category[0] != "L":
        return None
    s = script(c)
    if s in (HIRAGANA, KATAKANA) or c == "ー":
        return "kana"
    return "inherit" if s in NEUTRAL_SCRIPTS else s  # ʼ (Common) goes with the letters around it


ALPHABETS = {LATIN, CYRILLIC, GREEK}


def transliterate(text: str) -> str:
    """Every letter of text in ASCII, by the reader of its script (anyascii where no rule is needed);
    other characters as they are. Letters of two scripts side by side are two words unless both are
    alphabets (Yamada山田 -> Yamada ShanTian; the lookalikes step has handled Latin/Cyrillic/Greek)."""
    if text.isascii():
        return text
    runs: list[list] = []  # [reader, characters]
    for c in text:
        reader = _reader(c)
        if reader == "inherit":  # a combining mark goes with the letter before it (anyascii drops a lone one)
            reader = runs[-1][0] if runs and runs[-1][0] else "Zinh"
        if runs and runs[-1][0] == reader:
            runs[-1][1] += c
        else:
            runs.append([reader, c])
    parts = []
    for k, (reader, run) in enumerate(runs):
        if reader is None:
            parts.append(run)
            continue
        before = runs[k - 1][0] if k else None
        if before is not None and not {before, reader} <= ALPHABETS:
            parts.append(" ")
        parts.append(READERS.get(reader, anyascii)(run))  # a run is one word: whitespace is never in it
    return "".join(parts)


def notes_for(scripts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(NOTES[s] for s in scripts if s in NOTES)


# --- 5. the script prior ------------------------------------------------------------------------

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

    def apply(self, probs: list[float]) -> list[float]:
        """p'(c|x) ∝ p(c|x)·π(c|letters)."""
        post = [p * w for p, w in zip(probs, self.weights, strict=True)]
        total = sum(post)
        return [p / total for p in post] if total > 0 else list(probs)


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
    if scripts:
        what = f"Written in {_and(map(script_name, scripts))}"
    else:
        what = f"The letter{'s' if len(letters) > 1 else ''} {', '.join(letters)}"
    them = "them" if len(scripts) + len(letters) > 1 else "it"
    n = len(labels)
    short = ", ".join(map(script_name, scripts)) if scripts else " ".join(letters)
    short += f": {_and(fits) if fits else f'none of the {n} languages'}"
    if not fits:
        unused = [s for s in scripts if not any(s in orthography(LOCALES[lab]) for lab in known)]
        if unused:
            text = (
                f"Written in {_and(map(script_name, unused))}, which none of the {n} languages uses: read through "
                "its ASCII transliteration, without a script prior."
            )
        else:
            text = f"{what}: none of the {n} languages writes {'all of them' if them == 'them' else 'it'}, so no prior."
        return ScriptPrior((1.0,) * n, (), text, short)
    floor = SCRIPT_FLOOR if scripts else LETTER_FLOOR
    weights = tuple(1.0 if lab in fits or lab not in LOCALES else floor for lab in labels)
    verb = "uses" if scripts else "writes"
    if len(fits) == 1:
        text = f"{what}: of the {n} languages only {fits[0]} {verb} {them}"
    else:
        text = f"{what}: of the {n} languages only {_and(fits)} {verb.rstrip('s')} {them}"
    text += f" (Unicode CLDR alphabets); the others are weighted ×{floor:g}."
    return ScriptPrior(weights, fits, text, short)
