"""app.py and name_origin/batch.py in-process: the JSON API (one name, a batch) and the batch tab
(pasted text, CSV uploads, limits, the CSV it writes)."""

from __future__ import annotations

import csv
from pathlib import Path

import gradio as gr
import pytest
import torch

import app
from name_origin import batch
from name_origin import views as serving
from name_origin.encoding import InvalidNameError
from name_origin.predict import MAX_BATCH, Predictor


def test_api_predict_json(predictor):
    out = app.api_predict(predictor, "Nakamura")
    assert out["language"] == next(iter(out["probabilities"])) and out["top3"][0] == out["language"]
    assert set(out["probabilities"]) == set(predictor.labels)
    assert sum(out["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert out["confidence"] == out["probabilities"][out["language"]]
    assert isinstance(out["unsure"], bool) and isinstance(out["seen_in_training"], dict)


def test_api_predict_batch_keeps_order_and_marks_errors(predictor):
    answer = app.api_predict_batch(predictor, ["Nakamura", "", "12", "Müller", "a" * 51])
    out = answer["results"]
    assert answer["prior"]["name"] == "equal" and sum(answer["prior"]["weights"].values()) == pytest.approx(1)
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
    assert serving.predict_batch_json(predictor, None)["results"] == []


def test_run_batch_from_text(predictor, tmp_path):
    text = "Nakamura\n\n  Müller \n12345\nDe la Fuente\n=cmd\n"
    table, path, status = batch.run_batch(predictor, text, None, tmp_path)
    assert list(table["name"]) == ["Nakamura", "Müller", "12345", "De la Fuente", "=cmd"]
    assert list(table["row"]) == [1, 3, 4, 5, 6] and list(table.columns[:2]) == ["row", "name"]  # line numbers
    assert "5 names" in status and "ignored" not in status and "4 classified" in status and "1 unreadable" in status
    assert table.loc[2, "note"].startswith("No letters") and table["language"].isna()[2]
    assert set(predictor.labels) <= set(table.columns)
    assert Path(path).read_bytes().startswith(b"\xef\xbb\xbfrow,name,")  # a byte-order mark: Excel reads UTF-8
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and rows[4]["name"] == "'=cmd"  # no spreadsheet formula
    assert list(rows[0])[:2] == ["row", "name"] and [r["row"] for r in rows] == ["1", "3", "4", "5", "6"]
    assert float(rows[0]["confidence"]) == pytest.approx(max(float(rows[0][lab]) for lab in predictor.labels))
    assert rows[1]["note"] == "transliterated → muller; ü: Dutch, French, German and Spanish"


@pytest.mark.parametrize("text", ["", "\n \n", None])
def test_run_batch_empty(predictor, tmp_path, text):
    table, path, status = batch.run_batch(predictor, text, None, tmp_path)
    assert path is None and table.empty and "Paste surnames" in status


def test_run_batch_over_limit(predictor, tmp_path):
    table, path, status = batch.run_batch(predictor, "Rossi\n" * (MAX_BATCH + 1), None, tmp_path)
    assert path is None and table.empty and "10,001 names" in status and "limit is 10,000" in status


def test_batch_limit_is_checked_in_one_place(predictor, tmp_path, monkeypatch):
    """Predictor.predict_batch holds the limit; the API and the batch tab follow it, not copies."""
    import name_origin.predict

    monkeypatch.setattr(name_origin.predict, "MAX_BATCH", 3)
    with pytest.raises(InvalidNameError, match="4 names: the limit is 3"):
        predictor.predict_batch(["Rossi"] * 4)
    with pytest.raises(InvalidNameError, match="limit is 3"):
        serving.predict_batch_json(predictor, ["Rossi"] * 4)
    table, path, status = batch.run_batch(predictor, "Rossi\n" * 4, None, tmp_path)
    assert path is None and table.empty and "limit is 3" in status
    assert len(serving.predict_batch_json(predictor, ["Rossi"] * 3)["results"]) == 3  # the limit itself is allowed


def test_run_batch_shows_first_rows_but_csv_has_all(predictor, tmp_path):
    table, path, status = batch.run_batch(predictor, "Rossi\nKim\nLi\nSato\nSmith", None, tmp_path, shown_rows=3)
    assert len(table) == 3 and "first 3 rows" in status
    assert len(Path(path).read_text(encoding="utf-8").splitlines()) == 6


@pytest.mark.parametrize(
    "content, expected",
    [
        ("name,country\nNakamura,JP\nRossi,IT\n", ["Nakamura", "Rossi"]),
        ("Nakamura\nRossi\n", ["Nakamura", "Rossi"]),
        ("\ufeffSurname;x\nMüller;1\n\n;2\nDe la Fuente;3\n", ["Müller", "", "", "De la Fuente"]),  # rows kept
        ('"Smith, Jr",a\n"O\'Brien",b\n', ["Smith, Jr", "O'Brien"]),
        ("Names\tid\nKim\t1\n", ["Kim"]),
    ],
)
def test_names_from_csv(tmp_path, content, expected):
    path = tmp_path / "names.csv"
    path.write_text(content, encoding="utf-8")
    assert batch.names_from_csv(path).names == expected


def test_run_batch_from_csv_and_binary_file(predictor, tmp_path):
    good = tmp_path / "upload.csv"
    good.write_text("surname\nNakamura\nRossi\n", encoding="utf-8")
    table, path, status = batch.run_batch(predictor, "ignored when a file is given", str(good), tmp_path)
    assert list(table["name"]) == ["Nakamura", "Rossi"] and "from upload\\.csv" in status
    assert "pasted names were ignored: the uploaded file was read" in status  # not silently
    _, _, status = batch.run_batch(predictor, " \n", str(good), tmp_path)
    assert "pasted" not in status  # blank text was not pasted names
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 4)
    table, path, status = batch.run_batch(predictor, None, str(junk), tmp_path)
    assert serving.GENERIC_ERROR not in status  # readable rows, or notes saying why not: never a crash
    assert path is None and table.empty and "does not look like a CSV" in status


def test_run_batch_reads_a_legacy_spreadsheet_file(predictor, tmp_path):
    """The reported bug, end to end: a Windows-1252 CSV gave Nachname, M�ller, Lef�vre, all classified."""
    upload = tmp_path / "excel.csv"
    upload.write_bytes("Nachname;Vorname\r\nMüller;Hans\r\nLefèvre;Marc\r\n".encode("cp1252"))
    table, path, status = batch.run_batch(predictor, None, str(upload), tmp_path)
    assert list(table["name"]) == ["Müller", "Lefèvre"] and table["language"].notna().all()
    assert "2 names" in status and "2 classified" in status and "Windows\\-1252" in status
    assert "⚠️" in status and "CSV UTF\\-8" in status  # the encoding was a guess, and the user is told
    with open(path, newline="", encoding="utf-8-sig") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["Müller", "Lefèvre"]


def test_run_batch_keeps_rows_aligned_and_explains_unreadable_ones(predictor, tmp_path):
    """An Excel sep= line, a blank cell, an undecodable one: every data row keeps its place."""
    upload = tmp_path / "mixed.csv"
    upload.write_bytes(
        b"sep=;\r\nVorname;Nachname\r\nHans;M\xc3\xbcller\r\nAnna;\r\nMarc;Lef\xe8vre\r\nLuigi;Rossi\r\n"
    )
    table, path, status = batch.run_batch(predictor, None, str(upload), tmp_path)
    assert list(table["name"]) == ["Müller", "", "Lef\ufffdvre", "Rossi"]  # Nachname, not sep= or the header
    assert list(table["row"]) == [2, 3, 4, 5]  # the rows as Excel shows them (the sep= line hidden)
    with open(path, newline="", encoding="utf-8-sig") as f:
        assert [(r["row"], r["name"]) for r in csv.DictReader(f)][1:3] == [("3", ""), ("4", "Lef\ufffdvre")]
    assert list(table["language"].notna()) == [True, False, False, True]
    assert table.loc[1, "note"].startswith("Empty cell") and "could not be decoded" in table.loc[2, "note"]
    assert "4 names" in status and "2 unreadable" in status and "from its sep= line" in status
    table, _, _ = batch.run_batch(predictor, None, str(upload), tmp_path, header="no", column=0)
    assert list(table["name"]) == ["Vorname", "Hans", "Anna", "Marc", "Luigi"]  # the user's choice wins


@pytest.mark.parametrize(
    "data, column, message",
    [
        (b"PK\x03\x04" + bytes(range(256)) * 4, None, "Excel workbook"),  # an .xlsx renamed .csv
        (b"", None, "empty"),
        (b"Surname\n", None, "no names"),
        ("Vorname;Nachname\nHans;Müller\n".encode(), 2, "no column 3"),  # a stale column choice
    ],
)
def test_run_batch_unreadable_upload_one_message(predictor, tmp_path, data, column, message):
    upload = tmp_path / "upload.csv"
    upload.write_bytes(data)
    table, path, status = batch.run_batch(predictor, None, str(upload), tmp_path, column=column)
    assert path is None and table.empty and message in status and status.count("⚠️") == 1


def test_column_choices_for_the_batch_tab(tmp_path):
    upload = tmp_path / "upload.csv"
    upload.write_bytes("Vorname;Nachname;Stadt\nHans;Müller;Köln\n".encode("cp1252"))
    choices, picked = batch.column_choices(str(upload), "auto")
    assert picked == 1 and choices == [
        ("Vorname (e.g. Hans)", 0),
        ("Nachname (e.g. Müller)", 1),
        ("Stadt (e.g. Köln)", 2),
    ]
    choices, picked = batch.column_choices(str(upload), "no")
    assert picked == 0 and choices[1] == ("column 2 (e.g. Nachname)", 1)
    upload.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100))
    assert batch.column_choices(str(upload), "auto") == ([], None) == batch.column_choices(None, "auto")


