"""What the app shows for a prediction, without the UI.

Pure functions behind app.py: user text made inert for Markdown, the single-name view, the JSON of
the API, the batch table and its CSV, and the Model tab's texts. No gradio here: app.py turns these
results into components and errors into gr.Error. InvalidNameError carries a message fit for users;
anything else is a bug, logged here or by the caller, and shown as GENERIC_ERROR.
"""

from __future__ import annotations

import csv
import html
import logging
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from name_origin.encoding import MAX_NAME_CHARS, InvalidNameError, normalize_name
from name_origin.predict import MAX_BATCH, Prediction, Predictor

if TYPE_CHECKING:
    from name_origin.hub import ResolvedModel

log = logging.getLogger(__name__)
TOP_K, UNSURE_K, SHOWN_ROWS, KEEP_CSVS = 5, 3, 1000, 50
GENERIC_ERROR = "Something went wrong on our side; it has been logged. Please try again."
HEADER_WORDS = {"name", "names", "surname", "surnames", "last name", "last_name", "lastname", "family name"}
BATCH_COLUMNS = ["name", "language", "confidence", "unsure"]
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_escape(text: str) -> str:
    """User text made inert for gr.Markdown: no HTML, no markdown formatting, one line."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def pct(p: float | None, digits: int = 1) -> str:
    return "n/a" if p is None else f"{100 * p:.{digits}f}%"


def usable(predictor: Predictor, raw: str | None) -> tuple[str, str]:
    """(raw with the characters the model never saw in training turned into spaces, those characters).

    Unseen characters (digits, <, /, emoji) would be read through an untrained embedding and give
    confident nonsense, so they are dropped and reported. Raw stays as it is when nothing is left
    to classify or it is too long: the predictor's own message then explains why."""
    text, known = "" if raw is None else str(raw), predictor.encoder.alphabet
    if text.isascii() and all(c in known or c.isspace() for c in text.lower()):
        return text, ""
    keep, drop = [], []
    for c in text:
        ok = c.isspace() or all(k in known for k in normalize_name(c).text)
        keep.append(c if ok else " ")  # a word break, so fragments are not glued into a new name
        if not ok:
            drop.append(c)
    kept = "".join(keep)
    if len(text.strip()) > MAX_NAME_CHARS or not any(c.isalpha() for c in normalize_name(kept).text):
        return text, ""
    return kept, "".join(dict.fromkeys(drop))


@dataclass
class View:
    """What the single-name tab shows. bars=None means no prediction (an error message instead)."""

    bars: dict[str, float] | None
    status: str
    letters: list[tuple[str, float]] | None = None
    unsure: bool = False
    target: str | None = None  # the language the letters are scored against


def status_text(predictor: Predictor, pred: Prediction, dropped: str) -> str:
    """The Markdown under the name: the answer (or "Unsure"), then what was changed and what was seen."""
    label, p = pred.top
    if pred.abstain:
        top3 = ", ".join(f"{k} {pct(v)}" for k, v in list(pred.probs.items())[:UNSURE_K])
        lines = [f"**Unsure**: no language reaches the model's threshold of {pct(predictor.threshold)}. Top 3: {top3}."]
    else:
        lines = [f"Most likely **{label}** ({pct(p)})."]
    if pred.normalized.transliterated:
        lines.append(f"Transliterated: {md_escape(pred.name)} → {md_escape(pred.normalized.text)}")
    if dropped:
        lines.append(f"Ignored characters the model never saw in training: {md_escape(' '.join(dropped))}")
    if pred.evidence:
        lines.append("Seen in training as " + ", ".join(f"{k} ×{n}" for k, n in pred.evidence.items()) + ".")
    else:
        lines.append("Not in the training data: the guess comes from its letters alone.")
    return "\n\n".join(lines)


