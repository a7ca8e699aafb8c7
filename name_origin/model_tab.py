"""The Model tab's texts without the UI: which model is served, and its scores beside the anchors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from name_origin.calibration import DEFAULT_PRIOR
from name_origin.views import md_escape, pct

if TYPE_CHECKING:
    from name_origin.hub import ResolvedModel


SELECTION = {"val_loss": "lowest validation loss", "val_accuracy": "highest validation accuracy"}  # select_on


def quality_table(metrics: dict) -> str:
    """Markdown table: this model's test scores beside the reference anchors of metrics.json."""
    t, unseen = metrics["test"], metrics.get("test_unseen")
    rows = ["| model | test accuracy | macro-F1 | top-3 | names unseen in train |", "|---|---|---|---|---|"]
    rows.append(f"| **this model** | **{pct(t['accuracy'], 2)}** | **{t['macro_f1']:.3f}** | "
                f"{pct(t['top3_accuracy'], 2)} | {pct(unseen['accuracy'], 2) if unseen else '—'} |")  # fmt: skip
    anchors = {k: a for k, a in metrics.get("anchors", {}).items() if "picked on test" in k or "logistic" in k}
    rows += [f"| {k} | {pct(a['accuracy'], 2)} | {a['macro_f1']:.3f} | — | — |" for k, a in anchors.items()]
    return "\n".join(rows)


def served_text(resolved: ResolvedModel, runtime: str = "") -> str:
    """Markdown: which model is served (source, repo or folder, revision), what computes its logits
    (Predictor.runtime) and why any other source was passed over. The bundled model is named by
    its place in this repository: the server's own paths are nobody's business."""
    if resolved.source == "bundled":
        what = "the bundled model (`model/` in this repository)"
    else:
        what = f"the {resolved.source} model: {md_escape(resolved.repo_id or resolved.path.name)}"
    what += f" at revision `{resolved.revision}`" if resolved.revision else ""
    ran = f" Its logits come from {md_escape(runtime)}." if runtime else ""
    return f"**Serving** {what}.{ran}" + "".join(f"\n- {md_escape(n)}" for n in resolved.notes)


MODEL_TAB_KEYS = {
    "test": ("accuracy", "macro_f1", "top3_accuracy", "per_class", "confusion"),
    "calibration": ("temperature", "bins", "ece_before", "ece_after"),
    "abstention": ("threshold", "test_coverage", "test_accuracy_answered"),
}


def readable_metrics(metrics: dict | None) -> dict | None:
    """metrics.json when it holds every key the Model tab reads, else None (the tab then says so)."""
    try:
        whole = {"best_epoch", "epochs_run", "history"} <= metrics.keys()
        ok = whole and all(set(keys) <= metrics[part].keys() for part, keys in MODEL_TAB_KEYS.items())
    except (AttributeError, KeyError, TypeError):
        return None
    return metrics if ok else None


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def external_groups(external: dict | None) -> dict[str, list[dict]]:
    """The external lists, Latin-script and native-script apart (the ASCII copies count in neither)."""
    lists = (external or {}).get("lists", [])
    groups = {"Latin-script": [r for r in lists if r["script"] == "Latin"],
              "native-script": [r for r in lists if r["script"] not in ("Latin", "Latin (ASCII)")]}  # fmt: skip
    return {kind: group for kind, group in groups.items() if group}


def ece(value: float | None) -> str:
    """An expected calibration error for a table cell ("—" when unknown)."""
    return "—" if value is None else f"{value:.3f}"


def right(accuracy: float | None) -> str:
    """ ", 91.9% of them right" for a table cell of answered names ("" when unknown)."""
    return "" if accuracy is None else f", {pct(accuracy)} of them right"


