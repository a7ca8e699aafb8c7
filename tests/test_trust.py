"""Issue 6, trainer side: calibration (temperature, ECE), abstention, per-class metrics,
explanations, and what a finished run's metrics.json holds (the evidence lookup: test_evidence.py)."""

import json
import math

import pytest
import torch
from conftest import read_csv_gz
from test_evidence import train_rows

from name_origin import calibration as C
from name_origin.encoding import UNK, InvalidNameError, normalize_name, pad_batch
from name_origin.predict import Predictor
from trainer import evaluate as E

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


def sample_labels(probs: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(seed))[:, 0]


def synthetic_logits(n=20_000, classes=6, scale=2.0, seed=0):
    """Logits whose softmax is the true label distribution, and labels drawn from it."""
    true = torch.randn(n, classes, generator=torch.Generator().manual_seed(seed)) * scale
    return true, sample_labels(true.softmax(1), seed + 1)


# --- temperature ------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [3.0, 1.0, 0.5])
def test_fit_temperature_recovers_known_temperature(factor):
    true, y = synthetic_logits()
    t = E.fit_temperature(true * factor, y)  # over- (3) or under-confident (0.5) by a known factor
    assert t == pytest.approx(factor, rel=0.05)


def test_temperature_scaling_lowers_ece():
    true, y = synthetic_logits()
    logits = true * 3
    t = E.fit_temperature(logits, y)
    before = E.expected_calibration_error(logits.softmax(1), y)
    after = E.expected_calibration_error((logits / t).softmax(1), y)
    assert before > 0.1 and after < 0.02
    # the accuracy is untouched: temperature never changes the argmax
    assert torch.equal((logits / t).argmax(1), logits.argmax(1))


# --- ECE --------------------------------------------------------------------------------------


def test_ece_of_calibrated_probabilities_is_near_zero():
    true, y = synthetic_logits(n=50_000)
    assert E.expected_calibration_error(true.softmax(1), y) < 0.015


def test_ece_of_overconfident_probabilities_is_large():
    true, y = synthetic_logits(n=50_000)
    assert E.expected_calibration_error((true * 4).softmax(1), y) > 0.15


def test_ece_hand_computed():
    # confidences 0.9, 0.9 (one right, one wrong) and 0.7, 0.7 (both right), 15 bins:
    # 0.5 * |0.5 - 0.9| + 0.5 * |1.0 - 0.7| = 0.35
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7]])
    y = torch.tensor([0, 1, 1, 1])
    assert E.expected_calibration_error(probs, y) == pytest.approx(0.35, abs=1e-6)
    # one bin: |0.75 - 0.8| = 0.05
    assert E.expected_calibration_error(probs, y, bins=1) == pytest.approx(0.05, abs=1e-6)


def test_reliability_bins_hand_computed():
    # top probabilities 0.9 (right), 0.9 (wrong), 0.7, 0.7 (both right) and 0.5 (right), which lies
    # on the edge of two bins and belongs to the lower one: bins are (lo, hi]
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.3, 0.7], [0.3, 0.7], [0.5, 0.5]])
    y = torch.tensor([0, 1, 1, 1, 0])
    rows = E.reliability_bins(probs, y, bins=4)
    assert [(r["lo"], r["hi"]) for r in rows] == [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]
    assert [r["count"] for r in rows] == [0, 1, 2, 2]
    assert [r["confidence"] for r in rows] == [None, pytest.approx(0.5), pytest.approx(0.7), pytest.approx(0.9)]
    assert [r["accuracy"] for r in rows] == [None, 1.0, 1.0, 0.5]
    # ECE = 1/5 * 0.5 + 2/5 * 0.3 + 2/5 * 0.4, from these very bins
    assert E.expected_calibration_error(probs, y, bins=4) == pytest.approx(0.38, abs=1e-6)
    assert E.ece_of_bins(rows) == E.expected_calibration_error(probs, y, bins=4)


