"""The one encoder shared by training and serving: normalisation of any script, indices, user-facing
validation. The steps themselves (readers, lookalikes, the script prior): tests/test_scripts.py."""

import pytest
import torch

from name_origin.encoding import MAX_NAME_CHARS, PAD, UNK, CharEncoder, InvalidNameError, normalize_name, pad_batch

# The training alphabet of the real data: space, apostrophe, comma and the 26 lower-case letters.
ALPHABET = " ',abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
def enc() -> CharEncoder:
    return CharEncoder(ALPHABET)


@pytest.mark.parametrize(
    "raw, text",
    [
        ("Müller", "muller"),
        ("Dvořák", "dvorak"),
        ("Gómez", "gomez"),
        ("Łukasz", "lukasz"),
        ("Strauß", "strauss"),
        ("Ærø", "aero"),
        ("Øster", "oster"),
        ("Nguyễn", "nguyen"),
        ("Þórsson", "thorsson"),
        ("ＭＵＬＬＥＲ", "muller"),  # fullwidth letters (NFKC)
        ("O’Brien", "o'brien"),  # typographic apostrophe
        ("O‘Brien", "o'brien"),
        ("Oʼbrien", "o'brien"),
        ("O'Brien", "o'brien"),
        ("Smith-Jones", "smith jones"),  # hyphens become spaces
        ("Smith–Jones", "smith jones"),  # en dash
        ("  de   la\tFuente \n", "de la fuente"),  # whitespace collapsed and trimmed
        ("Van-  Der   Berg", "van der berg"),
        ("NAKAMURA", "nakamura"),
        # any script, read as the training data spells names of that script
        ("Иванов", "ivanov"),
        ("Παπαδόπουλος", "papadopoulos"),
        ("김", "kim"),
        ("田中", "tianzhong"),  # Mandarin pinyin: Han alone cannot tell Chinese from Japanese
        ("محمد", "mhmd"),  # consonants only: Arabic leaves short vowels unwritten
        ("さとう", "sato"),
        ("サトウ", "sato"),
        ("ﾀﾅｶ", "tanaka"),  # half-width katakana (NFKC)
        ("Данько", "dan'ko"),  # soft sign as the training data writes it (Dan'Ko)
        ("שלום", "slvm"),  # a script none of the 18 languages uses is still read
        # stray characters
        ("Kowal\u00adski", "kowalski"),  # soft hyphen: deleted, not a word break
        ("Kow\u200balski", "kowalski"),  # zero-width space
        ("\ufeffSmith", "smith"),  # byte-order mark
        ("Smi\u200dth\u200e", "smith"),  # ZWJ, LRM
        ("Nоvak", "novak"),  # Cyrillic о inside a Latin name: its Latin lookalike
        ("Dubois,", "dubois"),  # punctuation at the edges
        ("(Dubois)", "dubois"),
        ("«Lefèvre»", "lefevre"),
        ("Dubois, Marc", "dubois"),  # LAST, First: the part before the comma
        ("Park ", "park"),
    ],
)
def test_normalize_transliterates_to_lower_ascii(raw, text):
    assert normalize_name(raw).text == text


@pytest.mark.parametrize(
    "raw, flag",
    [
        ("Müller", True),
        ("Dvořák", True),
        ("Łukasz", True),  # letters Unicode cannot decompose are still transliteration
        ("Strauß", True),
        ("Ærø", True),
        ("ＭＵＬＬＥＲ", True),
        ("Müller山田", True),
        ("Иванов", True),
        ("山田", True),  # read as pinyin
        ("Muller", False),
        ("Smith-Jones", False),  # ASCII punctuation is not transliteration
        ("  Smith  ", False),
        ("O’Brien", False),  # a typographic apostrophe is punctuation, not a letter
        ("Kowal\u00adski", False),  # an invisible character deleted is not a letter read
        ("😀", False),  # no ASCII form: kept (and later encoded as UNK)
    ],
)
def test_transliterated_flag(raw, flag):
    assert normalize_name(raw).transliterated is flag


def test_normalize_keeps_characters_without_ascii_form():
    assert normalize_name("😀").text == "😀"
    assert normalize_name("Smith😀").text == "smith😀"  # views.usable drops it before the model


def test_two_scripts_side_by_side_are_two_words():
    assert normalize_name("Yamada山田").text == "yamada shantian"
    assert normalize_name("Иванов Ivanov").text == "ivanov ivanov"


@pytest.mark.parametrize(
    "raw, script",
    [("Иванов", "Cyrillic"), ("김", "Hangul"), ("田中さん", "Han and Hiragana"), ("Dvořák", "Latin"), ("😀", "")],
)
def test_normalized_names_the_script_it_read(raw, script):
    norm = normalize_name(raw)
    assert norm.script == script
    assert norm.native is (script not in ("", "Latin"))