def scaled(letters: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Occlusion scores scaled to [-1, 1] for gr.HighlightedText's score colours."""
    peak = max((abs(s) for _, s in letters), default=0.0) or 1.0
    return [(c, round(s / peak, 3)) for c, s in letters]


def analyse(predictor: Predictor, raw: str | None, show_all: bool = False, explain: bool = True) -> View:
    """One name -> View; never raises, never shows bars for input it cannot read."""
    try:
        name, dropped = usable(predictor, raw)
        pred = predictor.predict(name)
        letters = scaled(predictor.explain(name, pred.top[0])) if explain else None
    except InvalidNameError as e:
        return View(None, f"⚠️ {md_escape(str(e))}")
    except Exception:
        log.exception("prediction failed for a name of %d characters", len(str(raw)))
        return View(None, f"⚠️ {GENERIC_ERROR}")
    k = len(pred.probs) if show_all else UNSURE_K if pred.abstain else TOP_K
    bars = dict(list(pred.probs.items())[:k])
    return View(bars, status_text(predictor, pred, dropped), letters, pred.abstain, pred.top[0])


def prediction_json(name: str, pred: Prediction, dropped: str = "") -> dict:
    return {
        "name": name,
        "normalized": pred.normalized.text,
        "transliterated": pred.normalized.transliterated,
        "ignored_characters": dropped,
        "language": pred.top[0],
        "confidence": round(pred.top[1], 6),
        "unsure": pred.abstain,
        "top3": list(pred.probs)[:UNSURE_K],
        "probabilities": {k: round(v, 6) for k, v in pred.probs.items()},
        "seen_in_training": pred.evidence,
    }


def predict_json(predictor: Predictor, name: str | None) -> dict:
    """The /predict answer for one name; raises InvalidNameError for a name it cannot read."""
    cleaned, dropped = usable(predictor, name)
    return prediction_json(str(name).strip(), predictor.predict(cleaned), dropped)


def classify_many(predictor: Predictor, names: list[str]) -> list[tuple[str, Prediction | InvalidNameError, str]]:
    """(name as given, its prediction or error, dropped characters) per name, in order."""
    cleaned = [usable(predictor, n) for n in names]
    results = predictor.predict_batch([c for c, _ in cleaned])
    return [(n.strip(), r, d) for n, r, (_, d) in zip(names, results, cleaned, strict=True)]


def predict_batch_json(predictor: Predictor, names: list[str] | str | None) -> list[dict]:
    """The /predict_batch answer: one JSON object per input, {"name", "error"} for unreadable ones.
    Raises InvalidNameError over MAX_BATCH names."""
    names = names.splitlines() if isinstance(names, str) else ["" if n is None else str(n) for n in names or []]
    if len(names) > MAX_BATCH:
        raise InvalidNameError(f"{len(names):,} names: the limit is {MAX_BATCH:,} per batch.")
    rows = classify_many(predictor, names)
    return [prediction_json(n, r, d) if isinstance(r, Prediction) else {"name": n, "error": str(r)} for n, r, d in rows]


def names_from_csv(path: str | Path) -> list[str]:
    """First column of a CSV (comma, semicolon or tab separated); a header row is dropped."""
    text = Path(path).read_bytes().decode("utf-8-sig", errors="replace").replace("\x00", "")
    lines = text.splitlines()
    delimiter = next((d for d in ",;\t" if lines and d in lines[0]), ",")
    try:
        names = [row[0].strip() for row in csv.reader(lines, delimiter=delimiter) if row and row[0].strip()]
    except csv.Error as e:
        raise InvalidNameError(f"That file could not be read as CSV ({e}).") from None
    return names[1:] if names and names[0].lower() in HEADER_WORDS else names


def batch_row(name: str, result: Prediction | InvalidNameError, dropped: str) -> dict:
    """One row of the batch table: the answer, notes on what was changed, every probability."""
    if not isinstance(result, Prediction):
        return {"name": name, "note": str(result)}
    notes = [f"transliterated → {result.normalized.text}"] * result.normalized.transliterated
    notes += [f"ignored {' '.join(dropped)}"] * bool(dropped)
    seen = ", ".join(f"{k} ×{n}" for k, n in result.evidence.items())
    top = {"language": result.top[0], "confidence": result.top[1], "unsure": result.abstain}
    return {"name": name, **top, "seen in training": seen, "note": "; ".join(notes), **result.probs}


def batch_frame(predictor: Predictor, names: list[str]) -> pd.DataFrame:
    columns = [*BATCH_COLUMNS, "seen in training", "note", *predictor.labels]
    rows = [batch_row(name, result, dropped) for name, result, dropped in classify_many(predictor, names)]
    return pd.DataFrame(rows, columns=columns).round(4)


def write_csv(frame: pd.DataFrame, out_dir: Path, keep: int = KEEP_CSVS) -> Path:
    """The full table as CSV; names that look like spreadsheet formulas get a leading quote.
    Only the newest `keep` CSVs of out_dir are kept."""
    safe = frame.assign(name=frame["name"].map(lambda s: "'" + s if s[:1] in ("=", "+", "-", "@", "\t") else s))
    for old in sorted(out_dir.glob("*.csv"), key=lambda f: f.stat().st_mtime)[:-keep]:
        old.unlink(missing_ok=True)
    path = out_dir / f"name-origin-{uuid.uuid4().hex[:8]}.csv"
    safe.to_csv(path, index=False)
    return path


def batch_names(text: str | None, file_path: str | None) -> list[str]:
    """The names of a batch request: the uploaded CSV's first column if any, else the non-blank lines."""
    if file_path:
        return names_from_csv(file_path)
    return [s.strip() for s in (text or "").splitlines() if s.strip()]


def batch_status(frame: pd.DataFrame, file_path: str | None, seconds: float, shown_rows: int) -> str:
    """The Markdown above the batch table: counts, time, and whether the table is cut."""
    bad, unsure = int(frame["language"].isna().sum()), int(frame["unsure"].eq(True).sum())
    source = f" from {md_escape(Path(file_path).name)}" if file_path else ""
    status = f"{len(frame):,} names{source} in {seconds:.2f} s: {len(frame) - bad:,} classified "
    status += f"({unsure:,} unsure), {bad:,} unreadable (see *note*)."
    if len(frame) > shown_rows:
        status += f" Showing the first {shown_rows:,} rows; the CSV holds all of them."
    return status


def run_batch(
    predictor: Predictor, text: str | None, file_path: str | None, out_dir: Path, shown_rows: int = SHOWN_ROWS
) -> tuple[pd.DataFrame, str | None, str]:
    """Batch tab: (table shown, CSV path, status). Never raises."""
    empty = pd.DataFrame(columns=BATCH_COLUMNS)
    try:
        names = batch_names(text, file_path)
        if not names:
            return empty, None, "⚠️ Paste surnames, one per line, or upload a CSV whose first column holds them."
        if len(names) > MAX_BATCH:
            return empty, None, f"⚠️ {len(names):,} names: the limit is {MAX_BATCH:,} per batch. Please split the list."
        start = time.perf_counter()
        frame = batch_frame(predictor, names)
        path = write_csv(frame, out_dir)
    except InvalidNameError as e:
        return empty, None, f"⚠️ {md_escape(str(e))}"
    except Exception:
        log.exception("batch failed")
        return empty, None, f"⚠️ {GENERIC_ERROR}"
    status = batch_status(frame, file_path, time.perf_counter() - start, shown_rows)
    return frame.head(shown_rows), str(path), status


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
    """Markdown: which model is served (source, repo or folder, revision) and why any other source was passed over."""
    what = md_escape(resolved.repo_id or str(resolved.path))
    what += f" at revision `{resolved.revision}`" if resolved.revision else ""
    return f"**Serving** the {resolved.source} model: {what}." + "".join(f"\n- {md_escape(n)}" for n in resolved.notes)


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
