"""After training: calibrate on validation, evaluate the chosen model on test, write the run folder.

Run folder: model.safetensors, config.json, metrics.json, metrics.csv, per_class.csv, coverage.csv,
accuracy_curve.png, reliability.png, confusion.png, coverage.png, evidence.safetensors,
heldout.safetensors, README.md, model.onnx (the same weights for ONNX Runtime).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from name_origin import calibration as C
from name_origin import evidence
from name_origin.model import NameGRU, combine_members
from name_origin.predict import HELDOUT_NAME
from name_origin.runtime import ONNX_NAME
from trainer import evaluate as E
from trainer import plots
from trainer.card import render_card
from trainer.checkpoint import RESUME_DIR, atomic_save_tensors, atomic_write_json, atomic_write_text
from trainer.config import TrainConfig, to_dict
from trainer.data import Dataset, encode_split, label_mass
from trainer.train import TrainResult, class_weights

log = logging.getLogger(__name__)

ANCHORS = {  # measured on this split (shared/ANCHORS.md): name -> (accuracy, macro-F1)
    "always Russian": (0.468, 0.035),
    "course script as written (1 batch/epoch)": (0.743, 0.26),
    "course BiGRU, loop fixed, epoch picked on test": (0.8506, 0.55),
    "char 1-4-gram TF-IDF + logistic regression": (0.852, 0.547),
}


def mean_or_none(mask: torch.Tensor) -> float | None:
    """Share of True, or None for an empty selection (strict JSON has no NaN)."""
    return mask.double().mean().item() if len(mask) else None


def round_to_half(model: NameGRU) -> NameGRU:
    """Round the weights to float16 precision (kept as float32), as they will be stored."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def label_prior(ds: Dataset, tcfg: TrainConfig) -> torch.Tensor:
    """(classes,) the prior the model's probabilities carry: each class's training mass (rows, or
    name shares with targets "names") times its loss weight, normalised."""
    mass = torch.tensor(label_mass(ds.train, len(ds.labels), tcfg.targets), dtype=torch.float64)
    weight = class_weights(mass.tolist(), tcfg.class_weight_power)
    prior = mass * (weight.double() if weight is not None else 1.0)
    return (prior / prior.sum()).float()


def prior_report(val: tuple, test: tuple, labels: tuple[str, ...], training: torch.Tensor, abstain_target: float):
    """{prior name: evaluate.prior_metrics} for every named prior; val and test are (probs, labels)
    under the training prior."""
    return {
        target[0]: E.prior_metrics(val, test, training, target, abstain_target)
        for target in (C.resolve_prior(name, labels, training) for name in C.PRIOR_CHOICES)
    }


def evaluate_model(model: NameGRU, ds: Dataset, tcfg: TrainConfig, seen: evidence.Evidence) -> dict:
    """Calibration, abstention, prediction sets and test metrics for the chosen model (on CPU, as it
    is served), under the training prior and every other named prior; `heldout` is validation's
    calibrated probabilities and labels, shipped so the app can fit any prior's threshold and set."""
    cpu, abstain_target = torch.device("cpu"), tcfg.abstain_target
    val, test = encode_split(ds.val, ds.encoder, cpu), encode_split(ds.test, ds.encoder, cpu)
    val_members, test_members = E.predict_member_logits(model, val), E.predict_member_logits(model, test)
    temperature = E.fit_temperature(val_members, val.y.cpu())
    val_logits, test_logits = combine_members(val_members, temperature), combine_members(test_members, temperature)
    val_probs, test_probs = val_logits.softmax(1), test_logits.softmax(1)  # calibrated, as served
    test_probs_raw = combine_members(test_members).softmax(1)
    unseen = ~seen.seen_mask(ds.test.names)
    test_metrics = E.classification_metrics(test_logits, test.y, ds.labels)
    val_acc, val_f1 = E.quick_metrics(val_logits, val.y, len(ds.labels))
    missing = [ds.labels[c] for c, n in enumerate(torch.bincount(val.y.cpu(), minlength=len(ds.labels))) if n == 0]
    if missing:  # calibration.fit_prior: nothing to check a prior that weighs them on
        log.warning("validation holds no name of %s: under a prior that weighs them (equal), every answer is "
                    "unsure and every set holds all languages; more data or a larger --val-fraction fixes it",
                    ", ".join(missing))  # fmt: skip
    unseen_acc = mean_or_none((test_logits.argmax(1) == test.y.cpu())[unseen])
    bins_before, bins_after = E.reliability_bins(test_probs_raw, test.y), E.reliability_bins(test_probs, test.y)
    training = label_prior(ds, tcfg)
    priors = prior_report((val_probs, val.y), (test_probs, test.y), ds.labels, training, abstain_target)
    threshold = priors["training"]["abstain_threshold"]  # fitted once, in prior_metrics
    kept = test_probs.max(1).values >= threshold
    return {
        "heldout": {"probs": val_probs.float(), "labels": val.y.cpu()},
        "label_prior": dict(zip(ds.labels, training.tolist(), strict=True)),
        "priors": priors,
        "test": test_metrics,
        "val": {"accuracy": val_acc, "macro_f1": val_f1},
        "test_unseen": {"rows": int(unseen.sum()), "accuracy": unseen_acc},
        "calibration": {
            "temperature": temperature,
            "ece_before": E.ece_of_bins(bins_before),
            "ece_after": E.ece_of_bins(bins_after),
            "bins": len(bins_after),
            "reliability_before": bins_before,
            "reliability_after": bins_after,
        },
        "abstention": {
            "threshold": threshold,
            "target_val_accuracy": abstain_target,
            "test_coverage": kept.double().mean().item(),
            "test_accuracy_answered": mean_or_none((test_probs.argmax(1) == test.y.cpu())[kept]),
            "curve": E.coverage_curve(test_probs, test.y),
        },
    }