@pytest.mark.parametrize("bins", [1, 4, 15])
def test_reliability_bins_partition_the_unit_interval(bins):
    true, y = synthetic_logits(n=5000)
    probs = (true * 2).softmax(1)
    rows = E.reliability_bins(probs, y, bins)
    assert len(rows) == bins
    assert rows[0]["lo"] == 0 and rows[-1]["hi"] == pytest.approx(1)
    assert all(a["hi"] == b["lo"] for a, b in zip(rows, rows[1:], strict=False))  # contiguous
    assert all(r["hi"] - r["lo"] == pytest.approx(1 / bins, abs=1e-6) for r in rows)  # equal widths
    conf, pred = probs.max(1)
    for r in rows:  # each name in exactly the bin its top probability falls in, counted there
        inside = (conf > r["lo"]) & (conf <= r["hi"])
        assert r["count"] == int(inside.sum())
        if r["count"]:
            assert r["confidence"] == pytest.approx(conf[inside].double().mean().item())
            assert r["accuracy"] == pytest.approx((pred == y)[inside].double().mean().item())
    assert sum(r["count"] for r in rows) == len(y)
    ece = sum(r["count"] / len(y) * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"])
    assert E.expected_calibration_error(probs, y, bins) == pytest.approx(ece, abs=1e-12)
    assert len(E.reliability_bins(probs, y)) == E.ECE_BINS  # the default: what metrics.json reports


# --- abstention -------------------------------------------------------------------------------


def confidence_data(n=4000, classes=5, seed=0):
    """Top probability `conf` on the predicted class; right with probability `conf`."""
    gen = torch.Generator().manual_seed(seed)
    conf = 0.25 + 0.75 * torch.rand(n, generator=gen)
    pred = torch.randint(0, classes, (n,), generator=gen)
    probs = ((1 - conf) / (classes - 1))[:, None].repeat(1, classes)
    probs[torch.arange(n), pred] = conf
    right = torch.rand(n, generator=gen) < conf
    other = (pred + torch.randint(1, classes, (n,), generator=gen)) % classes
    return probs, torch.where(right, pred, other)


@pytest.mark.parametrize("target", [0.8, 0.9, 0.95])
def test_abstain_threshold_meets_target_on_kept_set(target):
    probs, y = confidence_data()
    t = C.abstain_threshold(probs, y, target)
    conf, pred = probs.max(1)
    kept = conf >= t
    assert 0 < kept.sum() < len(y)
    assert (pred == y)[kept].double().mean() >= target
    # and it is the largest such set: answering the next most confident name breaks the target
    order = torch.argsort(conf, descending=True)
    k = int(kept.sum())
    assert (pred == y)[order[: k + 1]].double().mean() < target


def test_abstain_threshold_with_tied_confidences():
    # 10 names at 0.99, all right; then 10 names tied at 0.8, half right.
    conf = torch.tensor([0.99] * 10 + [0.8] * 10)
    probs = torch.stack([conf, 1 - conf], 1)
    y = torch.tensor([0] * 10 + [0, 1] * 5)
    t = C.abstain_threshold(probs, y, 0.9)
    kept = conf >= t
    assert (probs.argmax(1) == y)[kept].double().mean() >= 0.9  # 0.75 when the cut falls inside the tie


def test_abstain_threshold_unreachable_target():
    probs, y = confidence_data()
    wrong = (probs.argmax(1) + 1) % probs.shape[1]  # every answer wrong
    assert C.abstain_threshold(probs, wrong, 0.9) == 1.0


def test_abstain_threshold_zero_target_answers_everything():
    probs, y = confidence_data()
    t = C.abstain_threshold(probs, y, 0.0)
    assert bool((probs.max(1).values >= t).all())


def test_coverage_curve_is_monotone():
    probs, y = confidence_data()
    curve = E.coverage_curve(probs, y, points=11)
    thresholds = [r["threshold"] for r in curve]
    assert thresholds == pytest.approx([i / 10 for i in range(11)])
    coverage = [r["coverage"] for r in curve]
    assert coverage[0] == 1.0
    assert all(a >= b for a, b in zip(coverage, coverage[1:], strict=False))
    answered = [r for r in curve if r["accuracy"] is not None]
    assert answered[-1]["accuracy"] > answered[0]["accuracy"] + 0.2  # confident answers are better ones
    assert all(r["accuracy"] is None for r in curve if r["coverage"] == 0)


# --- per-class metrics ------------------------------------------------------------------------


def ranked_logits(rankings: list[list[int]], classes: int) -> torch.Tensor:
    out = torch.zeros(len(rankings), classes)
    for i, ranking in enumerate(rankings):
        for pos, c in enumerate(ranking):
            out[i, c] = classes - pos
    return out


def test_classification_metrics_hand_computed():
    labels = ("a", "b", "c", "d")
    y = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3])
    rankings = [[0, 1, 2, 3], [0, 2, 1, 3], [1, 0, 2, 3], [1, 0, 2, 3], [2, 1, 3, 0], [2, 1, 0, 3], [0, 2, 1, 3],
                [2, 0, 1, 3]]  # fmt: skip
    m = E.classification_metrics(ranked_logits(rankings, 4), y, labels)
    # predicted 0 0 1 1 2 2 0 2 -> confusion (rows true, columns predicted):
    assert m["confusion"] == [[2, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 0]]
    expected = {
        "a": (2 / 3, 2 / 3, 2 / 3, 3),
        "b": (1 / 2, 1 / 2, 1 / 2, 2),
        "c": (1 / 3, 1 / 2, 2 / 5, 2),
        "d": (0.0, 0.0, 0.0, 1),
    }
    for lab, (p, r, f1, support) in expected.items():
        got = m["per_class"][lab]
        assert got["precision"] == pytest.approx(p)
        assert got["recall"] == pytest.approx(r)
        assert got["f1"] == pytest.approx(f1)
        assert got["support"] == support
    assert m["accuracy"] == pytest.approx(4 / 8)
    assert m["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 5 + 0) / 4)
    assert m["top3_accuracy"] == pytest.approx(7 / 8)  # only the last name has its label ranked 4th
    acc, f1 = E.quick_metrics(ranked_logits(rankings, 4), y, 4)
    assert (acc, f1) == (m["accuracy"], m["macro_f1"])  # one F1 implementation: identical, not close


def test_f1_of_a_class_neither_present_nor_predicted_is_zero():
    # class 2 never occurs and is never predicted: F1 0 (scikit-learn's zero_division=0), which
    # pulls the macro average down, as it does in sklearn.metrics.f1_score(..., labels=[0, 1, 2])
    cm = torch.tensor([[3, 1, 0], [0, 2, 0], [0, 0, 0]])
    assert E.f1_scores(cm).tolist() == pytest.approx([2 * 3 / (3 + 4), 2 * 2 / (3 + 2), 0.0])
    y, pred = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 1, 1])
    logits = torch.nn.functional.one_hot(pred, 3).float()
    assert E.quick_metrics(logits, y, 3)[1] == pytest.approx((6 / 7 + 4 / 5 + 0) / 3)