def prior_table(metrics: dict, external: dict | None) -> str:
    """Markdown: the test file and the external name lists (bench/external_eval.py), under each prior:
    top-1 accuracy, macro-F1, ECE and the share answered without "unsure" (test), prediction-set
    coverage and mean size. External lists count as the mean of their per-list scores,
    Latin-script and native-script apart. Under a prior
    other than the training one, the test file also counts with its names weighted so their
    languages follow that prior: the population its prediction sets promise coverage for."""
    rows = ["| data | prior | top-1 accuracy | macro-F1 | ECE | answered (not unsure) | prediction-set coverage "
            "| mean set size |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    test_rows = sum(r["support"] for r in metrics["test"]["per_class"].values())
    priors = metrics.get("priors", {})
    for prior, t in sorted(priors.items(), key=lambda kv: kv[0] != DEFAULT_PRIOR):  # the served prior first
        answered = (
            f"{pct(t['test_answered'])} (top ≥ {t['abstain_threshold']:.3f}){right(t.get('test_accuracy_answered'))}"
        )
        rows.append(f"| test file ({test_rows:,} rows) | {prior} | {pct(t['test_accuracy'])} | "
                    f"{t['test_macro_f1']:.3f} | {ece(t['test_ece'])} | {answered} | {pct(t['set_coverage'])} | "
                    f"{t['set_mean_size']:.2f} |")  # fmt: skip
        if prior != "training" and "set_coverage_at_prior" in t:  # the population this prior's sets promise
            rows.append(f"| test file, languages weighted to the prior | {prior} | "
                        f"{pct(t['test_accuracy_at_prior'])} | — | {ece(t.get('test_ece_at_prior'))} | "
                        f"{pct(t['test_answered_at_prior'])}{right(t.get('test_accuracy_answered_at_prior'))} | "
                        f"{pct(t['set_coverage_at_prior'])} | {t['set_mean_size_at_prior']:.2f} |")  # fmt: skip
    for kind, group in external_groups(external).items():
        where = f"external {kind} lists ({len(group)})"
        for prior in sorted(group[0]["priors"], key=lambda p: p != DEFAULT_PRIOR):
            top1, cov, size = (
                _mean(r["priors"][prior][k] for r in group) for k in ("top1", "set_coverage", "set_size")
            )
            rows.append(f"| {where} | {prior} | {pct(top1)} | — | — | — | {pct(cov)} | {size:.2f} |")
        baseline = _mean(r["baseline_top1"] for r in group)
        rows.append(f"| {where} | n-gram baseline | {pct(baseline)} | — | — | — | — | — |")
    return "\n".join(rows)


def external_table(external: dict | None) -> str:
    """Markdown: per external list (one language each), top-1 under each prior, top-2 and set coverage
    under the default prior, and the n-gram baseline: where the model is weak on real surnames."""
    lists = (external or {}).get("lists", [])
    if not lists:
        return "*No external evaluation in this model folder (run `python bench/external_eval.py --write`).*"
    priors = sorted(lists[0]["priors"], key=lambda p: p != DEFAULT_PRIOR)
    head = " | ".join(f"top-1 ({p})" for p in priors)
    rows = [f"| list | language | script | names | {head} | top-2 ({DEFAULT_PRIOR}) | set coverage "
            f"({DEFAULT_PRIOR}) | n-gram baseline |", "|---" * (7 + len(priors)) + "|"]  # fmt: skip
    for r in lists:
        default = r["priors"][DEFAULT_PRIOR]
        cells = " | ".join(pct(r["priors"][p]["top1"]) for p in priors)
        tail = f"{pct(default['top2'])} | {pct(default['set_coverage'])} | {pct(r['baseline_top1'])}"
        rows.append(f"| {r['list']} | {r['language']} | {r['script']} | {r['names']} | {cells} | {tail} |")
    return "\n".join(rows)


def read_external(run_dir: Path) -> dict | None:
    """external.json of a model folder (bench/external_eval.py --write), or None when missing or unreadable."""
    try:
        data = json.loads((Path(run_dir) / "external.json").read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("lists"), list) else None
    except (OSError, ValueError):
        return None
