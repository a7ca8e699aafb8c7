"""Gradio demo and API: guess the language of origin of a surname.

`python app.py` (also how a Hugging Face Space starts it) loads the model once and serves on
127.0.0.1:7860; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override, MODEL_DIR / MODEL_REPO /
MODEL_REVISION choose the model (else the bundled `model/`). Importing this module has no side
effects: `build_app(predictor, resolved)` builds the page, `main()` reads the environment.
"""

import csv
import html
import logging
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from trainer.encoding import MAX_NAME_CHARS, InvalidNameError, normalize_name
from trainer.hub import HubError, ResolvedModel, load_served_model
from trainer.predict import MAX_BATCH, Prediction, Predictor

log = logging.getLogger("app")
TOP_K, UNSURE_K, SHOWN_ROWS, KEEP_CSVS = 5, 3, 1000, 50
GENERIC_ERROR = "Something went wrong on our side; it has been logged. Please try again."
HEADER_WORDS = {"name", "names", "surname", "surnames", "last name", "last_name", "lastname", "family name"}
# At least one per language class, and the tricky kinds: accents, particles, apostrophes.
EXAMPLES = ["Nakamura", "Müller", "Dvořák", "De la Fuente", "O'Brien", "Haddad", "Zhang", "Van den Berg", "Thompson",
            "Lefèvre", "Papadopoulos", "Rossi", "Choi", "Kowalski", "Gonçalves", "Ivanov", "MacLeod", "Nguyen",
            "Von Wegberg"]  # fmt: skip
INTRO = """# Where does a surname come from?
A character-level BiGRU guesses the **language of origin** of a surname among 18 languages, with calibrated
probabilities, an honest "unsure", and the letters that drove the guess. It does **not** tell anyone's nationality
or ethnicity and must not be used to decide anything about a person."""
CSS = ".gradio-container {max-width: 1180px !important; margin: auto;} #status p {margin: 0.3em 0;}"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def md_escape(text: str) -> str:
    """User text made inert for gr.Markdown: no HTML, no markdown formatting, one line."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(str(text).split()), quote=False))


def pct(p: float, digits: int = 1) -> str:
    return f"{100 * p:.{digits}f}%"


def usable(predictor: Predictor, raw) -> tuple[str, str]:
    """(raw without the characters the model never saw in training, those characters).

    Unseen characters (digits, <, /, emoji) would be read through an untrained embedding and give
    confident nonsense, so they are dropped and reported. Raw stays as it is when nothing is left
    to classify or it is too long: the predictor's own message then explains why."""
    text, known = "" if raw is None else str(raw), predictor.encoder.alphabet
    if text.isascii() and all(c in known or c.isspace() for c in text.lower()):
        return text, ""
    keep, drop = [], []
    for c in text:
        (keep if c.isspace() or all(k in known for k in normalize_name(c).text) else drop).append(c)
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


def api_predict(predictor: Predictor, name: str) -> dict:
    """The /predict endpoint: JSON for one name, or gr.Error with a message fit for users."""
    try:
        cleaned, dropped = usable(predictor, name)
        return prediction_json(str(name).strip(), predictor.predict(cleaned), dropped)
    except InvalidNameError as e:
        raise gr.Error(str(e)) from None
    except Exception:
        log.exception("API prediction failed")
        raise gr.Error(GENERIC_ERROR) from None


def classify_many(predictor: Predictor, names: list[str]) -> list[tuple[str, Prediction | InvalidNameError, str]]:
    """(name as given, its prediction or error, dropped characters) per name, in order."""
    cleaned = [usable(predictor, n) for n in names]
    results = predictor.predict_batch([c for c, _ in cleaned])
    return [(n.strip(), r, d) for n, r, (_, d) in zip(names, results, cleaned, strict=True)]


