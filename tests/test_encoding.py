"""The one encoder shared by training and serving: normalisation, indices, user-facing validation."""

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
        ("Muller", False),
        ("Smith-Jones", False),  # ASCII punctuation is not transliteration
        ("  Smith  ", False),
        ("O’Brien", False),  # a typographic apostrophe is punctuation, not a letter
        ("山田", False),  # no ASCII form: kept (and later encoded as UNK)
        ("😀", False),
    ],
)
def test_transliterated_flag(raw, flag):
    assert normalize_name(raw).transliterated is flag


def test_normalize_keeps_characters_without_ascii_form():
    assert normalize_name("Yamada山田").text == "yamada山田"
    assert normalize_name("😀").text == "😀"


def test_normalize_is_idempotent():
    for raw in ("Dvořák", "O’Brien", " Smith-Jones ", "Strauß", "de la Fuente"):
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


@pytest.mark.parametrize("raw", ["De la Fuente", "Van der Berg", "O'Brien", "Smith-Jones", "Müller"])
def test_validate_accepts_real_surnames(enc, raw):
    norm = enc.validate(raw)
    assert norm.text == normalize_name(raw).text


@pytest.mark.parametrize(
    "raw, needle",
    [
        ("", "type a surname"),
        ("   \t ", "type a surname"),
        (None, "type a surname"),
        ("12345", "Latin"),
        ("😀😀", "Latin"),
        ("山田", "Latin"),
        ("Ольга", "Latin"),
        ("---", "Latin"),
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
    norm = enc.validate("Yamada山田")
    assert enc.encode(norm.text)[-2:] == [UNK, UNK]