# --- explanation ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["Müller", "De la Fuente", "O'Brien", "Nakamura", "x"])
def test_explain_one_score_per_character_and_stable(predictor, raw):
    first = predictor.explain(raw)
    text = normalize_name(raw).text
    assert [c for c, _ in first] == list(text)
    assert all(isinstance(s, float) and math.isfinite(s) for _, s in first)
    assert predictor.explain(raw) == first  # identical, not just close


def test_explain_is_occlusion_toward_the_label(predictor):
    text = "nakamura"
    label = predictor.labels[3]
    scores = predictor.explain(text, label)
    ids = predictor.encoder.encode(text)
    target = predictor.labels.index(label)

    def logp(seq):
        x, lengths = pad_batch([seq])
        with torch.no_grad():
            member = predictor.model.members[0]  # the tiny preset has one member
            return (member(x, lengths) / predictor.temperature).log_softmax(-1)[0, target].item()

    base = logp(ids)
    for i, (_, score) in enumerate(scores):
        assert score == pytest.approx(base - logp(ids[:i] + [UNK] + ids[i + 1 :]), abs=1e-5)
    default = predictor.explain(text)  # without a label: toward the predicted one
    top = predictor.predict(text, prior="training").top[0]  # the model's own answer: no prior shift
    assert default == predictor.explain(text, top)