def test_column_choices_cut_long_cells(tmp_path):
    """A 4,000-character first cell was the column menu's label, uncut."""
    upload = tmp_path / "upload.csv"
    upload.write_text("x" * 4000 + ";Nachname\nHans;Müller\n", encoding="utf-8")
    choices, _ = batch.column_choices(str(upload), "no")
    assert choices[0] == (f"column 1 (e.g. {'x' * 39}…)", 0) and choices[1] == ("column 2 (e.g. Nachname)", 1)
    choices, _ = batch.column_choices(str(upload), "yes")
    assert choices[0] == (f"{'x' * 39}… (e.g. Hans)", 0)
    assert all(len(label) < 100 for label, _ in choices)


def test_an_unreadable_upload_says_the_pasted_names_were_ignored(predictor, tmp_path):
    upload = tmp_path / "upload.csv"
    upload.write_bytes(b"Surname\n")
    table, path, status = batch.run_batch(predictor, "Rossi", str(upload), tmp_path)
    assert path is None and table.empty and "no names" in status and "pasted names were ignored" in status


def test_api_rejects_names_that_are_not_text(predictor):
    with pytest.raises(InvalidNameError, match="must be text"):
        serving.predict_json(predictor, ["a"])
    rows = serving.predict_batch_json(predictor, ["Rossi", {"a": 1}, 7])["results"]
    assert "language" in rows[0] and [r.get("error") for r in rows[1:]] == [serving.NOT_TEXT] * 2