def api_predict_batch(predictor: Predictor, names: list[str] | str) -> list[dict]:
    """The /predict_batch endpoint: one JSON object per input; {"name", "error"} for unreadable ones."""
    names = names.splitlines() if isinstance(names, str) else ["" if n is None else str(n) for n in names or []]
    if len(names) > MAX_BATCH:
        raise gr.Error(f"{len(names):,} names: the limit is {MAX_BATCH:,} per batch.")
    try:
        rows = classify_many(predictor, names)
    except Exception:
        log.exception("API batch failed")
        raise gr.Error(GENERIC_ERROR) from None
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


def batch_frame(predictor: Predictor, names: list[str]) -> pd.DataFrame:
    columns = ["name", "language", "confidence", "unsure", "seen in training", "note", *predictor.labels]
    rows = []
    for name, r, dropped in classify_many(predictor, names):
        if not isinstance(r, Prediction):
            rows.append({"name": name, "note": str(r)})
            continue
        notes = [f"transliterated → {r.normalized.text}"] * r.normalized.transliterated
        notes += [f"ignored {' '.join(dropped)}"] * bool(dropped)
        seen = ", ".join(f"{k} ×{n}" for k, n in r.evidence.items())
        top = {"language": r.top[0], "confidence": r.top[1], "unsure": r.abstain}
        rows.append({"name": name, **top, "seen in training": seen, "note": "; ".join(notes), **r.probs})
    return pd.DataFrame(rows, columns=columns).round(4)


def write_csv(frame: pd.DataFrame, out_dir: Path) -> Path:
    """The full table as CSV; names that look like spreadsheet formulas get a leading quote."""
    safe = frame.assign(name=frame["name"].map(lambda s: "'" + s if s[:1] in ("=", "+", "-", "@", "\t") else s))
    for old in sorted(out_dir.glob("*.csv"), key=lambda f: f.stat().st_mtime)[:-KEEP_CSVS]:
        old.unlink(missing_ok=True)
    path = out_dir / f"name-origin-{uuid.uuid4().hex[:8]}.csv"
    safe.to_csv(path, index=False)
    return path


def run_batch(predictor: Predictor, text: str | None, file_path: str | None, out_dir: Path):
    """Batch tab: (table shown, CSV path, status). Never raises."""
    empty = pd.DataFrame(columns=["name", "language", "confidence", "unsure"])
    try:
        names = names_from_csv(file_path) if file_path else [s.strip() for s in (text or "").splitlines() if s.strip()]
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
    bad, unsure = int(frame["language"].isna().sum()), int(frame["unsure"].eq(True).sum())
    source = f" from {md_escape(Path(file_path).name)}" if file_path else ""
    status = f"{len(names):,} names{source} in {time.perf_counter() - start:.2f} s: {len(names) - bad:,} classified "
    status += f"({unsure:,} unsure), {bad:,} unreadable (see *note*)."
    if len(frame) > SHOWN_ROWS:
        status += f" Showing the first {SHOWN_ROWS:,} rows; the CSV holds all of them."
    return frame.head(SHOWN_ROWS), str(path), status


def quality_table(metrics: dict) -> str:
    t, unseen = metrics["test"], metrics.get("test_unseen")
    rows = ["| model | test accuracy | macro-F1 | top-3 | names unseen in train |", "|---|---|---|---|---|"]
    rows.append(f"| **this model** | **{pct(t['accuracy'], 2)}** | **{t['macro_f1']:.3f}** | "
                f"{pct(t['top3_accuracy'], 2)} | {pct(unseen['accuracy'], 2) if unseen else '—'} |")  # fmt: skip
    anchors = {k: a for k, a in metrics.get("anchors", {}).items() if "picked on test" in k or "logistic" in k}
    rows += [f"| {k} | {pct(a['accuracy'], 2)} | {a['macro_f1']:.3f} | — | — |" for k, a in anchors.items()]
    return "\n".join(rows)


