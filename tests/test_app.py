"""app.py and name_origin/views.py in-process: the pure functions behind the single-name tab and the
Model tab, for every bad-input class (empty, digits, emoji, symbols, too long, markup, unexpected
errors) and the good paths (trimming, transliteration, particles, evidence, unsure). The API and
the batch tab: tests/test_app_batch.py."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest
from conftest import read_csv_gz

import app
from name_origin import batch, model_tab
from name_origin import views as serving
from name_origin.encoding import normalize_name
from name_origin.hub import ResolvedModel
from name_origin.predict import Predictor

ROOT = Path(__file__).resolve().parent.parent
# The language each example stands for: together they must cover every class.
EXAMPLE_CLASSES = {
    "Nakamura": "Japanese", "Müller": "German", "Dvořák": "Czech", "De la Fuente": "Spanish", "O'Brien": "Irish",
    "Haddad": "Arabic", "Zhang": "Chinese", "Van den Berg": "Dutch", "Thompson": "English", "Lefèvre": "French",
    "Papadopoulos": "Greek", "Rossi": "Italian", "Choi": "Korean", "Kowalski": "Polish", "Gonçalves": "Portuguese",
    "Ivanov": "Russian", "MacLeod": "Scottish", "Nguyen": "Vietnamese", "Von Wegberg": "German",
    "Иванов": "Russian", "Παπαδόπουλος": "Greek", "김": "Korean", "田中": "Japanese", "محمد": "Arabic",
}  # fmt: skip
BAD_INPUTS = {
    "empty": ("", "type a surname"),
    "spaces only": ("   \t ", "type a surname"),
    "none": (None, "type a surname"),
    "digits only": ("12345", "Latin letters"),
    "emoji": ("😀🎉", "Latin letters"),
    "symbols": ("★♥", "Latin letters"),
    "punctuation only": ("<>/!?", "Latin letters"),
    "too long": ("a" * 51, "at most 50"),
    "long markup": ("<script>" + "x" * 60 + "</script>", "at most 50"),
}


@pytest.fixture
def fresh(tiny_run) -> Predictor:
    """A predictor of its own, for tests that change its abstention target (before its first answer)."""
    return Predictor.from_dir(tiny_run)


@pytest.fixture(scope="module")
def seen_name(small_data_dir) -> tuple[str, str]:
    """A (name, label) row of the training file, hence in the evidence lookup."""
    return read_csv_gz(small_data_dir / "names_train.csv.gz")[0]


def test_examples_cover_every_class(predictor):
    assert set(app.EXAMPLES) == set(EXAMPLE_CLASSES)
    assert set(EXAMPLE_CLASSES.values()) == set(predictor.labels)


def test_bundled_model_answers_every_example_right_or_honestly_unsure():
    """The page's own examples, served by the bundled model under the default prior: each is
    answered right, or "unsure" with the right language in its prediction set."""
    bundled = Predictor.from_dir(ROOT / "model")
    wrong = {}
    for name, language in EXAMPLE_CLASSES.items():
        answer = bundled.predict(name)
        right = answer.top[0] == language and not answer.abstain
        honest = answer.abstain and language in answer.prediction_set
        if not (right or honest):
            wrong[name] = (answer.top, answer.abstain, answer.prediction_set)
    assert not wrong


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_gives_message_and_no_bars(predictor, case):
    raw, needle = BAD_INPUTS[case]
    view = serving.analyse(predictor, raw)
    assert view.bars is None and view.letters is None
    assert view.status.startswith("⚠️") and needle in view.status
    assert "<" not in view.status and "Traceback" not in view.status


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_api_raises_user_message(predictor, case):
    raw, needle = BAD_INPUTS[case]
    with pytest.raises(gr.Error, match=needle):
        app.api_predict(predictor, raw)


def test_good_name_gives_top5_bars_and_status(predictor):
    view = serving.analyse(predictor, "Nakamura")
    assert view.bars is not None and set(view.bars) <= set(predictor.labels)
    top = max(view.bars, key=view.bars.get)
    assert view.target == top and list(view.bars)[0] == top
    assert len(view.bars) == (serving.UNSURE_K if view.unsure else serving.TOP_K)
    assert top in view.status


def test_show_all_gives_every_language(predictor):
    view = serving.analyse(predictor, "Nakamura", show_all=True)
    assert len(view.bars) == len(predictor.labels) == 18
    assert sum(view.bars.values()) == pytest.approx(1.0, abs=1e-4)


def test_trimming(predictor):
    assert serving.analyse(predictor, "  Nakamura \n").bars == serving.analyse(predictor, "Nakamura").bars
    assert app.api_predict(predictor, "\tNakamura  ")["name"] == "Nakamura"


@pytest.mark.parametrize("raw", ["De la Fuente", "Von Wegberg", "O'Brien", "van der Berg-Smit"])
def test_multi_word_and_apostrophe_surnames_are_valid(predictor, raw):
    view = serving.analyse(predictor, raw)
    assert view.bars and "Ignored" not in view.status
    assert "".join(c for c, _ in view.letters) == normalize_name(raw).text


def test_transliteration_is_reported(predictor):
    view = serving.analyse(predictor, "Müller")
    assert view.bars and "Transliterated: Müller → muller" in view.status
    assert "Transliterated" not in serving.analyse(predictor, "Muller").status
    assert app.api_predict(predictor, "Dvořák")["normalized"] == "dvorak"


@pytest.mark.parametrize("raw", ["<b>x</b> Smith", "<script>alert(1)</script>Rossi", "**Kim**", "[a](http://x) Li"])
def test_markup_is_dropped_and_shown_as_inert_text(predictor, raw):
    view = serving.analyse(predictor, raw)
    assert view.bars is not None
    assert "Ignored characters" in view.status
    for bad in ("<b>", "<script", "</", "**Kim", "](http"):
        assert bad not in view.status
    assert "&lt;" in view.status or "\\*" in view.status or "\\[" in view.status


def test_unknown_characters_never_reach_the_model(predictor):
    assert serving.usable(predictor, "<b>x</b>") == (" b x  b ", "<>/")  # no glued "bxb"
    assert serving.usable(predictor, "Nakamura 😀") == ("Nakamura  ", "😀")
    assert serving.usable(predictor, "Nakamura 中村") == ("Nakamura 中村", "")  # any script is read
    assert serving.usable(predictor, "Smith2") == ("Smith ", "2")
    assert serving.usable(predictor, "Müller") == ("Müller", "")
    assert serving.usable(predictor, "12345") == ("12345", "")  # nothing left: the predictor explains why
    result = app.api_predict(predictor, " Nakamura!! ")
    assert result["ignored_characters"] == "!" and result["normalized"] == "nakamura"
    assert result["name"] == "Nakamura!!"  # the name as given, trimmed


def test_md_escape_makes_user_text_inert():
    assert serving.md_escape("<b>x</b>") == "&lt;b&gt;x&lt;/b&gt;"
    assert serving.md_escape("*a* _b_ `c` [d](e)") == "\\*a\\* \\_b\\_ \\`c\\` \\[d\\]\\(e\\)"
    assert serving.md_escape("a\n\nb") == "a b"


def test_unsure_shows_top3_and_no_single_answer(fresh):
    fresh.abstain_target = 1.01  # no threshold reaches it: the threshold becomes 1, which nothing reaches
    view = serving.analyse(fresh, "Nakamura")
    assert view.unsure and len(view.bars) == serving.UNSURE_K
    assert view.status.startswith("**Unsure**")
    assert all(label in view.status for label in view.bars)
    assert len(serving.analyse(fresh, "Nakamura", show_all=True).bars) == 18
    assert app.api_predict(fresh, "Nakamura")["unsure"] is True


def test_confident_answer_when_threshold_is_met(fresh):
    fresh.abstain_target = 0.0  # every held-out name answered: the threshold is the lowest confidence
    # the training prior: the tiny run's validation has no name of some languages, so the equal prior can
    # promise nothing there (tests/test_trust.py)
    view = serving.analyse(fresh, "Nakamura", prior="training")
    assert not view.unsure and len(view.bars) == serving.TOP_K
    assert view.status.startswith("Most likely **")


def test_evidence_line(predictor, seen_name):
    name, label = seen_name
    view = serving.analyse(predictor, name)
    assert "Seen in training as" in view.status and f"{label} ×" in view.status
    assert app.api_predict(predictor, name)["seen_in_training"][label] >= 1
    assert "Not in the training data" in serving.analyse(predictor, "Zzyzxqwv").status


def test_evidence_that_disagrees_with_the_answer_says_why():
    """Thompson is English ×1 in training; under the equal prior its letters say Scottish first."""
    bundled = Predictor.from_dir(ROOT / "model")
    view = serving.analyse(bundled, "Thompson", explain=False)
    assert "Seen in training as English ×1: the answer weighs its letters and the prior" in view.status
    agree = serving.analyse(bundled, "Thompson", explain=False, prior="training")  # answered English
    assert "Seen in training as English ×1." in agree.status


def test_explanation_one_score_per_character_and_stable(predictor):
    first = serving.analyse(predictor, "Kowalski").letters
    assert [c for c, _ in first] == list("kowalski")
    assert all(-1.0 <= s <= 1.0 for _, s in first)
    assert max(abs(s) for _, s in first) == pytest.approx(1.0)
    assert serving.analyse(predictor, "Kowalski").letters == first


def test_explanation_can_be_skipped(predictor):
    assert serving.analyse(predictor, "Kowalski", explain=False).letters is None


class Broken:
    """A predictor that fails in an unexpected way."""

    encoder = type("E", (), {"alphabet": "abcdefghijklmnopqrstuvwxyz '"})()

    def predict(self, raw):
        raise RuntimeError("secret internal detail /srv/model")

    predict_batch = setting = predict


def test_unexpected_error_is_logged_and_generic(caplog):
    view = serving.analyse(Broken(), "Nakamura")
    assert view.bars is None and serving.GENERIC_ERROR in view.status
    assert "secret" not in view.status and "RuntimeError" not in view.status
    assert "secret internal detail" in caplog.text  # the trace is in the log, not on the page
    with pytest.raises(gr.Error, match="Something went wrong") as err:
        app.api_predict(Broken(), "Nakamura")
    assert "secret" not in str(err.value)
    table, path, status = batch.run_batch(Broken(), "Nakamura", None, Path("."))
    assert path is None and serving.GENERIC_ERROR in status and table.empty


def test_model_tab_texts(predictor):
    metrics = predictor.metrics()
    table = model_tab.quality_table(metrics)
    assert "**this model**" in table and "85.06%" in table and "85.20%" in table
    resolved = ResolvedModel(predictor.run_dir, "hub", "a" * 40, ["local folder x: no <config.json>"], "me/names")
    text = model_tab.served_text(resolved)
    assert "hub model: me/names at revision" in text and "a" * 40 in text and "&lt;config" in text


def test_model_tab_without_figures_or_metrics(tiny_run, tmp_path):
    """A Hub snapshot may hold only the weights, config, evidence and metrics: no crash, a drawn curve."""
    for name in ("config.json", "model.safetensors", "evidence.safetensors", "metrics.json"):
        shutil.copy(tiny_run / name, tmp_path / name)
    bare = Predictor.from_dir(tmp_path)
    demo = app.build_app(bare, ResolvedModel(tmp_path, "hub", "b" * 40, []))
    kinds = {type(b).__name__ for b in demo.blocks.values()}
    assert "LinePlot" in kinds and "Image" not in kinds
    (tmp_path / "metrics.json").unlink()
    demo = app.build_app(Predictor.from_dir(tmp_path), ResolvedModel(tmp_path, "bundled", None, []))
    assert "LinePlot" not in {type(b).__name__ for b in demo.blocks.values()}


def test_build_app_has_named_endpoints_and_components(predictor):
    demo = app.build_app(predictor, ResolvedModel(predictor.run_dir, "local folder", None, []))
    assert isinstance(demo, gr.Blocks)
    api = demo.get_api_info()["named_endpoints"]
    assert {"/predict", "/predict_batch"} <= set(api)
    assert all(name in ("/predict", "/predict_batch") for name in api)  # UI events are not part of the API
    kinds = {type(b).__name__ for b in demo.blocks.values()}
    assert {"Label", "HighlightedText", "Dataframe", "File", "Image", "Markdown"} <= kinds


def test_bidi_controls_cannot_reverse_the_page():
    """U+202E would turn "Ignored characters: ..." around: shown as its code point instead."""
    assert serving.md_escape("\u202eSmith") == "U\\+202ESmith"  # the + escaped for Markdown
    assert "\u200f" not in serving.md_escape("\u200fمحمد\u200f")
