"""Evidence: the training-name lookup holds counts per label under keyed hashes, never the names."""

import json
from collections import Counter

from conftest import read_csv_gz

from name_origin.encoding import normalize_name
from name_origin.evidence import EVIDENCE_NAME, FORMAT, Evidence, build, name_hash
from trainer.checkpoint import atomic_save_tensors

NAMES = ["muller", "muller", "muller", "muller", "smith", "smith", "nakamura"]
LABELS = [6, 6, 3, 6, 4, 4, 10]


def test_evidence_lookup_counts():
    ev = Evidence(build(NAMES, LABELS))
    assert ev.lookup("muller") == {6: 3, 3: 1}
    assert list(ev.lookup("muller")) == [6, 3]  # most frequent label first
    assert ev.lookup("smith") == {4: 2}
    assert ev.lookup("nakamura") == {10: 1}
    assert ev.lookup("mueller") == {} and ev.lookup("") == {}
    assert ev.seen_mask(["muller", "zzz", "nakamura"]).tolist() == [True, False, True]
    assert len(ev.hash) == 4  # one row per (name, label) pair


def test_evidence_file_round_trip_holds_no_names(tmp_path):
    names = ["zwieback", "zwieback", "quackenbush", "oyelaranwa"]
    path = tmp_path / EVIDENCE_NAME
    atomic_save_tensors(path, build(names, [1, 2, 1, 0]), metadata=FORMAT)
    ev = Evidence.load(path)
    assert ev.lookup("zwieback") == {1: 1, 2: 1} and ev.lookup("oyelaranwa") == {0: 1}
    blob = path.read_bytes()
    for name in names:
        assert name.encode() not in blob and name.upper().encode() not in blob
        assert name[:5].encode() not in blob
    assert name_hash("zwieback") != name_hash("Zwieback")  # keyed on the normalised form only


def test_evidence_empty():
    ev = Evidence(build([], []))
    assert ev.lookup("smith") == {}
    assert ev.seen_mask(["smith"]).tolist() == [False]


def train_rows(small_data_dir):
    """(normalised, label, raw) of the training file's rows the trainer keeps (not the source's page text)."""
    from trainer.data import NOT_SURNAMES

    rows = [(normalize_name(n).text, lab, n) for n, lab in read_csv_gz(small_data_dir / "names_train.csv.gz")]
    return [row for row in rows if row[0] not in NOT_SURNAMES]


def test_run_evidence_matches_training_counts(tiny_run, small_data_dir):
    labels = json.loads((tiny_run / "config.json").read_text())["labels"]
    ev = Evidence.load(tiny_run / EVIDENCE_NAME)
    rows = train_rows(small_data_dir)
    counts: dict[str, Counter] = {}
    for norm, lab, _ in rows:
        counts.setdefault(norm, Counter())[labels.index(lab)] += 1
    assert int(ev.count.sum()) == len(rows)  # train and validation parts both count
    for norm, c in counts.items():
        assert ev.lookup(norm) == dict(c), norm
    blob = (tiny_run / EVIDENCE_NAME).read_bytes()
    leaked = [raw for norm, _, raw in rows if len(norm) >= 6 and (norm.encode() in blob or raw.encode() in blob)]
    assert leaked == []
