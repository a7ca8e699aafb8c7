"""The Model tab's texts without the UI: which model is served, and its scores beside the anchors."""

from __future__ import annotations

from typing import TYPE_CHECKING

from name_origin.views import md_escape, pct

if TYPE_CHECKING:
    from name_origin.hub import ResolvedModel


def quality_table(metrics: dict) -> str:
    """Markdown table: this model's test scores beside the reference anchors of metrics.json."""
    t, unseen = metrics["test"], metrics.get("test_unseen")
    rows = ["| model | test accuracy | macro-F1 | top-3 | names unseen in train |", "|---|---|---|---|---|"]
    rows.append(f"| **this model** | **{pct(t['accuracy'], 2)}** | **{t['macro_f1']:.3f}** | "
                f"{pct(t['top3_accuracy'], 2)} | {pct(unseen['accuracy'], 2) if unseen else '—'} |")  # fmt: skip
    anchors = {k: a for k, a in metrics.get("anchors", {}).items() if "picked on test" in k or "logistic" in k}
    rows += [f"| {k} | {pct(a['accuracy'], 2)} | {a['macro_f1']:.3f} | — | — |" for k, a in anchors.items()]
    return "\n".join(rows)


def served_text(resolved: ResolvedModel) -> str:
    """Markdown: which model is served (source, repo or folder, revision) and why any other source was passed over.
    The bundled model is named by its place in this repository: the server's own paths are nobody's business."""
    if resolved.source == "bundled":
        what = "the bundled model (`model/` in this repository)"
    else:
        what = f"the {resolved.source} model: {md_escape(resolved.repo_id or str(resolved.path))}"
    what += f" at revision `{resolved.revision}`" if resolved.revision else ""
    return f"**Serving** {what}." + "".join(f"\n- {md_escape(n)}" for n in resolved.notes)


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