def served_text(resolved: ResolvedModel) -> str:
    what = md_escape(resolved.repo_id or resolved.path.name)
    what += f" at revision `{resolved.revision}`" if resolved.revision else ""
    return f"**Serving** the {resolved.source} model {what}." + "".join(f"\n- {md_escape(n)}" for n in resolved.notes)


def image(run_dir: Path, name: str, label: str) -> None:
    if (run_dir / name).is_file():
        gr.Image(str(run_dir / name), type="filepath", label=label, show_label=False, buttons=["fullscreen"])
    else:
        gr.Markdown(f"*{label}: not in this model's folder.*")


def accuracy_plot(metrics: dict) -> None:
    rows = [{"epoch": h["epoch"], "accuracy (%)": 100 * h[f"{key}_accuracy"], "split": split}
            for h in metrics["history"] for key, split in (("test", "test"), ("val", "validation"))]  # fmt: skip
    title = f"Accuracy per epoch (chosen: epoch {metrics['best_epoch']}, best validation)"
    gr.LinePlot(pd.DataFrame(rows), x="epoch", y="accuracy (%)", color="split", title=title, show_label=False)


def model_tab(predictor: Predictor, resolved: ResolvedModel, metrics: dict | None) -> None:
    gr.Markdown(served_text(resolved))
    if not metrics:
        gr.Markdown("This model folder has no `metrics.json`, so there is nothing more to show.")
        return
    cal, ab, run_dir = metrics["calibration"], metrics["abstention"], predictor.run_dir
    with gr.Tab("Accuracy"):
        gr.Markdown(f"Epoch **{metrics['best_epoch']}** of {metrics['epochs_run']} was chosen on validation; "
                    "the test set chose nothing.\n\n" + quality_table(metrics))  # fmt: skip
        if (run_dir / "accuracy_curve.png").is_file():
            image(run_dir, "accuracy_curve.png", "Accuracy per epoch (test and validation)")
        else:  # e.g. a Hub snapshot without the figures: draw it from metrics.json
            accuracy_plot(metrics)
    with gr.Tab("Per language"):
        per_class = metrics["test"]["per_class"]
        table = pd.DataFrame.from_dict(per_class, orient="index")[["precision", "recall", "f1", "support"]].round(3)
        gr.Dataframe(table.rename_axis("language").reset_index(), label="Test set, per language", max_height=640)
        image(run_dir, "confusion.png", "Confusion matrix on test")
        with gr.Accordion("Confusion counts (rows: true language, columns: predicted)", open=False):
            frame = pd.DataFrame(metrics["test"]["confusion"], columns=list(per_class)).assign(true=list(per_class))
            gr.Dataframe(frame[["true", *per_class]], show_label=False)
    with gr.Tab("Calibration & abstention"):
        gr.Markdown(
            f"Temperature **{cal['temperature']:.3f}**, fitted on validation. Expected calibration error "
            f"({cal['bins']} bins) on test: **{cal['ece_before']:.4f}** before, **{cal['ece_after']:.4f}** after.\n\n"
            f"Below a top probability of **{pct(ab['threshold'])}** the app says it is unsure. On test it answers "
            f"{pct(ab['test_coverage'])} of names, {pct(ab['test_accuracy_answered'])} of them correctly."
        )
        with gr.Row():
            image(run_dir, "reliability.png", "Reliability diagram")
            image(run_dir, "coverage.png", "Coverage vs accuracy")


