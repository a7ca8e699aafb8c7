"""Priors and prediction sets against hand-computed cases and a synthetic problem with known answer."""

import pytest
import torch

from name_origin.calibration import (
    DEFAULT_PRIOR,
    PriorError,
    abstain_threshold,
    conformal_quantile,
    fit_prior,
    importance_weights,
    prediction_sets,
    resolve_prior,
    shift_prior,
)

LABELS = ("A", "B", "C")
TRAINING = torch.tensor([0.5, 0.25, 0.25])


def test_prior_shift_hand_computed():
    # p * pi'/pi = [0.6/0.5, 0.3/0.25, 0.1/0.25] / 3 ∝ [1.2, 1.2, 0.4] -> [3/7, 3/7, 1/7]
    probs = torch.tensor([[0.6, 0.3, 0.1]])
    _, equal = resolve_prior("equal", LABELS, TRAINING)
    assert torch.allclose(shift_prior(probs, TRAINING, equal), torch.tensor([[3 / 7, 3 / 7, 1 / 7]]))
    _, same = resolve_prior("training", LABELS, TRAINING)
    assert torch.allclose(shift_prior(probs, TRAINING, same), probs)  # the training prior changes nothing


def test_prior_mapping_is_normalised_and_missing_languages_get_zero():
    name, prior = resolve_prior({"A": 2, "B": 2}, LABELS, TRAINING)
    assert name == "custom" and prior.tolist() == [0.5, 0.5, 0.0]
    shifted = shift_prior(torch.tensor([[0.2, 0.2, 0.6]]), TRAINING, prior)
    assert shifted[0, 2] == 0 and torch.allclose(shifted.sum(), torch.tensor(1.0))


@pytest.mark.parametrize(
    "bad", ["uniform", {"Klingon": 1.0}, {"A": -1.0}, {"A": 0, "B": 0}, {"A": float("nan")}, {"A": "x"}, 3]
)
def test_bad_priors_are_clear_errors(bad):
    with pytest.raises(PriorError):
        resolve_prior(bad, LABELS, TRAINING)


def test_default_prior_is_the_documented_one():
    assert DEFAULT_PRIOR == "equal"  # README, model card and the page say so; chosen on the external lists
    assert resolve_prior(None, LABELS, TRAINING)[0] == DEFAULT_PRIOR  # an explicit null is the default


def test_huge_weights_do_not_overflow():
    name, prior = resolve_prior({"A": 1e308, "B": 1e308}, LABELS, TRAINING)
    assert prior.tolist() == [0.5, 0.5, 0.0]


def test_conformal_quantile_hand_computed():
    # scores 1 - p_y = 0.1, 0.2, ..., 0.9; n = 9, coverage 0.8: rank ceil(10 * 0.8) = 8 -> q = 0.8
    p_true = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    probs = torch.stack([p_true, 1 - p_true], dim=1)
    assert conformal_quantile(probs, torch.zeros(9, dtype=torch.long), 0.8) == pytest.approx(0.8)
    assert conformal_quantile(probs, torch.zeros(9, dtype=torch.long), 0.95) == 1.0  # n too small


def test_split_conformal_covers_a_synthetic_problem_with_known_answer():
    """Labels drawn from known posteriors: sets from 2,000 calibration draws cover 90% of 20,000 new ones."""
    gen = torch.Generator().manual_seed(0)

    def draw(n):
        probs = torch.softmax(torch.randn(n, 5, generator=gen) * 2, dim=1)
        return probs, torch.multinomial(probs, 1, generator=gen).squeeze(1)

    q = conformal_quantile(*draw(2000), coverage=0.9)
    probs, y = draw(20000)
    sets = prediction_sets(probs, q)
    coverage = sets[torch.arange(len(y)), y].double().mean().item()
    assert 0.885 <= coverage <= 0.93  # >= 1 - alpha up to sampling noise, and not trivially all classes
    assert sets.sum(1).double().mean() < 4.5


def test_prediction_set_is_never_empty_and_ordered_by_threshold():
    probs = torch.tensor([[0.5, 0.3, 0.2], [0.34, 0.33, 0.33]])
    sets = prediction_sets(probs, q=0.6)  # keep p >= 0.4
    assert sets.tolist() == [[True, False, False], [True, False, False]]  # second row: top class only
    ruled_out = prediction_sets(torch.tensor([[0.7, 0.3, 0.0]]), q=1.0)  # q = 1 keeps all, but not p = 0
    assert ruled_out.tolist() == [[True, True, False]]
    tie = prediction_sets(torch.tensor([[0.5, 0.5, 0.0], [0.45, 0.45, 0.1]]), q=0.2)  # keep p >= 0.8: only the top
    assert tie.tolist() == [[True, True, False], [True, True, False]]  # both halves of a tie, never one by index


def test_abstain_threshold_hand_computed():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    y = torch.tensor([0, 0, 1, 0])  # running accuracy by confidence: 1, 1, 2/3, 3/4
    assert abstain_threshold(probs, y, 0.9) == pytest.approx(0.8)
    assert abstain_threshold(probs, y, 0.7) == pytest.approx(0.6)
    assert abstain_threshold(probs, torch.tensor([1, 1, 0, 1]), 0.9) == 1.0  # never accurate enough


