"""The external evaluation (bench/external_eval.py): real surnames from faker, scored per prior."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
external_eval = pytest.importorskip("external_eval")  # needs faker and scikit-learn (requirements-dev.txt)

from name_origin.model_tab import external_table, prior_table  # noqa: E402
from name_origin.scripts import script  # noqa: E402


def test_lists_are_real_surnames_in_their_own_script():
    lists = {lst.name: lst for lst in external_eval.load_lists()}
    assert {"ru_RU", "el_GR", "ko_KR", "ar_SA", "cs_CZ", "cs_CZ ascii", "nl_NL", "en_IE"} <= set(lists)
    for name, code in (("ru_RU", "Cyrl"), ("el_GR", "Grek"), ("ko_KR", "Hang"), ("ar_SA", "Arab")):
        letters = [c for n in lists[name].names for c in n if c.isalpha()]
        assert sum(script(c) == code for c in letters) / len(letters) > 0.99
    assert len(set(lists["nl_NL"].names)) == len(lists["nl_NL"].names) > 500  # deduplicated
    assert all(n.isascii() for n in lists["cs_CZ ascii"].names)
    assert "Dvořák" not in lists["cs_CZ ascii"].names and len(lists["cs_CZ"].names) == len(lists["cs_CZ ascii"].names)


def test_scores_per_prior_and_the_tables_that_show_them(predictor, tiny_run):
    lst = external_eval.NameList("tiny", "Cyrillic", "Russian", ("Иванов", "Петров", "12345"))
    row = external_eval.score(predictor, lst, baseline=lambda names: ["Russian", "English", "Russian"])
    assert set(row["priors"]) == {"training", "equal"} and row["baseline_top1"] == pytest.approx(2 / 3)
    for scores in row["priors"].values():  # "12345" is unreadable: it counts wrong, never right
        assert scores["top1"] <= 2 / 3 and scores["top1"] <= scores["top2"] <= 2 / 3
        assert scores["set_coverage"] <= 2 / 3 and scores["set_size"] >= 2 / 3  # two readable names, sets of >= 1
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    summary = prior_table(metrics, {"lists": [row]})
    assert "external native-script lists (1) | equal" in summary and "n-gram baseline | 66.7%" in summary
    equal = metrics["priors"]["equal"]  # the served prior's unsure share and threshold, and its weighted test row
    assert f"(top ≥ {equal['abstain_threshold']:.3f})" in summary
    weighted = next(line for line in summary.splitlines() if line.startswith("| test file, languages weighted"))
    assert f"| {100 * equal['set_coverage_at_prior']:.1f}% |" in weighted
    assert all(line.count("|") == summary.splitlines()[0].count("|") for line in summary.splitlines())
    assert "| tiny | Russian | Cyrillic | 3 |" in external_table({"lists": [row]})
