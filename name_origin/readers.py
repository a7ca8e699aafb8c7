"""Step 4 of the text pipeline (see name_origin.scripts): every letter read into ASCII, the way the
training data spells names of its script.

`anyascii` romanizes every letter; where its output departs from how the training data spells names
of that script, a short documented rule per script comes first (Greek, Cyrillic, kana, Hangul
surnames, Arabic; each reader below gives its source). Han characters alone cannot tell Chinese from
Japanese: anyascii reads them as Mandarin pinyin (田中 -> tianzhong, not Tanaka) and a note says so.
"""

from __future__ import annotations

import re
import unicodedata

from anyascii import anyascii

from name_origin.scripts import (
    ALPHABETS,
    ARABIC,
    CYRILLIC,
    GREEK,
    HAN,
    HANGUL,
    HIRAGANA,
    KATAKANA,
    LATIN,
    NEUTRAL_SCRIPTS,
    script,
)

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


def _kana_syllables(word: str) -> list[str]:
    """The Hepburn syllables of a kana word: small kana joined, っ doubling, ー dropped."""
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
    return syllables


def _kana(word: str) -> str:
    """A kana word in Hepburn without long-vowel marks: the long vowels' u and o dropped."""
    syllables = _kana_syllables(word)
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
    "(田中 reads tianzhong, not Tanaka), which is no evidence between the two, so the prior decides.",
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


def _runs(text: str) -> list[list]:
    """text cut into [reader, characters] runs of consecutive characters that go to the same reader."""
    runs: list[list] = []
    for c in text:
        reader = _reader(c)
        if reader == "inherit":  # a combining mark goes with the letter before it (anyascii drops a lone one)
            reader = runs[-1][0] if runs and runs[-1][0] else "Zinh"
        if runs and runs[-1][0] == reader:
            runs[-1][1] += c
        else:
            runs.append([reader, c])
    return runs


def transliterate(text: str) -> str:
    """Every letter of text in ASCII, by the reader of its script (anyascii where no rule is needed);
    other characters as they are. Letters of two scripts side by side are two words unless both are
    alphabets (Yamada山田 -> Yamada ShanTian; the lookalikes step has handled Latin/Cyrillic/Greek)."""
    if text.isascii():
        return text
    runs = _runs(text)
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
    """What a user should know about how names in these scripts are read (Han, Arabic)."""
    return tuple(NOTES[s] for s in scripts if s in NOTES)
