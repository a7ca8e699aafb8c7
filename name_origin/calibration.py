"""Priors, abstention and prediction sets on top of the model's calibrated probabilities.

- Prior shift (Saerens et al. 2002, "Adjusting the outputs of a classifier to new a priori
  probabilities"): a classifier trained under class prior pi gives p(c|x); under another prior
  pi' the Bayes posterior is p'(c|x) ∝ p(c|x) · pi'(c) / pi(c). With pi' uniform this is post-hoc
  logit adjustment (Menon et al. 2021, "Long-tail learning via logit adjustment").
- Prediction sets: split conformal prediction with the LAC score 1 - p(y|x) (Sadinle et al. 2019;
  Angelopoulos & Bates 2021, "A Gentle Introduction to Conformal Prediction", section 1): with
  n held-out scores, the ceil((n+1)(1-alpha))/n empirical quantile q gives sets
  {c : p(c|x) >= 1 - q} that contain the true label with probability >= 1 - alpha on exchangeable
  data. Held-out = the validation split, never the test file.
- Under another prior pi' the held-out names are reweighted to it, w(y) = pi'(y) / f(y) with f the
  held-out label frequencies: weighted split conformal (Tibshirani et al. 2019, "Conformal
  prediction under covariate shift"; for label shift, Podkopaev & Ramdas 2021, "Distribution-free
  uncertainty quantification for classification under label shift"), the new point's weight taken
  as the largest, which can only raise coverage. So "90% of such sets contain the right language"
  holds on average over names whose languages follow the prior asked for (equal: every language
  counted alike), not for each language. A prior on a language with no held-out names cannot be
  checked: every allowed language stays in the set and every answer is unsure (fit_prior).
- Abstention: the smallest confidence above which answered held-out names reach a target accuracy
  (weighted the same way).

Everything works on (n, classes) probability tensors whose rows sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

PRIOR_CHOICES = ("training", "equal")  # the named priors; the API also takes a {language: weight} mapping
DEFAULT_PRIOR = "equal"  # chosen on the external name lists (bench/external_eval.py), not on the test file
COVERAGE = 0.9  # nominal coverage of the prediction sets


class PriorError(ValueError):
    """A prior that cannot be used; the message is safe to show to a user."""


def resolve_prior(prior: str | Mapping[str, float] | None, labels: tuple[str, ...], training: torch.Tensor):
    """(name, (classes,) prior summing to 1) for "training", "equal" or a {language: weight} mapping.

    None means DEFAULT_PRIOR. Languages missing from a mapping get weight 0; at least one weight
    must be positive. Names and languages are read without regard to case. Raises PriorError for an
    unknown name, an unknown or repeated language or a negative / non-finite weight."""
    if prior is None:
        prior = DEFAULT_PRIOR
    if isinstance(prior, str):
        prior = prior.strip().lower()  # "Equal" as "equal"
    if prior == "training":
        return "training", training / training.sum()
    if prior == "equal":
        return "equal", torch.full((len(labels),), 1.0 / len(labels))
    if isinstance(prior, str) or not isinstance(prior, Mapping):
        raise PriorError(f"prior must be one of {', '.join(PRIOR_CHOICES)} or a mapping of language to weight.")
    by_name = {label.lower(): label for label in labels}  # "japanese" as "Japanese"
    unknown = sorted(str(k) for k in prior if str(k).strip().lower() not in by_name)
    if unknown:
        raise PriorError(f"unknown language(s) in prior: {', '.join(unknown)}; the languages: {', '.join(labels)}.")
    given: dict[str, object] = {}
    for key, weight in prior.items():
        label = by_name[str(key).strip().lower()]
        if label in given:
            raise PriorError(f"{label} is given twice in the prior.")
        given[label] = weight
    try:
        weights = torch.tensor([float(given.get(label, 0.0)) for label in labels], dtype=torch.float64)
    except (TypeError, ValueError):
        raise PriorError("prior weights must be numbers.") from None
    if not torch.isfinite(weights).all() or (weights < 0).any() or weights.max() <= 0:
        raise PriorError("prior weights must be finite, non-negative, and not all zero.")
    weights = weights / weights.max()  # first to at most 1: a sum of huge weights must not overflow
    return "custom", (weights / weights.sum()).float()


def shift_prior(probs: torch.Tensor, training: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(n, classes) probabilities under the training prior -> the same under `target` (Saerens et al.)."""
    weighted = probs * (target / training.clamp(min=1e-12))
    return weighted / weighted.sum(-1, keepdim=True).clamp(min=1e-30)