def test_importance_weights_hand_computed():
    # labels 0,0,0,1: frequencies 3/4, 1/4; to the prior (1/2, 1/2): 2/3 for each 0, 2 for the 1
    w = importance_weights(torch.tensor([0, 0, 0, 1]), torch.tensor([0.5, 0.5]))
    assert w.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 2.0])
    assert w.mean().item() == pytest.approx(1.0)


def test_weighted_conformal_quantile_hand_computed():
    # scores 0.1..0.9 (n = 9); equal weights give the plain rank ceil(10 * 0.8) = 8 -> 0.8
    p_true = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    probs, y = torch.stack([p_true, 1 - p_true], dim=1), torch.zeros(9, dtype=torch.long)
    assert conformal_quantile(probs, y, 0.8, torch.ones(9)) == pytest.approx(0.8)
    # weight 5 on the score 0.9: total 8 + 5 + 5 (the new point, largest weight) = 18;
    # cumulative shares 1/18 .. 8/18 before it, 13/18 with it: 0.7 needs the 0.9 -> q = 0.9
    weights = torch.ones(9)
    weights[8] = 5
    assert conformal_quantile(probs, y, 0.7, weights) == pytest.approx(0.9)
    assert conformal_quantile(probs, y, 0.4, weights) == pytest.approx(0.8)  # 8/18 = 0.44 >= 0.4
    assert conformal_quantile(probs, y, 0.75, weights) == 1.0  # 13/18 = 0.72: only +inf reaches it


def test_weighted_abstain_threshold_hand_computed():
    probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0, 0])  # wrong at 0.8
    assert abstain_threshold(probs, y, 0.7) == pytest.approx(0.6)  # plain: 1, 1/2, 2/3, 3/4
    # weight 3 on the name at 0.9: running 1, 3/4, 4/5, 5/6
    assert abstain_threshold(probs, y, 0.7, torch.tensor([3.0, 1, 1, 1])) == pytest.approx(0.6)
    assert abstain_threshold(probs, y, 0.8, torch.tensor([3.0, 1, 1, 1])) == pytest.approx(0.6)
    assert abstain_threshold(probs, y, 0.8) == pytest.approx(0.9)  # plain: only the first reaches 0.8


def test_weighted_conformal_covers_under_label_shift_where_plain_does_not():
    """A known problem: x ~ N(mu_y, 1), one easy class (mu -4) at 90% of the calibration draws, two
    hard ones (mu 0 and 1) at 5%. Served under the equal prior, sets must cover 90% of new draws
    whose labels are equally likely: the weighted quantile does; the plain one, fitted mostly on
    the easy class, covers about 78%."""
    gen = torch.Generator().manual_seed(0)
    mu, training, equal = torch.tensor([-4.0, 0.0, 1.0]), torch.tensor([0.9, 0.05, 0.05]), torch.full((3,), 1 / 3)

    def draw(n, prior):  # (n, 3) posteriors under `prior`, (n,) labels
        y = torch.multinomial(prior, n, replacement=True, generator=gen)
        x = mu[y] + torch.randn(n, generator=gen)
        joint = torch.exp(-0.5 * (x[:, None] - mu[None]) ** 2) * prior
        return joint / joint.sum(1, keepdim=True), y

    probs, y = draw(4000, training)
    shifted = shift_prior(probs, training, equal)  # the exact posterior under the equal prior
    new_probs, new_y = draw(30000, equal)

    def coverage(q):
        return prediction_sets(new_probs, q)[torch.arange(len(new_y)), new_y].double().mean().item()

    assert 0.885 <= coverage(conformal_quantile(shifted, y, 0.9, importance_weights(y, equal))) <= 0.93
    assert coverage(conformal_quantile(shifted, y, 0.9)) < 0.85


def test_a_prior_on_a_language_without_held_out_names_promises_nothing():
    """Its names would weigh pi'/0: no threshold or quantile can be checked, so every answer is
    unsure and every allowed language stays in the set; no held-out names at all, the same."""
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.6, 0.4, 0.0]])
    y = torch.tensor([0, 1, 0])  # no name of language 2
    assert fit_prior(probs, y, torch.tensor([0.4, 0.4, 0.2]), 0.9) == (1.0, 1.0)
    assert fit_prior(probs, y, torch.tensor([0.5, 0.5, 0.0]), 0.0) != (1.0, 1.0)  # prior 0 there: fine
    assert fit_prior(probs[:0], y[:0], None, 0.9) == (1.0, 1.0)
    assert conformal_quantile(probs[:0], y[:0], 0.9, torch.ones(0)) == 1.0


def test_prior_names_and_languages_ignore_case():
    assert resolve_prior(" Equal ", LABELS, TRAINING)[0] == "equal"
    assert resolve_prior("TRAINING", LABELS, TRAINING)[0] == "training"
    assert resolve_prior({"a": 1, "B": 1}, LABELS, TRAINING)[1].tolist() == [0.5, 0.5, 0.0]
    with pytest.raises(PriorError, match="given twice"):
        resolve_prior({"a": 1, "A": 2}, LABELS, TRAINING)
    with pytest.raises(PriorError, match="the languages: A, B, C"):  # the error lists what is allowed
        resolve_prior({"Klingon": 1}, LABELS, TRAINING)