def test_explain_rejects_invalid_names(predictor):
    with pytest.raises(InvalidNameError):
        predictor.explain("   ")


def test_prediction_uses_saved_temperature_and_threshold(predictor, tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert predictor.temperature == cfg["calibration"]["temperature"]
    assert predictor.threshold == cfg["calibration"]["abstain_threshold"]
    pred = predictor.predict("Nakamura", prior="training")  # the model's own probabilities
    assert sum(pred.probs.values()) == pytest.approx(1, abs=1e-5)
    assert list(pred.probs.values()) == sorted(pred.probs.values(), reverse=True)
    x, lengths = pad_batch([predictor.encoder.encode("nakamura")])
    with torch.no_grad():
        expected = (predictor.model.members[0](x, lengths) / predictor.temperature).softmax(-1)[0]
    for i, lab in enumerate(predictor.labels):
        assert pred.probs[lab] == pytest.approx(expected[i].item(), abs=1e-6)
    assert pred.abstain == (pred.top[1] < predictor.setting("training").threshold)


# --- the run's metrics.json -------------------------------------------------------------------


def kept_test_rows(data_dir) -> list:
    """The test file's rows the trainer keeps (not the source's page text, trainer.data.NOT_SURNAMES)."""
    from trainer.data import NOT_SURNAMES

    rows = read_csv_gz(data_dir / "names_test.csv.gz")
    return [r for r in rows if normalize_name(r[0]).text not in NOT_SURNAMES]


def test_run_metrics_hold_the_trust_sections(tiny_run, small_data_dir):
    n = len(kept_test_rows(small_data_dir))  # 600 rows, less the page text
    m = json.loads((tiny_run / "metrics.json").read_text())
    labels = json.loads((tiny_run / "config.json").read_text())["labels"]
    test = m["test"]
    assert set(test["per_class"]) == set(labels)
    for row in test["per_class"].values():
        assert {"precision", "recall", "f1", "support"} <= set(row)
        assert all(0 <= row[k] <= 1 for k in ("precision", "recall", "f1"))
    assert sum(r["support"] for r in test["per_class"].values()) == n
    cm = torch.tensor(test["confusion"])
    assert cm.shape == (18, 18) and int(cm.sum()) == n
    assert [int(s) for s in cm.sum(1)] == [test["per_class"][lab]["support"] for lab in labels]
    assert int(cm.diag().sum()) == round(test["accuracy"] * n)
    assert test["accuracy"] <= test["top3_accuracy"] <= 1

    train_names = {norm for norm, _, _ in train_rows(small_data_dir)}
    test_names = [normalize_name(name).text for name, _ in kept_test_rows(small_data_dir)]
    assert m["test_unseen"]["rows"] == sum(n not in train_names for n in test_names)
    assert 0 <= m["test_unseen"]["accuracy"] <= 1

    cal = m["calibration"]
    assert len(cal["reliability_before"]) == len(cal["reliability_after"]) == cal["bins"] > 1
    for when in ("before", "after"):  # each ECE is the one its reliability diagram shows
        rows = cal[f"reliability_{when}"]
        assert sum(r["count"] for r in rows) == n
        assert cal[f"ece_{when}"] == pytest.approx(E.ece_of_bins(rows), abs=1e-12)
        assert 0 <= cal[f"ece_{when}"] <= 1
    assert cal["temperature"] > 0

    ab = m["abstention"]
    assert 0 <= ab["threshold"] <= 1 and 0 <= ab["test_coverage"] <= 1
    coverage = [r["coverage"] for r in ab["curve"]]
    assert all(a >= b for a, b in zip(coverage, coverage[1:], strict=False))


def test_run_test_accuracy_matches_the_saved_model(predictor, small_data_dir, tiny_run):
    """metrics.json describes the model that was saved (the best-validation epoch), not another."""
    rows = kept_test_rows(small_data_dir)
    preds = predictor.predict_batch([n for n, _ in rows], prior="training")  # metrics' "test" is the training prior
    correct = sum(p.top[0] == lab for p, (_, lab) in zip(preds, rows, strict=True))
    m = json.loads((tiny_run / "metrics.json").read_text())
    assert correct / len(rows) == pytest.approx(m["test"]["accuracy"], abs=1e-9)


def test_fit_temperature_on_member_logits_uses_the_model_combination():
    """With several members the temperature is fitted through the ensemble's own combination."""
    from name_origin.model import combine_members

    torch.manual_seed(0)
    true = torch.randn(3, 6000, 5) * 2  # (members, n, classes)
    y = torch.distributions.Categorical(logits=combine_members(true)).sample()
    # combine_members(true * 2, T=2) is exactly the distribution the labels were drawn from
    assert E.fit_temperature(true * 2, y) == pytest.approx(2.0, rel=0.1)


def test_served_priors_use_the_threshold_and_sets_the_report_measured(predictor, tiny_run):
    """The app fits each prior's threshold and conformal quantile from heldout.safetensors; the
    report measured the test file with its own fit: both must be the same numbers, or the card
    would describe sets the page does not show."""
    priors = json.loads((tiny_run / "metrics.json").read_text())["priors"]
    for name, reported in priors.items():
        setting = predictor.setting(name)
        assert setting.threshold == pytest.approx(reported["abstain_threshold"], abs=1e-6)
        assert setting.quantile == pytest.approx(reported["conformal_quantile"], abs=1e-6)
        assert 0 <= reported["set_coverage_at_prior"] <= 1 and reported["set_mean_size_at_prior"] >= 1
    assert priors["training"]["set_coverage_at_prior"] == priors["training"]["set_coverage"]  # weights of 1


def test_a_custom_prior_on_a_language_validation_lacks_is_unsure_not_an_error(tiny_run, tmp_path):
    """A prior on a language with no validation names (small data can hold none out) answers,
    unsure, with every language it allows in the set; before, the weighted fit crashed."""
    import shutil

    from safetensors.torch import load_file, save_file

    from name_origin.predict import HELDOUT_NAME

    shutil.copytree(tiny_run, tmp_path / "run")
    heldout = load_file(tmp_path / "run" / HELDOUT_NAME)
    keep = heldout["labels"] != 0  # drop the first language's names
    save_file({k: v[keep].contiguous() for k, v in heldout.items()}, tmp_path / "run" / HELDOUT_NAME)
    predictor = Predictor.from_dir(tmp_path / "run")
    first, second = predictor.labels[:2]
    answer = predictor.predict("Nakamura", {first: 1, second: 1})
    assert answer.abstain and set(answer.prediction_set) == {first, second}
    assert predictor.predict("Nakamura", {second: 1}).prediction_set == (second,)  # a checked prior still works


def test_weighted_expected_calibration_error_hand_computed():
    """Two names at confidence 0.8 in one bin, one right: 0.3 as they are; weighted 3:1 toward the
    right one, accuracy 0.75 and the error 0.05 (names weighted to a prior)."""
    probs, y = torch.tensor([[0.8, 0.2], [0.8, 0.2]]), torch.tensor([0, 1])
    assert E.expected_calibration_error(probs, y) == pytest.approx(0.3)
    assert E.expected_calibration_error(probs, y, weights=torch.tensor([3.0, 1.0])) == pytest.approx(0.05)
    rows = E.reliability_bins(probs, y, weights=torch.tensor([3.0, 1.0]))
    assert sum(r["count"] for r in rows) == 2 and sum(r["weight"] for r in rows) == 4