def importance_weights(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(n,) weights that make held-out labels y (n,) follow the `target` prior (classes,):
    w_i = target[y_i] / f[y_i], f the labels' own frequencies; they average 1 over the names when
    every language the prior weighs has names (fit_prior checks that)."""
    freq = torch.bincount(y, minlength=len(target)).double() / len(y)
    return target.double()[y] / freq[y]


def conformal_quantile(
    probs: torch.Tensor, y: torch.Tensor, coverage: float = COVERAGE, weights: torch.Tensor | None = None
) -> float:
    """The LAC threshold q from held-out (n, classes) probabilities and (n,) labels: sets
    {c : p_c >= 1 - q} cover the true label with probability >= coverage. 1.0 (every class)
    when n is too small for that coverage. With (n,) `weights` (importance_weights), the weighted
    quantile of the scores plus a point at +inf carrying the largest weight."""
    scores = 1.0 - probs[torch.arange(len(y)), y].double()
    n = len(scores)
    if n == 0:
        return 1.0
    if weights is None:
        rank = math.ceil((n + 1) * coverage)
        return 1.0 if rank > n else float(scores.sort().values[rank - 1])
    order = scores.argsort()
    w = weights.double()[order]
    mass = w.cumsum(0) / (w.sum() + w.max())  # the new point's share sits at +inf
    reached = (mass >= coverage - 1e-12).nonzero()
    return 1.0 if len(reached) == 0 else float(scores[order][reached[0, 0]])


def fit_prior(
    probs: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    abstain_target: float,
    coverage: float = COVERAGE,
) -> tuple[float, float]:
    """(abstention threshold, conformal quantile) from held-out (n, classes) probabilities already
    under the prior `target` (classes,) and their (n,) labels, the names weighted to that prior;
    target None: the training prior, names as they are. (1.0, 1.0) when the prior gives weight to a
    language no held-out name has: its names would carry infinite weight, so nothing can be
    promised (every answer unsure, every allowed language in the set)."""
    if len(y) == 0:
        return 1.0, 1.0
    weights = None
    if target is not None:
        if ((target > 0) & (torch.bincount(y, minlength=len(target)) == 0)).any():
            return 1.0, 1.0
        weights = importance_weights(y, target)
    return abstain_threshold(probs, y, abstain_target, weights), conformal_quantile(probs, y, coverage, weights)


def prediction_sets(probs: torch.Tensor, q: float) -> torch.Tensor:
    """(n, classes) bool: class c is in the set when p_c >= 1 - q and p_c > 0 (a prior of zero rules a
    language out even when q = 1); the top class always is, with every class tied with it to 1e-6
    (so a set is never empty nor an arbitrary half of a tie, which can only raise coverage)."""
    p = probs.double()  # in float64: rounding must not drop a class at q
    top = p.max(-1, keepdim=True).values
    return ((p >= 1.0 - q - 1e-9) | (p >= top - 1e-6)) & (probs > 0)


def abstain_threshold(
    probs: torch.Tensor, y: torch.Tensor, target_accuracy: float = 0.9, weights: torch.Tensor | None = None
) -> float:
    """Smallest confidence above which answered held-out names are >= target_accuracy right (1.0 if none);
    with (n,) `weights`, the weighted accuracy (importance_weights)."""
    conf, pred = probs.max(1)
    order = torch.argsort(conf, descending=True)
    w = torch.ones(len(y), dtype=torch.float64) if weights is None else weights.double()[order]
    conf, correct = conf[order], (pred == y)[order].double()
    running = (correct * w).cumsum(0) / w.cumsum(0)
    # `conf >= threshold` answers every name tied with the threshold, so only cut where the
    # confidence strictly drops (duplicate held-out names tie exactly).
    group_end = torch.ones_like(conf, dtype=torch.bool)
    group_end[:-1] = conf[:-1] != conf[1:]
    ok = ((running >= target_accuracy - 1e-12) & group_end).nonzero()
    return 1.0 if len(ok) == 0 else float(conf[ok[-1, 0]])