def single_tab(predictor: Predictor) -> None:
    with gr.Row(equal_height=False):
        with gr.Column():
            name = gr.Textbox(label="Surname", placeholder="e.g. Nakamura", max_lines=1, autofocus=True)
            with gr.Row():
                go = gr.Button("Guess the origin", variant="primary", scale=2)
                show_all = gr.Checkbox(label="Show all 18 languages", scale=1)
            status = gr.Markdown(elem_id="status")
            letters = gr.HighlightedText(label="Letters", elem_id="letters", show_inline_category=False)
            ex = gr.Examples(EXAMPLES, inputs=name, examples_per_page=20, api_visibility="private")
        bars = gr.Label(label="Language of origin", elem_id="bars")

    def show(raw, all_):
        v = analyse(predictor, raw, all_)
        what = f"Letters: red pushed toward {v.target}, purple against it" if v.target else "Letters"
        return gr.Label(v.bars, show_heading=not v.unsure), v.status, gr.HighlightedText(v.letters, label=what)

    def toggle(raw, all_):
        return show(raw, all_) if (raw or "").strip() else gr.skip()

    outputs = [bars, status, letters]
    gr.on([name.submit, go.click], show, [name, show_all], outputs, api_visibility="private")
    show_all.input(toggle, [name, show_all], outputs, api_visibility="private")
    ex.load_input_event.then(show, [name, show_all], outputs, api_visibility="private")


def batch_tab(predictor: Predictor, out_dir: Path) -> None:
    with gr.Row():
        text = gr.Textbox(label="Surnames, one per line", lines=8, max_lines=16, placeholder="Nakamura\nMüller")
        upload = gr.File(label="…or a CSV (first column = names, header optional)", file_types=[".csv", ".txt"])
    go = gr.Button("Classify all", variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(label="Predictions", interactive=False, max_height=480)
    download = gr.File(label="Download all as CSV", interactive=False)
    go.click(lambda t, f: run_batch(predictor, t, f, out_dir), [text, upload], [table, download, status],
             api_visibility="private", concurrency_id="batch", concurrency_limit=1)  # fmt: skip


def build_app(predictor: Predictor, resolved: ResolvedModel) -> gr.Blocks:
    """The whole page plus the /predict and /predict_batch API endpoints."""
    out_dir = Path(tempfile.mkdtemp(prefix="name-origin-"))

    def predict(name: str) -> dict:
        """Classify one surname: language, confidence, unsure flag, all 18 probabilities, training evidence."""
        return api_predict(predictor, name)

    def predict_batch(names: list[str]) -> list[dict]:
        """Classify up to 10,000 surnames; unreadable ones come back as {"name", "error"}."""
        return api_predict_batch(predictor, names)

    with gr.Blocks(title="Name origin: where does a surname come from?", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Single name"):
            single_tab(predictor)
        with gr.Tab("Batch"):
            batch_tab(predictor, out_dir)
        with gr.Tab("Model"):
            model_tab(predictor, resolved, predictor.metrics())
        gr.api(predict, api_name="predict")
        gr.api(predict_batch, api_name="predict_batch", concurrency_id="batch", concurrency_limit=1)
    return demo


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = os.environ.get
    torch.set_num_threads(int(env("NAME_ORIGIN_THREADS", "1")))  # 2 shared cores: one thread per request
    start = time.perf_counter()
    bundled = Path(__file__).resolve().parent / "model"
    try:
        predictor, resolved = load_served_model(env("MODEL_DIR"), env("MODEL_REPO"), env("MODEL_REVISION"), bundled)
    except HubError as e:
        log.error("Cannot start: %s. Set MODEL_DIR to a trained run folder (python -m trainer), MODEL_REPO to a "
                  "Hub model repo, or put a trained run in %s.", e, bundled)  # fmt: skip
        return 2
    demo = build_app(predictor, resolved).queue(default_concurrency_limit=4, max_size=128)
    log.info("model loaded and page built in %.2f s", time.perf_counter() - start)
    host, port = env("GRADIO_SERVER_NAME", "127.0.0.1"), int(env("GRADIO_SERVER_PORT", "7860"))
    theme = gr.themes.Soft(primary_hue="indigo")
    demo.launch(server_name=host, server_port=port, theme=theme, css=CSS, max_file_size="5mb", prevent_thread_lock=True)
    log.info("ready in %.2f s after imports", time.perf_counter() - start)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
