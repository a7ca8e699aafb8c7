"""What the app shows for a prediction, without the UI.

Pure functions behind app.py: user text made inert for Markdown, the single-name view and the JSON
of the API (the Batch tab: name_origin.batch; the Model tab: name_origin.model_tab). No gradio here: app.py turns these
results into components and errors into gr.Error. InvalidNameError carries a message fit for users;
anything else is a bug, logged here or by the caller, and shown as GENERIC_ERROR.
"""

from __future__ import annotations

import html
import logging
import re
import unicodedata
from dataclasses import dataclass

from name_origin import clean
from name_origin.calibration import DEFAULT_PRIOR, PriorError
from name_origin.encoding import MAX_NAME_CHARS, InvalidNameError, normalize_name, read_chars
from name_origin.predict import Prediction, Predictor, Setting

log = logging.getLogger(__name__)
TOP_K, UNSURE_K = 5, 3  # bars shown for an answer, for an unsure one
NOT_TEXT = "A name must be text (a JSON string)."
GENERIC_ERROR = "Something went wrong on our side; it has been logged. Please try again."
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_escape(text: str) -> str:
    """User text made inert for gr.Markdown: no HTML, no markdown formatting, one line, and invisible
    format characters (bidi controls such as U+202E, which would reverse the page's own words) shown
    as their code points."""
    text = "".join(f"U+{ord(c):04X}" if unicodedata.category(c) == "Cf" else c for c in str(text))
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


def pct(p: float | None, digits: int = 1) -> str:
    return "n/a" if p is None else f"{100 * p:.{digits}f}%"


def usable(predictor: Predictor, raw: str | None) -> tuple[str, str]:
    """(raw with the characters the model never saw in training turned into spaces, the characters ignored).

    Unseen characters (digits, <, /, emoji) would be read through an untrained embedding and give
    confident nonsense, so they are dropped and reported. Any letter of any script is read (Иванов,
    김); stray punctuation at the edges ("Dubois,") is left for normalize_name to trim, and reported;
    commas inside ("Dubois, Marc") and invisible format characters stay for normalize_name. Raw
    stays as it is when nothing is left to classify or it is too long: the predictor's own message
    then explains why."""
    text, known = "" if raw is None else str(raw), predictor.encoder.alphabet
    core, edges = clean.trim(text)
    if text.isascii() and not edges and all(c in known or c.isspace() for c in text.lower()):
        return text, ""
    start = text.find(core) if core else len(text)
    end = start + len(core)
    keep, drop = [text[:start]], [c for c in text[:start] + text[end:] if not c.isspace()]
    for c in core:
        ok = c.isspace() or all(k in known or k.isspace() for k in read_chars(c))
        keep.append(c if ok else " ")  # a word break, so fragments are not glued into a new name
        if not ok:
            drop.append(c)
    keep.append(text[end:])
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


def set_text(pred: Prediction, coverage: float | None) -> str:
    """ "German or Dutch — 90% of such sets contain the right language", or "" without a set."""
    if not pred.prediction_set or coverage is None:
        return ""
    return f"{' or '.join(pred.prediction_set)} — {pct(coverage, 0)} of such sets contain the right language."


def status_text(predictor: Predictor, pred: Prediction, dropped: str, setting: Setting) -> str:
    """The Markdown under the name: the answer (or "Unsure"), its prediction set, then what was
    changed and what was seen."""
    label, p = pred.top
    if pred.abstain:
        top3 = ", ".join(f"{k} {pct(v)}" for k, v in list(pred.probs.items())[:UNSURE_K])
        lines = [f"**Unsure**: no language reaches the model's threshold of {pct(setting.threshold)}. Top 3: {top3}."]
    else:
        lines = [f"Most likely **{label}** ({pct(p)})."]
    if pred.prediction_set:
        lines.append(f"Prediction set: **{set_text(pred, predictor.coverage)}**")
    norm = pred.normalized
    if norm.transliterated:
        source = f", from {norm.script}" if norm.native else ""
        lines.append(f"Transliterated: {md_escape(pred.name)} → {md_escape(norm.text)}{md_escape(source)}")
    if pred.script:
        lines.append(md_escape(pred.script.text))
    lines += [md_escape(note) for note in norm.notes]
    if dropped:
        what = "punctuation around the name, or characters the model never saw in training"
        lines.append(f"Ignored characters: {md_escape(' '.join(dropped))} ({what})")
    if pred.evidence:
        seen = "Seen in training as " + ", ".join(f"{k} ×{n}" for k, n in pred.evidence.items())
        why = "" if label in pred.evidence else ": the answer weighs its letters and the prior, not these counts"
        lines.append(seen + why + ".")
    else:
        lines.append(
            "Not in the training data" + (": the guess comes from its letters alone." if pred.letters_used else ".")
        )
    return "\n\n".join(lines)