def write_onnx(model: NameGRU, run_dir: Path) -> bool:
    """model.onnx for the stored weights; False, logged with its traceback and the command that
    retries it, when the export fails (the run stays whole: PyTorch then serves it)."""
    from trainer.export import export_onnx  # torch.onnx and onnxscript load only when exporting

    try:
        export_onnx(model, run_dir)
    except Exception:  # noqa: BLE001 - an export bug must not lose a finished run
        log.exception("model.onnx was not written (the app serves this run with PyTorch); retry with "
                      "python -m trainer export %s", run_dir)  # fmt: skip
        return False
    return True


def rows_to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_run(
    run_dir: Path, result: TrainResult, ds: Dataset, tcfg: TrainConfig, template: Path, onnx: bool = True
) -> dict:
    """Write every artifact into run_dir (each atomically; weights via a temp folder + rename),
    with `onnx` also model.onnx (trainer.export); a failed export is logged and the run kept."""
    run_dir = Path(run_dir)
    model = round_to_half(result.model.to("cpu"))  # evaluate exactly the weights that are stored
    seen_table = evidence.build(ds.train.names + ds.val.names, ds.train.labels + ds.val.labels)  # the training file
    ev = evaluate_model(model, ds, tcfg, evidence.Evidence(seen_table))
    heldout = ev.pop("heldout")
    best = result.history[result.best_epoch - 1]
    metrics = {
        "best_epoch": result.best_epoch,
        "selected_on": tcfg.select_on,
        "epochs_run": len(result.history),
        "seconds_total": sum(h["seconds"] for h in result.history),
        "history": result.history,
        "anchors": {k: {"accuracy": a, "macro_f1": f} for k, (a, f) in ANCHORS.items()},
        "best_epoch_row": best,
        **ev,
    }
    config = {
        **to_dict(model.config),
        "train": to_dict(tcfg),
        "data": {"sha256": ds.checksums, "load_report": {k: dataclasses.asdict(r) for k, r in ds.reports.items()}},
        "calibration": {
            "temperature": ev["calibration"]["temperature"],
            "abstain_threshold": ev["abstention"]["threshold"],
        },
        "label_prior": ev["label_prior"],
    }
    with tempfile.TemporaryDirectory(dir=run_dir) as tmp:
        model.half().save_pretrained(tmp, config=config)  # float16 on disk: half the size, same predictions
        model.float()
        shutil.move(Path(tmp) / "config.json", run_dir / ".config.json.tmp")
        shutil.move(Path(tmp) / "model.safetensors", run_dir / ".model.safetensors.tmp")
    os.chmod(run_dir / ".model.safetensors.tmp", 0o644)  # safetensors writes 0600; a run folder is shared
    (run_dir / ONNX_NAME).unlink(missing_ok=True)  # an earlier run's export must not outlive its weights
    # config first, weights last: a folder with new weights always has their config
    (run_dir / ".config.json.tmp").replace(run_dir / "config.json")
    (run_dir / ".model.safetensors.tmp").replace(run_dir / "model.safetensors")
    if onnx:
        write_onnx(model, run_dir)
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_text(run_dir / "metrics.csv", rows_to_csv(result.history))
    per_class = [{"language": k, **v} for k, v in ev["test"]["per_class"].items()]
    atomic_write_text(run_dir / "per_class.csv", rows_to_csv(per_class))
    atomic_write_text(run_dir / "coverage.csv", rows_to_csv(ev["abstention"]["curve"]))
    atomic_save_tensors(run_dir / evidence.EVIDENCE_NAME, seen_table, metadata=evidence.FORMAT)
    atomic_save_tensors(run_dir / HELDOUT_NAME, heldout, metadata={"split": "validation", "prior": "training"})
    plots.save_all(run_dir, metrics, ds.labels)
    atomic_write_text(run_dir / "README.md", render_card(template, config, metrics))
    shutil.rmtree(run_dir / RESUME_DIR, ignore_errors=True)
    return metrics
