"""app.py and trainer/serving.py in-process: the JSON API (one name, a batch) and the batch tab
(pasted text, CSV uploads, limits, the CSV it writes)."""

from __future__ import annotations

import csv
from pathlib import Path

import gradio as gr
import pytest

import app
from name_origin import views as serving
from name_origin.encoding import InvalidNameError
from name_origin.predict import MAX_BATCH


def test_api_predict_json(predictor):
    out = app.api_predict(predictor, "Nakamura")
    assert out["language"] == next(iter(out["probabilities"])) and out["top3"][0] == out["language"]
    assert set(out["probabilities"]) == set(predictor.labels)
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert out["confidence"] == out["probabilities"][out["language"]]
    assert isinstance(out["unsure"], bool) and isinstance(out["seen_in_training"], dict)


def test_api_predict_batch_keeps_order_and_marks_errors(predictor):
    out = app.api_predict_batch(predictor, ["Nakamura", "", "12", "Müller", "a" * 51])
    assert [o["name"] for o in out] == ["Nakamura", "", "12", "Müller", "a" * 51]
    assert "language" in out[0] and out[3]["transliterated"]
    assert [("error" in o) for o in out] == [False, True, True, False, True]
    assert app.api_predict_batch(predictor, "Rossi\nKim") == app.api_predict_batch(predictor, ["Rossi", "Kim"])


def test_api_predict_batch_over_limit(predictor):
    with pytest.raises(gr.Error, match="limit is 10,000"):
        app.api_predict_batch(predictor, ["Rossi"] * (MAX_BATCH + 1))


def test_serving_cores_raise_user_errors_not_gradio_ones(predictor):
    """app.py turns these into gr.Error; the cores themselves know nothing of gradio."""
    with pytest.raises(InvalidNameError, match="type a surname"):
        serving.predict_json(predictor, "  ")
    with pytest.raises(InvalidNameError, match="limit is 10,000"):
        serving.predict_batch_json(predictor, ["Rossi"] * (MAX_BATCH + 1))
    assert serving.predict_batch_json(predictor, None) == []


def test_run_batch_from_text(predictor, tmp_path):
    text = "Nakamura\n\n  Müller \n12345\nDe la Fuente\n=cmd\n"
    table, path, status = serving.run_batch(predictor, text, None, tmp_path)
    assert list(table["name"]) == ["Nakamura", "Müller", "12345", "De la Fuente", "=cmd"]
    assert "5 names" in status and "4 classified" in status and "1 unreadable" in status
    assert table.loc[2, "note"].startswith("No Latin letters") and table["language"].isna()[2]
    assert set(predictor.labels) <= set(table.columns)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and rows[4]["name"] == "'=cmd"  # no spreadsheet formula
    assert float(rows[0]["confidence"]) == pytest.approx(max(float(rows[0][lab]) for lab in predictor.labels))
    assert rows[1]["note"] == "transliterated → muller"


@pytest.mark.parametrize("text", ["", "\n \n", None])
def test_run_batch_empty(predictor, tmp_path, text):
    table, path, status = serving.run_batch(predictor, text, None, tmp_path)
    assert path is None and table.empty and "Paste surnames" in status


def test_run_batch_over_limit(predictor, tmp_path):
    table, path, status = serving.run_batch(predictor, "Rossi\n" * (MAX_BATCH + 1), None, tmp_path)
    assert path is None and table.empty and "10,001 names" in status and "limit is 10,000" in status


def test_run_batch_shows_first_rows_but_csv_has_all(predictor, tmp_path):
    table, path, status = serving.run_batch(predictor, "Rossi\nKim\nLi\nSato\nSmith", None, tmp_path, shown_rows=3)
    assert len(table) == 3 and "first 3 rows" in status
    assert len(Path(path).read_text(encoding="utf-8").splitlines()) == 6


@pytest.mark.parametrize(
    "content, expected",
    [
        ("name,country\nNakamura,JP\nRossi,IT\n", ["Nakamura", "Rossi"]),
        ("Nakamura\nRossi\n", ["Nakamura", "Rossi"]),
        ("\ufeffSurname;x\nMüller;1\n\n;2\nDe la Fuente;3\n", ["Müller", "De la Fuente"]),
        ('"Smith, Jr",a\n"O\'Brien",b\n', ["Smith, Jr", "O'Brien"]),
        ("Names\tid\nKim\t1\n", ["Kim"]),
    ],
)
def test_names_from_csv(tmp_path, content, expected):
    path = tmp_path / "names.csv"
    path.write_text(content, encoding="utf-8")
    assert serving.names_from_csv(path) == expected


def test_run_batch_from_csv_and_binary_file(predictor, tmp_path):
    good = tmp_path / "upload.csv"
    good.write_text("surname\nNakamura\nRossi\n", encoding="utf-8")
    table, path, status = serving.run_batch(predictor, "ignored when a file is given", str(good), tmp_path)
    assert list(table["name"]) == ["Nakamura", "Rossi"] and "from upload\\.csv" in status
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 4)
    table, path, status = serving.run_batch(predictor, None, str(junk), tmp_path)
    assert serving.GENERIC_ERROR not in status  # readable rows, or notes saying why not: never a crash
