"""The text pipeline of name_origin.scripts: clean, lookalikes, script detection, the readers of each
script (checked against how the training data spells names), the CLDR script prior, and the
answers the bundled model gives for names in their own script, on the page and in the API."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import read_csv_gz

from name_origin import batch, clean, scripts
from name_origin import views as serving
from name_origin.calibration import shift_prior
from name_origin.encoding import normalize_name
from name_origin.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent
LABELS = tuple(sorted(scripts.LOCALES))  # the 18 languages, in the model's (sorted) label order


@pytest.fixture(scope="module")
def bundled() -> Predictor:
    """The model shipped in model/: answers are its, so tests check behaviour, not exact numbers."""
    return Predictor.from_dir(ROOT / "model")


@pytest.fixture(scope="module")
def training_names(real_data_dir) -> dict[str, set[str]]:
    """Normalised names of both data files, by language."""
    by_label: dict[str, set[str]] = {}
    for file in ("names_train.csv.gz", "names_test.csv.gz"):
        for name, label in read_csv_gz(real_data_dir / file):
            by_label.setdefault(label, set()).add(normalize_name(name).text)
    return by_label


# --- 1. clean -----------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u00ad", "\u200b", "\u200c", "\u200d", "\ufeff", "\u200e", "\u200f", "\u2060"])
def test_format_characters_are_deleted_not_word_breaks(char):
    assert clean.delete_format(f"Kowal{char}ski") == "Kowalski"
    assert normalize_name(f"Kowal{char}ski").text == "kowalski"


@pytest.mark.parametrize(
    "raw, core, stripped",
    [
        ("Dubois,", "Dubois", ","),
        ("  Park ", "Park", ""),
        ("...Dubois!?", "Dubois", "...!?"),
        ("«Lefèvre»", "Lefèvre", "«»"),
        ("(O'Brien)", "O'Brien", "()"),
        ("Smith2", "Smith2", ""),  # digits and symbols are not edges: views.usable reports them
        ("<b>", "<b>", ""),
        ("!!", "", "!!"),
        ("`Smith`", "Smith", "``"),  # every apostrophe-like character is an edge, ʼ (a letter to Unicode) too
        ("´Smith´", "Smith", "´´"),
        ("ʼSmithʼ", "Smith", "ʼʼ"),
        ("‘Smith’", "Smith", "‘’"),
    ],
)
def test_trim_edges(raw, core, stripped):
    assert clean.trim(raw) == (core, stripped)


@pytest.mark.parametrize("raw", ["`Smith`", "'Smith'", "’Smith’", "‘Smith‘", "´Smith´", "ʼSmithʼ", "Smith`"])
def test_apostrophes_at_the_edges_all_read_alike(raw):
    """Backticks used to become apostrophes after the edges were trimmed: "`Smith`" read 'smith'."""
    assert normalize_name(raw).text == "smith" and set(normalize_name(raw).stripped) == {"'"}


@pytest.mark.parametrize("raw", ["O´Brien", "O`Brien", "O’Brien", "OʼBrien"])
def test_apostrophes_inside_all_read_alike(raw):
    assert normalize_name(raw).text == normalize_name("O'Brien").text == "o'brien"  # NFKC made ´ a space


@pytest.mark.parametrize(
    "text, parts",
    [
        ("Dubois, Marc", ("Dubois", "Marc")),
        ("DUBOIS,Marc", ("DUBOIS", "Marc")),
        ("Van der Berg, Jan Piet", ("Van der Berg", "Jan Piet")),
        ("حداد، محمد", ("حداد", "محمد")),  # Arabic comma
        ("Dubois", ("Dubois", "")),
        ("Dubois, 42", ("Dubois, 42", "")),  # nothing to take for a given name
    ],
)
def test_last_first(text, parts):
    assert clean.split_last_first(text) == parts


# --- 2. lookalikes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, folded, letters",
    [
        ("Nоvak", "Novak", "о"),  # Cyrillic о in a Latin name
        ("Kоwаlski", "Kowalski", "оа"),
        ("Pаpаdοpοulοs", "Papadopoulos", "аο"),  # Cyrillic а and Greek ο
        ("Ηοmer", "Homer", "Ηο"),  # Greek Η and ο
        ("O’Nеill", "O’Neill", "е"),  # words end at apostrophes
        ("Nоvak-Иванов", "Novak-Иванов", "о"),  # and at hyphens: the Cyrillic word is left alone
        ("Иванoв", "Иванoв", ""),  # only otherwise Latin words are folded: a Latin o in Cyrillic stays
        ("Сoрок", "Сoрок", ""),  # Latin letters are the minority: not a Latin word
        ("Ivan Петров", "Ivan Петров", ""),  # two words, each in one script: left alone
        ("Иванов-Ivanov", "Иванов-Ivanov", ""),
        ("Ivanov-Иванов", "Ivanov-Иванов", ""),
        ("Ivanov'Иванов", "Ivanov'Иванов", ""),
        ("Novak", "Novak", ""),
    ],
)
def test_lookalikes_are_read_as_the_words_script(raw, folded, letters):
    assert clean.fold_lookalikes(raw) == (folded, letters)


@pytest.mark.parametrize("raw", ["Иванов-Ivanov", "Ivanov-Иванов", "Ivanov Иванов", "Papadopoulos-Παπαδόπουλος"])
def test_genuine_cyrillic_and_greek_words_are_not_lookalikes(raw):
    """The reported misfire: "Иванов-Ivanov" claimed its а and о were lookalikes."""
    norm = normalize_name(raw)
    assert norm.lookalikes == "" and not any("looks like" in n for n in norm.notes)


def test_a_lookalike_in_a_latin_word_beside_a_cyrillic_one():
    norm = normalize_name("Иванов Nоvak")
    assert norm.text == "ivanov novak" and norm.lookalikes == "о"
    assert "Read о (Cyrillic) as the Latin letter it looks like." in norm.notes


# --- 3. scripts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "char, code",
    [("a", "Latn"), ("ř", "Latn"), ("И", "Cyrl"), ("π", "Grek"), ("김", "Hang"), ("さ", "Hira"), ("サ", "Kana"),
     ("田", "Hani"), ("م", "Arab"), ("ש", "Hebr"), ("ー", "Zyyy"), ("\u0301", "Zinh")],
)  # fmt: skip
def test_script_detection(char, code):
    assert scripts.script(char) == code


def test_evidence_is_scripts_and_non_ascii_latin_letters():
    assert scripts.evidence("Kowalski") == frozenset()
    assert scripts.evidence("Dvořák") == {"ř", "á"}
    assert scripts.evidence("DVOŘÁK") == {"ř", "á"}  # lower case
    assert scripts.evidence("Dvor\u030cak") == {"ř"}  # decomposed input is composed first
    assert scripts.evidence("Иванов") == {"Cyrl"}
    assert scripts.evidence("田中さん") == {"Hani", "Hira"}
    assert scripts.evidence("サトー") == {"Kana"}  # ー is Common: no evidence of its own


# --- 4. the readers, against the training data's spelling ---------------------------------------


@pytest.mark.parametrize(
    "greek, latin",
    [("Παπαδόπουλος", "papadopoulos"), ("Γεωργίου", "georgiou"), ("Χριστοδούλου", "christodoulou"),
     ("Αγγελόπουλος", "angelopoulos"), ("Αυγερινός", "avgerinos"), ("Παρασκευόπουλος", "paraskevopoulos"),
     ("Παλούμπας", "paloumbas"), ("Μπακογιάννης", "bakogiannis"), ("Ντόκος", "dokos"), ("Γκίκας", "gikas")],
)  # fmt: skip
def test_greek_reader(greek, latin):
    assert normalize_name(greek).text == latin


@pytest.mark.parametrize(
    "cyrillic, latin",
    [("Иванов", "ivanov"), ("Достоевский", "dostoevsky"), ("Чайковский", "chaikovsky"), ("Цой", "tsoi"),
     ("Хачатурян", "khachaturyan"), ("Щукин", "shchukin"), ("Объедков", "ob'edkov")],
)  # fmt: skip
def test_cyrillic_reader(cyrillic, latin):
    assert normalize_name(cyrillic).text == latin


# Russian training names that keep a soft sign as an apostrophe, and the Cyrillic they stand for.
SOFT_SIGN_NAMES = {
    "Данько": "Dan'Ko", "Дарькин": "Dar'Kin", "Енько": "En'Ko", "Еськов": "Es'Kov", "Гетьман": "Get'Man",
    "Марьин": "Mar'In", "Ренькас": "Ren'Kas", "Шаньгин": "Shan'Gin", "Целько": "Tsel'Ko", "Вьюгин": "V'Yugin",
    "Вьюнов": "V'Yunov", "Вьюнков": "V'Yunkov",
}  # fmt: skip


@pytest.mark.parametrize("cyrillic", SOFT_SIGN_NAMES)
def test_soft_sign_reads_as_the_training_data_writes_it(cyrillic, training_names):
    latin = normalize_name(SOFT_SIGN_NAMES[cyrillic]).text
    assert latin in training_names["Russian"]
    assert normalize_name(cyrillic).text == latin


def test_every_apostrophe_of_the_russian_training_names_follows_a_consonant(training_names):
    """Where a soft or hard sign stands in Russian: after a consonant, never after a vowel."""
    with_apostrophe = [n for n in training_names["Russian"] if "'" in n]
    assert len(with_apostrophe) >= 15
    for name in with_apostrophe:
        assert all(name[i - 1] not in "aeiou'" for i, c in enumerate(name) if c == "'" and i), name


@pytest.mark.parametrize(
    "kana, latin",
    [("さとう", "sato"), ("サトウ", "sato"), ("サトー", "sato"), ("いとう", "ito"), ("ごとう", "goto"),
     ("おおの", "ono"), ("いのうえ", "inoue"), ("すずき", "suzuki"), ("たなか", "tanaka"), ("はっとり", "hattori"),
     ("きっかわ", "kikkawa"), ("きょう", "kyo"), ("ちゅうじょう", "chujo"), ("さっぽろ", "sapporo"),
     ("まっちゃ", "matcha"), ("しんいち", "shinichi"), ("ファン", "fan")],
)  # fmt: skip
def test_kana_reader(kana, latin):
    assert normalize_name(kana).text == latin


@pytest.mark.parametrize("latin", ["sato", "ito", "goto", "ono", "inoue", "suzuki", "tanaka", "hattori", "kikkawa"])
def test_kana_spellings_are_the_training_datas(latin, training_names):
    assert latin in training_names["Japanese"]


KOREAN_TOP10 = {"김": "kim", "이": "lee", "박": "park", "최": "choi", "정": "jung", "강": "kang", "조": "cho",
                "윤": "yoon", "장": "jang", "임": "lim"}  # fmt: skip


@pytest.mark.parametrize("hangul", KOREAN_TOP10)
def test_korean_surnames_as_people_spell_them(hangul, training_names):
    assert normalize_name(hangul).text == KOREAN_TOP10[hangul]
    assert KOREAN_TOP10[hangul] in training_names["Korean"]


def test_korean_words_outside_the_table():
    assert normalize_name("김민준").text == "kim minjun"  # surname first, given name by Revised Romanization
    assert normalize_name("남궁").text == "namgung"  # a two-syllable surname
    assert normalize_name("뷁").text == "bwelg"  # anyascii's Revised Romanization


@pytest.mark.parametrize("arabic, latin", [("محمد", "mhmd"), ("حداد", "hdad"), ("أحمد", "ahmd"), ("عباس", "bas")])
def test_arabic_reader(arabic, latin):
    assert normalize_name(arabic).text == latin
    assert "short vowels" in normalize_name(arabic).notes[0]


def test_han_is_read_as_pinyin_with_a_note():
    norm = normalize_name("田中")
    assert norm.text == "tianzhong" and norm.script == "Han"
    assert "pinyin" in norm.notes[0] and "Japanese" in norm.notes[0]


@pytest.mark.parametrize("raw, latin", [("שלום", "slvm"), ("देव", "dev"), ("สมชาย", "smchay")])
def test_other_scripts_are_still_read(raw, latin):
    assert normalize_name(raw).text == latin


# --- 5. the script prior ------------------------------------------------------------------------


def test_cldr_orthographies():
    o = scripts.orthography
    assert {"ř", "ů", "ě"} <= o("cs") and {"ł", "ś", "ź", "ż", "ą", "ę"} <= o("pl")
    assert {"ã", "õ"} <= o("pt") and "ñ" in o("es") and "ß" in o("de") and {"ơ", "ư", "đ", "ễ"} <= o("vi")
    assert o("en") == frozenset()  # English writes no letter outside ASCII
    assert (o("ru"), o("el"), o("ar"), o("ko")) == ({"Cyrl"}, {"Grek"}, {"Arab"}, {"Hang"})
    assert o("ja") == {"Hira", "Kana", "Hani"} and o("zh") == {"Hani"}
    assert "ř" not in o("pl") and "ł" not in o("cs")


def test_every_language_of_the_model_has_a_locale(bundled):
    assert set(bundled.labels) == set(scripts.LOCALES) and len(scripts.LOCALES) == 18


@pytest.mark.parametrize(
    "marks, languages",
    [({"Cyrl"}, ("Russian",)), ({"Grek"}, ("Greek",)), ({"Hang"}, ("Korean",)), ({"Hira"}, ("Japanese",)),
     ({"Kana"}, ("Japanese",)), ({"Arab"}, ("Arabic",)), ({"Hani"}, ("Chinese", "Japanese")),
     ({"Hani", "Hira"}, ("Japanese",))],
)  # fmt: skip
def test_a_script_points_to_the_languages_that_write_it(marks, languages):
    prior = scripts.script_prior(LABELS, frozenset(marks))
    assert prior.languages == languages
    for label, w in zip(LABELS, prior.weights, strict=True):
        assert w == (1.0 if label in languages else scripts.SCRIPT_FLOOR)


@pytest.mark.parametrize(
    "marks, languages",
    [({"ř"}, ("Czech",)), ({"ů"}, ("Czech",)), ({"ł"}, ("Polish",)), ({"ż", "ó"}, ("Polish",)), ({"ß"}, ("German",)),
     ({"ñ"}, ("Spanish",)), ({"ã"}, ("Portuguese", "Vietnamese")), ({"ơ"}, ("Vietnamese",)),
     ({"ễ"}, ("Vietnamese",)), ({"ç"}, ("French", "Portuguese")), ({"ü"}, ("Dutch", "French", "German", "Spanish"))],
)  # fmt: skip
def test_latin_letters_point_the_same_way_with_a_floor(marks, languages):
    prior = scripts.script_prior(LABELS, frozenset(marks))
    assert prior.languages == languages
    assert {w for lab, w in zip(LABELS, prior.weights, strict=True) if lab not in languages} == {scripts.LETTER_FLOOR}
    assert "×0.01" in prior.text


def test_no_prior_for_plain_ascii_or_letters_no_language_writes():
    assert scripts.script_prior(LABELS, frozenset()) is None
    flat = scripts.script_prior(LABELS, frozenset({"ø"}))
    assert flat.languages == () and set(flat.weights) == {1.0} and "none of the 18" in flat.text
    hebrew = scripts.script_prior(LABELS, frozenset({"Hebr"}))
    assert hebrew.languages == () and set(hebrew.weights) == {1.0}
    assert "Hebrew, which none of the 18 languages uses" in hebrew.text
    mixed = scripts.script_prior(LABELS, frozenset({"Cyrl", "ř"}))  # no language writes both
    assert mixed.languages == () and set(mixed.weights) == {1.0}


def test_prior_rule_is_bayes_with_the_model():
    prior = scripts.script_prior(LABELS, frozenset({"Cyrl", "Hani"}))  # no language: flat
    assert set(prior.weights) == {1.0}
    prior = scripts.script_prior(LABELS, frozenset({"Hira"}))  # kana: Japanese only
    probs = torch.full((1, 18), 0.01)
    for label, p in (("Russian", 0.5), ("Chinese", 0.2), ("Japanese", 0.1)):
        probs[0, LABELS.index(label)] = p
    probs /= probs.sum()
    post = shift_prior(probs, torch.ones(18), torch.tensor(prior.weights))[0]  # the rule Predictor applies
    expected = probs[0] * torch.tensor(prior.weights)
    assert torch.allclose(post, expected / expected.sum())
    assert post.argmax() == LABELS.index("Japanese") and post[LABELS.index("Russian")] < 0.01
    assert scripts.script_prior(("Klingon", "Russian"), frozenset({"Cyrl"})).weights == (1.0, 1.0)  # unknown: neutral


def test_han_alone_is_no_evidence_between_chinese_and_japanese(bundled):
    """Pinyin is imposed on kanji too: for Han alone the prior decides between Chinese and Japanese."""
    han = scripts.script_prior(LABELS, frozenset({"Hani"}))
    assert not han.reading_is_evidence and set(han.languages) == {"Chinese", "Japanese"}
    for name in ("田中", "王"):  # a Japanese and a Chinese surname
        equal = bundled.predict(name, prior="equal")
        assert dict(list(equal.probs.items())[:2]) == pytest.approx({"Chinese": 0.5, "Japanese": 0.5}, abs=1e-3)
        assert equal.abstain and set(equal.prediction_set) == {"Chinese", "Japanese"}
        training = bundled.predict(name, prior="training")  # Japanese has more training names than Chinese
        assert training.top[0] == "Japanese"
        both = bundled.predict(name, prior={"Japanese": 1, "Chinese": 1})  # an exact tie: the set holds both halves
        assert both.top[1] == pytest.approx(0.5) and set(both.prediction_set) == {"Chinese", "Japanese"}
    assert bundled.predict("たなか").top[0] == "Japanese"  # kana is evidence


def test_prior_text():
    assert scripts.script_prior(LABELS, frozenset({"Hang"})).text.startswith(
        "Written in Hangul: of the 18 languages only Korean uses it"
    )
    assert "only Chinese and Japanese use it" in scripts.script_prior(LABELS, frozenset({"Hani"})).text
    assert scripts.script_prior(LABELS, frozenset({"Cyrl"})).short == "Cyrillic: Russian"
    assert scripts.script_prior(LABELS, frozenset({"ř", "á"})).text.startswith("The letters á, ř: of the 18")


# --- the answers: the bundled model, on the page and in the API ---------------------------------

NATIVE = {"Иванов": "Russian", "Παπαδόπουλος": "Greek", "김": "Korean", "محمد": "Arabic", "さとう": "Japanese"}


@pytest.mark.parametrize("raw", NATIVE)
def test_native_script_names_get_their_language(bundled, raw):
    assert bundled.predict(raw).top[0] == NATIVE[raw]


def test_kim_is_read_as_kim(bundled):
    pred = bundled.predict("김")
    assert pred.normalized.text == "kim" and pred.evidence.get("Korean", 0) >= 1  # seen in training as Korean


def test_han_names_are_chinese_or_japanese(bundled):
    pred = bundled.predict("田中")
    assert set(list(pred.probs)[:2]) == {"Chinese", "Japanese"}
    view = serving.analyse(bundled, "田中")
    assert "pinyin" in view.status and "only Chinese and Japanese use it" in view.status
    assert "letters alone" not in view.status and view.letters is None  # its reading did not move the answer
    assert serving.analyse(bundled, "たなか").letters  # kana is evidence: its letters are shown


def test_the_page_shows_what_was_read_and_from_which_script(bundled):
    view = serving.analyse(bundled, "Иванов")
    assert "Иванов → ivanov, from Cyrillic" in view.status
    assert "only Russian uses it" in view.status and view.target == "Russian"
    assert "".join(c for c, _ in view.letters) == "ivanov"
    korean = serving.analyse(bundled, "김")
    assert "김 → kim, from Hangul" in korean.status and "Written in Hangul: of the 18 languages only Korean" in (
        korean.status
    )
    hebrew = serving.analyse(bundled, "שלום")
    assert hebrew.bars and "none of the 18 languages uses" in hebrew.status


def test_the_api_returns_script_languages_and_both_probabilities(bundled):
    out = serving.predict_json(bundled, "Иванов")
    assert (out["normalized"], out["script"], out["script_languages"]) == ("ivanov", "Cyrillic", ["Russian"])
    assert out["language"] == "Russian" and "only Russian" in out["script_prior"]
    assert set(out["model_probabilities"]) == set(out["probabilities"]) == set(bundled.labels)
    assert out["probabilities"]["Russian"] >= out["model_probabilities"]["Russian"]
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    plain = serving.predict_json(bundled, "Ivanov", prior="training")
    assert plain["script"] == "Latin" and plain["script_languages"] == [] and plain["script_prior"] == ""
    assert plain["probabilities"] == plain["model_probabilities"]  # training prior, plain ASCII: no shift at all


def test_batch_applies_the_prior_like_the_single_name(bundled):
    names = ["Иванов", "Ivanov", "Dvořák", "Dvorak", "田中"]
    for name, pred in zip(names, bundled.predict_batch(names), strict=True):
        single = bundled.predict(name)
        assert pred.top[0] == single.top[0] and pred.probs == pytest.approx(single.probs, abs=1e-5)
        assert pred.script == single.script
    table = batch.batch_frame(bundled, ["Иванов"])
    assert table.loc[0, "language"] == "Russian" and "Cyrillic: Russian" in table.loc[0, "note"]


@pytest.mark.parametrize(
    "stray, plain",
    [("Kowal\u00adski", "Kowalski"), ("Kow\u200balski", "Kowalski"), ("\ufeffKowalski", "Kowalski"),
     ("Nоvak", "Novak"), ("Dubois,", "Dubois"), ("Dubois.", "Dubois"), ("(Dubois)", "Dubois"),
     ("Dubois, Marc", "Dubois"), ("`Smith`", "Smith"), ("’Smith’", "Smith"), ("'Smith'", "Smith"),
     ("´Smith´", "Smith")],
)  # fmt: skip
def test_stray_characters_do_not_change_the_answer(bundled, stray, plain):
    a, b = bundled.predict(stray), bundled.predict(plain)
    assert a.normalized.text == b.normalized.text
    assert a.probs == b.probs and a.evidence == b.evidence  # same "seen in training" evidence too
    view = serving.analyse(bundled, stray)
    assert view.bars == serving.analyse(bundled, plain).bars


def test_stray_characters_are_explained_on_the_page(bundled):
    assert "the surname before the comma" in serving.analyse(bundled, "Dubois, Marc").status
    assert "Ignored characters: ," in serving.analyse(bundled, "Dubois,").status
    assert "Cyrillic" in serving.analyse(bundled, "Nоvak").status
    soft = serving.analyse(bundled, "Kowal\u00adski").status
    assert "Ignored" not in soft and "Seen in training as Polish" in soft