@pytest.mark.parametrize("onnx", [True, False], ids=["onnxruntime", "torch"])
def test_batch_on_several_workers_equals_one_thread_and_each_name_alone(tiny_run, real_data_dir, monkeypatch, onnx):
    """Worker threads only change where each exact-length batch runs: the probabilities of a batch
    of many lengths are those of one thread, and those of each name asked alone; the batches do
    run on the workers, and requests at once (as Gradio sends them) get the same answers."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from trainer import data

    predictor = Predictor.from_dir(tiny_run, onnx=onnx)
    assert (predictor.onnx is not None) == onnx, predictor.runtime
    names = [name for name, _ in data.read_rows(real_data_dir / "names_test.csv.gz")][::40]  # 168 names
    assert len({len(n) for n in names}) > 5
    threads = set()
    exact_length = predictor._exact_length

    def recorded(*args):
        threads.add(threading.current_thread().name)
        return exact_length(*args)

    monkeypatch.setattr(predictor, "_exact_length", recorded)
    predictor.workers = 1
    serial = predictor.predict_batch(names, "training")
    assert threads == {threading.current_thread().name}
    predictor.workers = 3
    threads.clear()
    threaded = predictor.predict_batch(names, "training")
    assert len(threads) > 1 and all(t.startswith("name-origin") for t in threads)
    with ThreadPoolExecutor(4) as requests:
        at_once = list(requests.map(lambda n: predictor.predict_batch(names[n:], "training"), range(4)))

    def table(answers):  # (names, classes) in label order
        return torch.tensor([[p.model_probs[label] for label in predictor.labels] for p in answers])

    torch.testing.assert_close(table(threaded), table(serial), rtol=0, atol=1e-6)
    for n, answers in enumerate(at_once):
        torch.testing.assert_close(table(answers), table(serial[n:]), rtol=0, atol=1e-6)
    alone = [predictor.predict(name, "training") for name in names[:20]]
    torch.testing.assert_close(table(threaded[:20]), table(alone), rtol=0, atol=1e-6)
    assert [p.top[0] for p in threaded] == [p.top[0] for p in serial]
