"""Evaluation: batched inference, accuracy / macro-F1 / per-class metrics, calibration."""

from __future__ import annotations

import torch

from name_origin import calibration as C
from name_origin.model import combine_members
from trainer.data import Encoded

ECE_BINS = 15


@torch.no_grad()
def predict_member_logits(model: torch.nn.Module, data: Encoded, batch_size: int = 512) -> torch.Tensor:
    """(members, n, classes) logits in the data's own order; batches sorted by length to pack tightly.

    Each distinct name runs once (the test file's 6,700 rows hold 6,038 names). Batches of 512 keep
    a batch's GRU states in the CPU cache; larger batches were slower (docs/experiments.md)."""
    was_training = model.training
    model.eval()
    names, inverse, lengths = data.distinct  # (distinct, max_len), (n,), (distinct,)
    order = torch.argsort(lengths, descending=True, stable=True)
    out = torch.empty(len(model.members), len(names), model.config.num_classes)
    for idx in order.split(batch_size):
        batch_lengths = lengths[idx]
        x = names[idx.to(names.device), : int(batch_lengths.max())]
        out[:, idx] = model.member_logits(x, batch_lengths, sorted_desc=True).float().cpu()
    model.train(was_training)
    return out[:, inverse]


def predict_logits(model: torch.nn.Module, data: Encoded, temperature: float = 1.0) -> torch.Tensor:
    """(n, classes) log-probabilities of the model (members combined) in the data's own order."""
    return combine_members(predict_member_logits(model, data), temperature)