def scaled(letters: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Occlusion scores scaled to [-1, 1] for gr.HighlightedText's score colours."""
    peak = max((abs(s) for _, s in letters), default=0.0) or 1.0
    return [(c, round(s / peak, 3)) for c, s in letters]


def analyse(
    predictor: Predictor, raw: str | None, show_all: bool = False, explain: bool = True, prior=DEFAULT_PRIOR
) -> View:
    """One name -> View under `prior`; never raises, never shows bars for input it cannot read."""
    try:
        name, dropped = usable(predictor, raw)
        setting = predictor.setting(prior)
        pred = predictor.predict(name, prior)
        letters = scaled(predictor.explain(name, pred.top[0])) if explain and pred.letters_used else None
    except (InvalidNameError, PriorError) as e:
        return View(None, f"⚠️ {md_escape(str(e))}")
    except Exception:
        log.exception("prediction failed for a name of %d characters", len(str(raw)))
        return View(None, f"⚠️ {GENERIC_ERROR}")
    k = len(pred.probs) if show_all else UNSURE_K if pred.abstain else TOP_K
    bars = dict(list(pred.probs.items())[:k])
    return View(bars, status_text(predictor, pred, dropped, setting), letters, pred.abstain, pred.top[0])


def prior_json(predictor: Predictor, prior) -> dict:
    """The prior an answer used: its name and its weight per language."""
    setting = predictor.setting(prior)
    return {"name": setting.name, "weights": dict(zip(predictor.labels, map(float, setting.prior), strict=True))}


def prediction_json(name: str, pred: Prediction, dropped: str = "", coverage: float | None = None) -> dict:
    return {
        "name": name,
        "normalized": pred.normalized.text,
        "transliterated": pred.normalized.transliterated,
        "script": pred.normalized.script,  # of the letters read: "Latin", "Cyrillic", "Han and Hiragana"
        "ignored_characters": dropped,
        "notes": list(pred.normalized.notes),
        "language": pred.top[0],
        "confidence": round(pred.top[1], 6),
        "unsure": pred.abstain,
        "prediction_set": list(pred.prediction_set),  # conformal: contains the right language at `coverage`
        "coverage": coverage if pred.prediction_set else None,
        "top3": list(pred.probs)[:UNSURE_K],
        "probabilities": {k: round(v, 6) for k, v in pred.probs.items()},  # under the prior and the script prior
        "script_languages": list(pred.script.languages) if pred.script else [],  # empty: no script prior
        "script_prior": pred.script.text if pred.script else "",
        "model_probabilities": {k: round(v, 6) for k, v in pred.model_probs.items()},  # training prior, no script
        "seen_in_training": pred.evidence,
    }


def predict_json(predictor: Predictor, name: str | None, prior=DEFAULT_PRIOR) -> dict:
    """The /predict answer for one name under `prior`, with the prior it used; raises
    InvalidNameError for a name it cannot read and PriorError for a prior it cannot use."""
    if name is not None and not isinstance(name, str):
        raise InvalidNameError(NOT_TEXT)
    cleaned, dropped = usable(predictor, name)
    pred = predictor.predict(cleaned, prior)
    return {
        **prediction_json(str(name).strip(), pred, dropped, predictor.coverage),
        "prior": prior_json(predictor, prior),
    }


def classify_many(
    predictor: Predictor, names: list[str], prior=DEFAULT_PRIOR
) -> list[tuple[str, Prediction | InvalidNameError, str]]:
    """(name as given, its prediction or error, dropped characters) per name, in order."""
    cleaned = [usable(predictor, n) for n in names]
    results = predictor.predict_batch([c for c, _ in cleaned], prior)
    return [(n.strip(), r, d) for n, r, (_, d) in zip(names, results, cleaned, strict=True)]


def predict_batch_json(predictor: Predictor, names: list[str] | str | None, prior=DEFAULT_PRIOR) -> dict:
    """The /predict_batch answer: {"prior": the prior used, "results": one JSON object per input,
    {"name", "error"} for unreadable ones}. Raises InvalidNameError over the batch limit
    (Predictor.predict_batch checks it) and PriorError for a prior it cannot use."""
    names = names.splitlines() if isinstance(names, str) else list(names or [])
    text = ["" if n is None or not isinstance(n, str) else n for n in names]
    rows = classify_many(predictor, text, prior)
    rows = [(n, r, d) if raw is None or isinstance(raw, str) else (str(raw), InvalidNameError(NOT_TEXT), "")
            for raw, (n, r, d) in zip(names, rows, strict=True)]  # fmt: skip
    cov = predictor.coverage
    results = [prediction_json(n, r, d, cov) if isinstance(r, Prediction) else {"name": n, "error": str(r)}
               for n, r, d in rows]  # fmt: skip
    return {"prior": prior_json(predictor, prior), "results": results}