def test_normalized_records_what_was_changed():
    assert normalize_name("Dubois,").stripped == ","
    assert normalize_name(" Dubois ").stripped == ""  # spaces are not punctuation
    last_first = normalize_name("Dubois, Marc")
    assert last_first.given == "Marc" and "before the comma" in last_first.notes[0]
    assert normalize_name("Kowal\u00adski").format_chars and not normalize_name("Kowalski").format_chars
    assert normalize_name("Ro\u200bssi\u200b").notes == ("Removed invisible characters: U+200B.",)  # said, as shown
    novak = normalize_name("Nоvak")
    assert novak.lookalikes == "о" and "Cyrillic" in novak.notes[0]
    assert "pinyin" in normalize_name("田中").notes[0]
    assert normalize_name("Kowalski").notes == () and normalize_name("Kowalski").marks == frozenset()
    assert normalize_name("Dvořák").marks == frozenset("ář")
    assert normalize_name("Иванов").marks == frozenset({"Cyrl"})


def test_normalize_is_cached_and_fast():
    import statistics
    import time

    from name_origin.encoding import _normalize

    def median_us(raw: str, clear: bool) -> float:
        times = []
        for _ in range(50):
            if clear:
                _normalize.cache_clear()
            start = time.perf_counter()
            normalize_name(raw)
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e6

    for raw in ("Иванов", "Παπαδόπουλος", "김", "田中", "محمد", "さとう", "Dvořák", "Kowalski"):
        normalize_name(raw)
        assert median_us(raw, clear=False) < 20  # a cache hit
        assert median_us(raw, clear=True) < 1000  # read afresh: tens of microseconds, bounded loosely


def test_normalize_is_idempotent():
    for raw in ("Dvořák", "O’Brien", " Smith-Jones ", "Strauß", "de la Fuente", "Иванов", "김", "Dubois, Marc"):
        once = normalize_name(raw).text
        assert normalize_name(once).text == once
        assert not normalize_name(once).transliterated


def test_fit_takes_sorted_alphabet_of_names():
    enc = CharEncoder.fit(["zab", "o'b", "ca"])
    assert enc.alphabet == "'abcoz"
    assert enc.vocab_size == len("'abcoz") + 2


def test_encode_decode_round_trip(enc):
    for name in ("nakamura", "o'brien", "de la fuente", "abc,xyz"):
        ids = enc.encode(name)
        assert len(ids) == len(name)
        assert all(i >= 2 for i in ids)  # 0 and 1 are PAD and UNK
        assert enc.decode(ids) == name
    assert enc.encode("ab") == [ALPHABET.index("a") + 2, ALPHABET.index("b") + 2]


def test_unknown_characters_map_to_unk(enc):
    ids = enc.encode("ya山d9")
    assert ids[2] == UNK and ids[4] == UNK
    assert ids[0] != UNK and ids[1] != UNK and ids[3] != UNK
    assert enc.decode(ids) == "ya?d?"
    assert enc.decode([PAD, *enc.encode("ab"), PAD]) == "ab"  # padding is dropped


def test_pad_batch():
    x, lengths = pad_batch([[5, 6, 7], [8], [9, 10]])
    assert x.dtype == torch.long and lengths.dtype == torch.long
    assert lengths.tolist() == [3, 1, 2]
    assert x.tolist() == [[5, 6, 7], [8, PAD, PAD], [9, 10, PAD]]


@pytest.mark.parametrize(
    "raw", ["De la Fuente", "Van der Berg", "O'Brien", "Smith-Jones", "Müller", "山田", "Ольга", "محمد", "Dubois,"]
)
def test_validate_accepts_real_surnames(enc, raw):
    norm = enc.validate(raw)
    assert norm.text == normalize_name(raw).text


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("", "type a surname"),
        ("   \t ", "type a surname"),
        (None, "type a surname"),
        ("12345", "No letters"),
        ("😀😀", "No letters"),
        ("★♥", "Latin letters or any other alphabet"),
        ("---", "No letters"),
        ("\u00ad\u200b", "No letters"),  # only invisible characters
        ("a" * (MAX_NAME_CHARS + 1), str(MAX_NAME_CHARS)),
    ],
)
def test_validate_rejects_with_user_safe_message(enc, raw, needle):
    with pytest.raises(InvalidNameError) as err:
        enc.validate(raw)
    msg = str(err.value)
    assert needle in msg
    assert "Traceback" not in msg and "Error" not in msg  # plain words for a person, not a stack trace
    assert isinstance(err.value, ValueError)


def test_validate_length_limit_is_inclusive(enc):
    assert enc.validate("a" * MAX_NAME_CHARS).text == "a" * MAX_NAME_CHARS
    assert enc.validate("  " + "a" * MAX_NAME_CHARS + "  ").text == "a" * MAX_NAME_CHARS  # outer spaces don't count


def test_validate_allows_some_unknown_characters(enc):
    norm = enc.validate("Yamada😀😀")
    assert enc.encode(norm.text)[-2:] == [UNK, UNK]


def test_a_name_with_a_replacement_character_is_never_classified():
    """M\ufffdller is what a cp1252 Müller becomes when read as UTF-8: the letter is lost, not unknown."""
    enc = CharEncoder("abcdefghijklmnopqrstuvwxyz '")
    with pytest.raises(InvalidNameError, match="lost in decoding"):
        enc.validate("M\ufffdller")