def confusion_matrix(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(true, predicted) counts."""
    return torch.bincount(y * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def f1_scores(cm: torch.Tensor) -> torch.Tensor:
    """Per-class F1 of a (true, predicted) confusion matrix: 2 TP / (predicted + true), the harmonic
    mean of precision and recall; 0 for a class neither present nor predicted (as scikit-learn's
    zero_division=0)."""
    cm = cm.double()
    return 2 * cm.diag() / (cm.sum(0) + cm.sum(1)).clamp(min=1)


def classification_metrics(logits: torch.Tensor, y: torch.Tensor, labels: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1, top-3 accuracy, per-class precision/recall/F1/support, confusion."""
    y = y.cpu()
    pred = logits.argmax(1)
    cm = confusion_matrix(pred, y, len(labels)).double()
    tp = cm.diag()
    precision = tp / cm.sum(0).clamp(min=1)
    recall = tp / cm.sum(1).clamp(min=1)
    f1 = f1_scores(cm)
    top3 = (logits.topk(min(3, logits.shape[1]), dim=1).indices == y[:, None]).any(1)
    return {
        "accuracy": (pred == y).double().mean().item(),
        "macro_f1": f1.mean().item(),
        "top3_accuracy": top3.double().mean().item(),
        "per_class": {
            lab: {
                "precision": precision[i].item(),
                "recall": recall[i].item(),
                "f1": f1[i].item(),
                "support": int(cm[i].sum().item()),
            }
            for i, lab in enumerate(labels)
        },
        "confusion": cm.long().tolist(),
    }


def quick_metrics(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[float, float]:
    """(accuracy, macro-F1) without the per-class detail, for per-epoch logging."""
    y = y.cpu()
    pred = logits.argmax(1)
    f1 = f1_scores(confusion_matrix(pred, y, num_classes))
    return (pred == y).double().mean().item(), f1.mean().item()


def expected_calibration_error(
    probs: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS, weights: torch.Tensor | None = None
) -> float:
    """Mean |accuracy - confidence| over the reliability bins, weighted by the share of names in each
    (with (n,) `weights`, of their weight: names weighted to a prior)."""
    return ece_of_bins(reliability_bins(probs, y, bins, weights))


def ece_of_bins(rows: list[dict]) -> float:
    """The expected calibration error of reliability_bins' rows."""
    mass = [r.get("weight", r["count"]) for r in rows]
    total = sum(mass)
    if total == 0:
        return 0.0
    return sum(m / total * abs(r["accuracy"] - r["confidence"]) for m, r in zip(mass, rows, strict=True) if m)


def reliability_bins(
    probs: torch.Tensor, y: torch.Tensor, bins: int = ECE_BINS, weights: torch.Tensor | None = None
) -> list[dict]:
    """Per-bin confidence, accuracy and count over `bins` equal-width bins (lo, hi] of the top
    probability: the reliability diagram, and what the expected calibration error is computed from.
    With (n,) `weights`, confidence and accuracy are weighted means and each row has its "weight"."""
    conf, pred = probs.max(1)
    correct = (pred == y.cpu()).double()
    w = torch.ones(len(conf), dtype=torch.float64) if weights is None else weights.double()
    edges = torch.linspace(0, 1, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi)
        n, mass = int(m.sum()), w[m].sum().item()
        row = {
            "lo": lo.item(),
            "hi": hi.item(),
            "count": n,
            "confidence": (conf[m].double() * w[m]).sum().item() / mass if mass else None,
            "accuracy": (correct[m] * w[m]).sum().item() / mass if mass else None,
        }
        rows.append(row if weights is None else {**row, "weight": mass})
    return rows


def fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """The softmax temperature minimising validation NLL (1-D search on log T; convex enough).

    logits: (n, classes), or (members, n, classes), combined as the model combines them."""
    member_logits = (logits if logits.dim() == 3 else logits[None]).detach()
    y = y.cpu()
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.nll_loss(combine_members(member_logits, log_t.exp()), y)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def coverage_curve(probs: torch.Tensor, y: torch.Tensor, points: int = 21) -> list[dict]:
    """Accuracy of the answered names and the share answered, for thresholds 0..1."""
    conf, pred = probs.max(1)
    correct = pred == y.cpu()
    rows = []
    for t in torch.linspace(0, 1, points).tolist():
        kept = conf >= t
        rows.append(
            {
                "threshold": t,
                "coverage": kept.double().mean().item(),
                "accuracy": correct[kept].double().mean().item() if kept.any() else None,
            }
        )
    return rows


def prior_metrics(
    val: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    training: torch.Tensor,
    target: tuple[str, torch.Tensor],
    abstain_target: float,
) -> dict:
    """Test scores when serving under the (name, prior) `target`: (probs, labels) of validation and
    test under the training prior are shifted to it; the abstention threshold and the conformal
    quantile come from validation weighted to the prior, as the app computes them. `*_at_prior`:
    the test names weighted so their languages follow the prior (the population its sets promise)."""
    name, prior = target
    (val_p, val_y), (test_p, test_y) = ((C.shift_prior(p, training, prior), y.cpu()) for p, y in (val, test))
    training_prior = name == "training"
    threshold, q = C.fit_prior(val_p, val_y, None if training_prior else prior, abstain_target)
    sets = C.prediction_sets(test_p, q)
    covered, size = sets[torch.arange(len(test_y)), test_y].double(), sets.sum(1).double()
    acc, f1 = quick_metrics(test_p.log(), test_y, test_p.shape[1])
    kept, correct = test_p.max(1).values >= threshold, (test_p.argmax(1) == test_y).double()
    w = torch.ones(len(test_y), dtype=torch.float64) if training_prior else C.importance_weights(test_y, prior)

    def at_prior(values: torch.Tensor, where: torch.Tensor | None = None) -> float | None:
        ww = w if where is None else w * where
        return ((values * ww).sum() / ww.sum()).item() if ww.sum() > 0 else None

    return {
        "test_accuracy": acc,
        "test_macro_f1": f1,
        "test_ece": expected_calibration_error(test_p, test_y),
        "abstain_threshold": threshold,
        "test_answered": kept.double().mean().item(),
        "conformal_quantile": q,
        "set_coverage": covered.mean().item(),
        "set_mean_size": size.mean().item(),
        "test_accuracy_answered": correct[kept].mean().item() if kept.any() else None,
        "test_accuracy_at_prior": at_prior(correct),
        "test_ece_at_prior": expected_calibration_error(test_p, test_y, weights=w),
        "test_answered_at_prior": at_prior(kept.double()),
        "test_accuracy_answered_at_prior": at_prior(correct, kept.double()),
        "set_coverage_at_prior": at_prior(covered),
        "set_mean_size_at_prior": at_prior(size),
    }
