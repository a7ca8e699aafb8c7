"""Data: where the files are looked for, downloads (faked, never the network), strict parsing,
the stratified validation split and length-bucketed batches."""

import codecs
import csv
import gzip
import hashlib
import io
import urllib.error
import urllib.request
from collections import Counter

import pytest
import torch
from conftest import write_csv_gz

from name_origin.encoding import normalize_name
from trainer import data
from trainer.data import FILES, DataError, bucketed_batches, load, locate, parse, read_rows, stratified_split


def make_data_dir(path, train=(("Smith", "English"),), test=(("Jones", "English"),)):
    path.mkdir(parents=True, exist_ok=True)
    write_csv_gz(path / "names_train.csv.gz", list(train))
    write_csv_gz(path / "names_test.csv.gz", list(test))
    return path


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A project root with empty ./data and ../shared/data, so nothing real is found by accident."""
    root = tmp_path / "proj" / "main"
    (root / "data").mkdir(parents=True)
    (tmp_path / "proj" / "shared" / "data").mkdir(parents=True)
    monkeypatch.setattr(data, "PROJECT_ROOT", root)
    return root


@pytest.fixture
def no_download(monkeypatch):
    """Fail the test if anything tries to download."""

    def refuse(*args, **kwargs):
        raise AssertionError("locate() tried to download")

    monkeypatch.setattr(data, "download", refuse)


# --- locate -----------------------------------------------------------------------------------


def test_locate_order(tmp_path, fake_root, no_download):
    flag_dir = make_data_dir(tmp_path / "flag")
    env_dir = make_data_dir(tmp_path / "env")
    local = make_data_dir(fake_root / "data")
    shared = make_data_dir(fake_root.parent / "shared" / "data")
    env = {data.DATA_ENV: str(env_dir)}
    assert locate(str(flag_dir), env=env) == flag_dir
    assert locate(None, env=env) == env_dir
    assert locate(None, env={}) == local
    for name in FILES:
        (local / name).unlink()
    assert locate(None, env={}) == shared
    # a directory holding only one of the two files does not count
    (env_dir / "names_test.csv.gz").unlink()
    assert locate(None, env=env) == shared


def test_locate_explicit_dir_without_files_is_an_error(tmp_path, fake_root, no_download):
    make_data_dir(fake_root.parent / "shared" / "data")  # would be found if the flag were ignored
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as err:
        locate(str(empty), env={})
    msg = str(err.value)
    assert str(empty) in msg
    assert "--data-dir" in msg and data.DATA_ENV in msg


def test_locate_missing_everywhere_names_every_place(tmp_path, fake_root, no_download):
    env_dir = tmp_path / "env"
    with pytest.raises(DataError) as err:
        locate(None, env={data.DATA_ENV: str(env_dir)}, allow_download=False)
    msg = str(err.value)
    for place in (env_dir, fake_root / "data", fake_root.parent / "shared" / "data"):
        assert str(place) in msg
    for hint in ("names_train.csv.gz", "--data-dir", data.DATA_ENV, data.BASE_URL):
        assert hint in msg


def test_locate_download_failure_is_reported(fake_root, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as err:
        locate(None, env={})
    assert calls and calls[0].startswith(data.BASE_URL)
    msg = str(err.value)
    assert "download" in msg and "no network" in msg
    assert str(fake_root / "data") in msg and str(fake_root.parent / "shared" / "data") in msg
    assert not any((fake_root / "data").iterdir())  # no partial file left behind


class FakeResponse(io.BytesIO):
    pass


def serve(payloads: dict[str, bytes]):
    def urlopen(url, timeout=None):
        assert url.startswith(data.BASE_URL)
        return FakeResponse(payloads[url[len(data.BASE_URL) :]])

    return urlopen


def test_download_verifies_checksums(tmp_path, monkeypatch):
    payloads = {name: f"bytes of {name}".encode() for name in FILES}
    monkeypatch.setattr(data, "FILES", {n: hashlib.sha256(b).hexdigest() for n, b in payloads.items()})
    monkeypatch.setattr(urllib.request, "urlopen", serve(payloads))
    data.download(tmp_path / "dl")
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == sorted(FILES)
    for name, payload in payloads.items():
        assert (tmp_path / "dl" / name).read_bytes() == payload


def test_download_checksum_mismatch_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", serve({name: b"not the published file" for name in FILES}))
    dest = tmp_path / "dl"
    with pytest.raises(DataError, match="sha256"):
        data.download(dest)
    assert list(dest.iterdir()) == []


def test_download_cut_off_leaves_no_partial_file(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, *args):
            raise ConnectionResetError("connection reset mid-transfer")

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Broken())
    dest = tmp_path / "dl"
    with pytest.raises(OSError):
        data.download(dest)
    assert list(dest.iterdir()) == []


def test_locate_downloads_into_project_data_when_nothing_found(fake_root, monkeypatch, real_data_dir):
    payloads = {name: (real_data_dir / name).read_bytes() for name in FILES}  # the published bytes
    monkeypatch.setattr(urllib.request, "urlopen", serve(payloads))
    assert locate(None, env={}) == fake_root / "data"
    for name, digest in FILES.items():
        assert data.sha256(fake_root / "data" / name) == digest


def test_locate_rejects_wrong_download(fake_root, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", serve({name: b"tampered" for name in FILES}))
    with pytest.raises(DataError, match="sha256"):
        locate(None, env={})
    assert not any((fake_root / "data").iterdir())


# --- parsing ----------------------------------------------------------------------------------


def test_read_rows_rejects_non_gzip(tmp_path):
    bad = tmp_path / "names_train.csv.gz"
    bad.write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="not a readable gzipped"):
        read_rows(bad)


def test_read_rows_rejects_bad_utf8(tmp_path):
    bad = tmp_path / "names_train.csv.gz"
    with gzip.open(bad, "wb") as f:
        f.write(b'"Sm\xffth","English"\n')
    with pytest.raises(DataError):
        read_rows(bad)


def test_parse_counts_and_skips_malformed_rows():
    rows = [
        ["Smith", "English"],
        ["Smith", "English", "Extra"],  # 3 columns
        ["Lonely"],  # 1 column
        [],  # blank line
        ["", "English"],  # empty name
        [" - ", "German"],  # empty after normalisation
        ["Müller ", "German"],
        ["Nakamura", "Japanese"],
    ]
    raw, names, labels, report = parse(rows, None)
    assert names == ["smith", "muller", "nakamura"]
    assert labels == ["English", "German", "Japanese"]
    assert raw == ["Smith", "Müller ", "Nakamura"]
    assert (report.rows, report.bad_columns, report.empty_name, report.unknown_label) == (8, 3, 2, 0)
    assert report.skipped == 5


def test_parse_with_label_index_skips_unknown_labels():
    rows = [["Smith", "English"], ["Zorg", "Klingon"], ["Jones", " English "], ["Nobody", ""]]
    _, names, labels, report = parse(rows, {"English": 0})
    assert names == ["smith", "jones"] and labels == ["English", "English"]
    assert report.unknown_label == 2 and report.skipped == 2


def test_load_reports_malformed_rows_and_never_mislabels(tmp_path):
    train = [("Smith", "English"), ("Jones", "English"), ("Brown", "English"), ("Wilson", "English")]
    train += [("Müller", "German"), ("Schmidt", "German"), ("Weber", "German"), ("Fischer", "German")]
    train += [("Nakamura", "Japanese"), ("Tanaka", "Japanese"), ("Suzuki", "Japanese")]
    bad_train = [("Bad", "Row", "English"), ("", "German"), ("--", "Japanese")]
    test = [("Taylor", "English"), ("Klein", "German"), ("Yamada", "Japanese"), ("Zorg", "Klingon"), ("X", "Y", "Z")]
    d = tmp_path / "d"
    d.mkdir()
    write_csv_gz(d / "names_train.csv.gz", train + bad_train)
    write_csv_gz(d / "names_test.csv.gz", test)
    ds = load(d, val_fraction=0.25, seed=0)
    assert ds.labels == ("English", "German", "Japanese")
    tr, te = ds.reports["train"], ds.reports["test"]
    assert (tr.rows, tr.bad_columns, tr.empty_name, tr.unknown_label) == (14, 1, 2, 0)
    assert (te.rows, te.bad_columns, te.empty_name, te.unknown_label) == (5, 1, 0, 1)
    truth = {"smith": "English", "muller": "German", "nakamura": "Japanese"}
    kept = list(zip(ds.train.names + ds.val.names, ds.train.labels + ds.val.labels, strict=True))
    assert len(kept) == len(train)
    by_name = {n: ds.labels[y] for n, y in kept}
    for name, lab in truth.items():
        assert by_name[name] == lab
    assert "bad" not in by_name and "row" not in by_name
    assert [ds.labels[y] for y in ds.test.labels] == ["English", "German", "Japanese"]
    assert ds.test.names == ["taylor", "klein", "yamada"]
    assert ds.checksums == {name: data.sha256(d / name) for name in FILES}
    assert set(ds.encoder.alphabet) == set("".join(ds.train.names))  # vocabulary from the train part only


def write_bom_csv_gz(path, rows, bom=True):
    """A gzipped CSV as a spreadsheet might save it: a UTF-8 byte-order mark first."""
    buf = io.StringIO()
    csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    with gzip.open(path, "wb") as f:
        f.write((codecs.BOM_UTF8 if bom else b"") + buf.getvalue().encode("utf-8"))


def test_read_rows_removes_the_byte_order_mark(tmp_path):
    path = tmp_path / "names_train.csv.gz"
    write_bom_csv_gz(path, [("Smith", "English"), ("Jones", "English")])
    assert read_rows(path) == [["Smith", "English"], ["Jones", "English"]]  # not "\ufeffSmith"
    assert data.has_bom(path)
    write_bom_csv_gz(path, [("Smith", "English")], bom=False)
    assert read_rows(path) == [["Smith", "English"]] and not data.has_bom(path)


def test_parse_cleans_names_with_the_serving_function_and_counts_each_change():
    rows = [
        ["Park ", "Korean"],  # trailing space
        [" Lytkin,", "Russian"],  # leading space, trailing comma
        ["Jevolojnov,", "Russian"],
        ["Dubois, Marc", "French"],  # LAST, First
        ["\ufeffJones", "English"],  # a stray byte-order mark inside the file
        ["Kowal\u00adski", "Polish"],  # soft hyphen
        ["Nоvak", "Czech"],  # Cyrillic о
        ["Müller", "German"],
        ["Smith", "English"],
    ]
    raw, names, labels, report = parse(rows, None)
    assert names == ["park", "lytkin", "jevolojnov", "dubois", "jones", "kowalski", "novak", "muller", "smith"]
    assert names == [normalize_name(r).text for r in raw]  # the one function serving uses
    assert raw == [r[0] for r in rows]  # the names as written are kept beside them
    assert (report.trimmed_spaces, report.trimmed_punctuation, report.last_first) == (2, 2, 1)
    assert (report.format_chars, report.lookalikes, report.transliterated) == (2, 1, 1)
    assert report.skipped == 0 and report.bom == 0
    assert report.cleaned == {"trimmed_spaces": 2, "trimmed_punctuation": 2, "format_chars": 2, "last_first": 1,
                              "lookalikes": 1, "transliterated": 1}  # fmt: skip


def test_load_reads_bom_files_and_builds_the_alphabet_from_clean_names(tmp_path):
    train = [("Smith", "English"), ("Jones ", "English"), ("Brown,", "English"), ("Wilson", "English")]
    train += [("Park ", "Korean"), ("Kim", "Korean"), ("Lee,", "Korean"), ("Choi", "Korean")]
    train += [("Lytkin,", "Russian"), ("Ivanov", "Russian"), ("Dan'Ko", "Russian"), ("Pet\ufeffrov", "Russian")]
    d = tmp_path / "d"
    d.mkdir()
    write_bom_csv_gz(d / "names_train.csv.gz", train)
    write_bom_csv_gz(d / "names_test.csv.gz", [("Taylor,", "English"), ("Yoon ", "Korean")])
    ds = load(d, val_fraction=0.25, seed=0)
    tr, te = ds.reports["train"], ds.reports["test"]
    assert (tr.rows, tr.skipped, tr.bom) == (12, 0, 1)
    assert (tr.trimmed_spaces, tr.trimmed_punctuation, tr.format_chars) == (2, 3, 1)
    assert (te.rows, te.bom, te.trimmed_spaces, te.trimmed_punctuation) == (2, 1, 1, 1)
    assert ds.labels == ("English", "Korean", "Russian")
    every = ds.train.names + ds.val.names
    assert "smith" in every and "lytkin" in every and "petrov" in every
    assert ds.test.names == ["taylor", "yoon"]
    assert "," not in ds.encoder.alphabet and "\ufeff" not in ds.encoder.alphabet
    assert set(ds.encoder.alphabet) <= set(" 'abcdefghijklmnopqrstuvwxyz")


def test_real_data_cleans_to_letters_space_and_apostrophe(real_data_dir):
    ds = load(real_data_dir, val_fraction=0.1, seed=0)
    assert ds.encoder.alphabet == " 'abcdefghijklmnopqrstuvwxyz"  # no comma: the 3 trailing ones are trimmed
    tr, te = ds.reports["train"], ds.reports["test"]
    assert tr.trimmed_punctuation + te.trimmed_punctuation == 3  # Jevolojnov, Lytkin, Lysansky
    assert tr.trimmed_spaces > 0 and tr.skipped == tr.not_a_name == 16 and te.skipped == te.not_a_name == 8
    assert "to the first page" not in ds.train.names + ds.val.names + ds.test.names  # page text of the source
    assert tr.transliterated == te.transliterated == 0  # the files are ASCII


def test_load_real_subset(small_data_dir):
    ds = load(small_data_dir, val_fraction=0.1, seed=0)
    assert len(ds.labels) == 18
    tr, te = ds.reports["train"], ds.reports["test"]
    assert len(ds.train.names) + len(ds.val.names) == 1500 - tr.not_a_name
    assert len(ds.test.names) == 600 - te.not_a_name
    assert tr.skipped == tr.not_a_name and te.skipped == te.not_a_name  # only the source's page text
    assert ds.encoder.alphabet[0] == " " and set("abcxyz") <= set(ds.encoder.alphabet)


# --- split ------------------------------------------------------------------------------------


def test_stratified_split_is_seeded_disjoint_and_stratified():
    gen = torch.Generator().manual_seed(1)
    sizes = [500, 120, 40, 10]
    labels = [y for y, n in enumerate(sizes) for _ in range(n)]
    labels = [labels[i] for i in torch.randperm(len(labels), generator=gen).tolist()]
    keep, held = stratified_split(labels, 0.1, seed=7)
    assert set(keep).isdisjoint(held)
    assert sorted(keep + held) == list(range(len(labels)))
    held_counts, keep_counts = Counter(labels[i] for i in held), Counter(labels[i] for i in keep)
    for y, n in enumerate(sizes):
        assert held_counts[y] == round(n * 0.1)  # every class held out in proportion
        assert keep_counts[y] == n - round(n * 0.1)
    assert stratified_split(labels, 0.1, seed=7) == (keep, held)
    assert stratified_split(labels, 0.1, seed=8) != (keep, held)


def test_stratified_split_keeps_singleton_classes_in_train():
    keep, held = stratified_split([0] * 20 + [1], 0.5, seed=0)
    assert 20 in keep and len(held) == 10


# --- batches ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seeded", [True, False])
def test_bucketed_batches_cover_every_index_once_sorted_desc(seeded):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 20, (1000,), generator=gen)
    batches = bucketed_batches(lengths, 64, torch.Generator().manual_seed(3) if seeded else None)
    flat = torch.cat(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    assert all(len(b) <= 64 for b in batches) and len(batches) == 16
    for b in batches:
        lb = lengths[b]
        assert torch.all(lb[:-1] >= lb[1:])  # pack_padded_sequence(enforce_sorted=True) accepts it


def test_bucketed_batches_seeded_and_shuffled():
    lengths = torch.randint(1, 20, (1000,), generator=torch.Generator().manual_seed(0))
    a = bucketed_batches(lengths, 64, torch.Generator().manual_seed(3))
    b = bucketed_batches(lengths, 64, torch.Generator().manual_seed(3))
    c = bucketed_batches(lengths, 64, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a, c, strict=True))
    # deterministic order without a generator: longest batches first
    fixed = bucketed_batches(lengths, 64, None)
    assert [int(lengths[x].max()) for x in fixed] == sorted((int(lengths[x].max()) for x in fixed), reverse=True)


def test_load_report_counts_duplicates_and_conflicting_labels():
    from trainer.data import parse

    rows = [["Klein", "German"], ["Klein", "German"], ["Klein", "Dutch"], ["Smith", "English"], ["Smith ", "English"]]
    *_, report = parse(rows, None)
    assert (report.duplicate_rows, report.conflicting_names, report.conflicting_rows) == (2, 1, 3)
