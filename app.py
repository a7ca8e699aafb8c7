"""Gradio demo and API: guess the language of origin of a surname.

`python app.py` (also how a Hugging Face Space starts it) loads the model once and serves on
127.0.0.1:7860; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT override. The model: MODEL_DIR, else the
Hub repo of README.md's front matter (MODEL_REPO / MODEL_REVISION override), its cache, else the
bundled `model/`. Importing this module has no side
effects: `build_app(predictor, resolved)` builds the page, `main()` reads the environment.
"""

import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import pandas as pd
import torch

from name_origin.batch import column_choices, run_batch
from name_origin.calibration import DEFAULT_PRIOR, PriorError
from name_origin.encoding import InvalidNameError
from name_origin.hub import HubError, ResolvedModel, default_repo, load_served_model
from name_origin.model_tab import (
    SELECTION,
    external_table,
    prior_table,
    quality_table,
    read_external,
    readable_metrics,
    served_text,
)
from name_origin.predict import Predictor
from name_origin.views import GENERIC_ERROR, analyse, pct, predict_batch_json, predict_json

log = logging.getLogger("app")
# At least one per language class, and the tricky kinds: accents, particles, apostrophes, native scripts.
EXAMPLES = ["Nakamura", "Müller", "Dvořák", "De la Fuente", "O'Brien", "Haddad", "Zhang", "Van den Berg", "Thompson",
            "Lefèvre", "Papadopoulos", "Rossi", "Choi", "Kowalski", "Gonçalves", "Ivanov", "MacLeod", "Nguyen",
            "Von Wegberg", "Иванов", "Παπαδόπουλος", "김", "田中", "محمد"]  # fmt: skip
INTRO = """# Where does a surname come from?
Character-level bidirectional GRUs guess the **language of origin** of a surname among {n} languages, with calibrated
probabilities, an honest "unsure", and the letters that drove the guess. It does **not** tell anyone's nationality
or ethnicity and must not be used to decide anything about a person."""
REAL_NAMES = """The test file shares the training data's prior, so it rewards leaning on it; real surnames do not.
Below: the test file and, when the model folder holds them (`external.json`), the last-name lists of the `faker`
package (real surnames of 17 locales, used to evaluate, never to train), under each prior. The page answers under
the **{default}** prior unless you choose otherwise; each answer carries a prediction set that contains the right
language 90% of the time, on average over names like the validation split's whose languages follow the chosen
prior (under "equal": every language counted alike; some languages are covered more often than others)."""
PRIOR_INFO = (
    'The training data is {share} {language}; "equal" divides each language\'s share out, so a name is judged '
    "by its letters alone: right more often on real surnames from other countries."
)
CSS = ".gradio-container {max-width: 1180px !important; margin: auto;} #status p {margin: 0.3em 0;}"


@contextmanager
def user_errors(what: str) -> Iterator[None]:
    """InvalidNameError, PriorError -> gr.Error with their message; anything else logged -> GENERIC_ERROR."""
    try:
        yield
    except (InvalidNameError, PriorError) as e:
        raise gr.Error(str(e), print_exception=False) from None  # the user's input, not a fault: no traceback
    except Exception:
        log.exception("%s failed", what)
        raise gr.Error(GENERIC_ERROR, print_exception=False) from None  # logged once, above


def api_predict(predictor: Predictor, name: str, prior: str | dict = DEFAULT_PRIOR) -> dict:
    """The /predict endpoint: JSON for one name, or gr.Error with a message fit for users."""
    with user_errors("API prediction"):
        return predict_json(predictor, name, prior)


def api_predict_batch(predictor: Predictor, names: list[str] | str, prior: str | dict = DEFAULT_PRIOR) -> dict:
    """The /predict_batch endpoint: {"prior", "results": one JSON object per input; {"name", "error"}
    for unreadable ones}."""
    with user_errors("API batch"):
        return predict_batch_json(predictor, names, prior)


def image(run_dir: Path, name: str, label: str) -> None:
    if (run_dir / name).is_file():
        gr.Image(str(run_dir / name), type="filepath", label=label, show_label=False, buttons=["fullscreen"])
    else:
        gr.Markdown(f"*{label}: not in this model's folder.*")


def accuracy_plot(metrics: dict) -> None:
    rows = [{"epoch": h["epoch"], "accuracy (%)": 100 * h[f"{key}_accuracy"], "split": split}
            for h in metrics["history"] for key, split in (("test", "test"), ("val", "validation"))]  # fmt: skip
    chosen_by = SELECTION[metrics.get("selected_on", "val_loss")]
    title = f"Accuracy per epoch (chosen: epoch {metrics['best_epoch']}, {chosen_by})"
    # Epochs are whole numbers. Up to 30, as categories in epoch order: one tick each, never 2.5
    # (a category's y is aggregated: the mean of its one value). Longer runs stay numeric: their
    # nice tick steps (1, 2, 5, ... at ~40 px a tick) are whole.
    epochs = [str(h["epoch"]) for h in metrics["history"]] if len(metrics["history"]) <= 30 else None
    frame = pd.DataFrame(rows).astype({"epoch": str}) if epochs else pd.DataFrame(rows)
    gr.LinePlot(frame, x="epoch", y="accuracy (%)", color="split", title=title, show_label=False,
                sort=epochs, y_aggregate="mean" if epochs else None)  # fmt: skip


def accuracy_tab(run_dir: Path, metrics: dict) -> None:
    gr.Markdown(f"Epoch **{metrics['best_epoch']}** of {metrics['epochs_run']} was chosen on validation; "
                "the test set chose nothing.\n\n" + quality_table(metrics))  # fmt: skip
    if (run_dir / "accuracy_curve.png").is_file():
        image(run_dir, "accuracy_curve.png", "Accuracy per epoch (test and validation)")
    else:  # e.g. a Hub snapshot without the figures: draw it from metrics.json
        accuracy_plot(metrics)


def per_language_tab(run_dir: Path, metrics: dict) -> None:
    per_class = metrics["test"]["per_class"]
    table = pd.DataFrame.from_dict(per_class, orient="index")[["precision", "recall", "f1", "support"]].round(3)
    gr.Dataframe(table.rename_axis("language").reset_index(), label="Test set, per language", max_height=640)
    image(run_dir, "confusion.png", "Confusion matrix on test")
    with gr.Accordion("Confusion counts (rows: true language, columns: predicted)", open=False):
        frame = pd.DataFrame(metrics["test"]["confusion"], columns=list(per_class)).assign(true=list(per_class))
        gr.Dataframe(frame[["true", *per_class]], show_label=False)


def calibration_tab(run_dir: Path, metrics: dict) -> None:
    cal, ab = metrics["calibration"], metrics["abstention"]
    gr.Markdown(
        f"Temperature **{cal['temperature']:.3f}**, fitted on validation. Expected calibration error "
        f"({cal['bins']} bins) on test: **{cal['ece_before']:.4f}** before, **{cal['ece_after']:.4f}** after.\n\n"
        f"Under the training prior, below a top probability of **{pct(ab['threshold'])}** the app says it is "
        f"unsure. On test it answers {pct(ab['test_coverage'])} of names, {pct(ab['test_accuracy_answered'])} of "
        'them correctly. Each prior has its own threshold: see "Real names & priors".'
    )
    with gr.Row():
        image(run_dir, "reliability.png", "Reliability diagram")
        image(run_dir, "coverage.png", "Coverage vs accuracy")


def model_tab(run_dir: Path, resolved: ResolvedModel, metrics: dict | None, runtime: str = "") -> gr.Markdown:
    """The Model tab; returns its first line (which model serves, and what computes its logits)."""
    served = gr.Markdown(served_text(resolved, runtime))
    if not metrics:
        gr.Markdown("This model folder has no readable `metrics.json`, so there is nothing more to show.")
        return served
    with gr.Tab("Accuracy"):
        accuracy_tab(run_dir, metrics)
    with gr.Tab("Per language"):
        per_language_tab(run_dir, metrics)
    with gr.Tab("Calibration & abstention"):
        calibration_tab(run_dir, metrics)
    with gr.Tab("Real names & priors"):
        gr.Markdown(REAL_NAMES.format(default=DEFAULT_PRIOR))
        external = read_external(run_dir)
        gr.Markdown(prior_table(metrics, external))
        gr.Markdown("### Per list: where the model is weak on real surnames\n\n" + external_table(external))


def prior_choice(predictor: Predictor) -> gr.Radio:
    """The prior over languages, with one sentence on what it changes."""
    top = int(predictor.training_prior.argmax())
    info = PRIOR_INFO.format(share=pct(float(predictor.training_prior[top]), 0), language=predictor.labels[top])
    choices = [("equal for every language", "equal"), ("as in the training data", "training")]
    return gr.Radio(choices, value=DEFAULT_PRIOR, label="Prior over languages", info=info)


def single_tab(predictor: Predictor) -> None:
    with gr.Row(equal_height=False):
        with gr.Column():
            name = gr.Textbox(label="Surname", placeholder="e.g. Nakamura", max_lines=1, autofocus=True)
            with gr.Row():
                go = gr.Button("Guess the origin", variant="primary", scale=2)
                show_all = gr.Checkbox(label=f"Show all {len(predictor.labels)} languages", scale=1)
            prior = prior_choice(predictor)
            status = gr.Markdown(elem_id="status")
            letters = gr.HighlightedText(label="Letters", elem_id="letters", show_inline_category=False)
            ex = gr.Examples(EXAMPLES, inputs=name, examples_per_page=24, api_visibility="private")
        bars = gr.Label(label="Language of origin", elem_id="bars")

    def show(raw, all_, prior_):
        v = analyse(predictor, raw, all_, prior=prior_)
        what = f"Letters: red pushed toward {v.target}, purple against it" if v.target and v.letters else "Letters"
        return gr.Label(v.bars, show_heading=not v.unsure), v.status, gr.HighlightedText(v.letters, label=what)

    def toggle(raw, all_, prior_):
        """Redraw the answer under the new choice; with no name, clear it (no answer of another prior stays)."""
        if (raw or "").strip():
            return show(raw, all_, prior_)
        return gr.Label(None), "", gr.HighlightedText(None, label="Letters")

    inputs, outputs = [name, show_all, prior], [bars, status, letters]
    gr.on([name.submit, go.click], show, inputs, outputs, api_visibility="private")
    gr.on([show_all.input, prior.input], toggle, inputs, outputs, api_visibility="private")
    ex.load_input_event.then(show, inputs, outputs, api_visibility="private")


def batch_tab(predictor: Predictor, out_dir: Path) -> None:
    with gr.Row():
        text = gr.Textbox(label="Surnames, one per line", lines=8, max_lines=16, placeholder="Nakamura\nMüller")
        with gr.Column():
            upload = gr.File(label="…or a CSV or text file from any spreadsheet", file_types=[".csv", ".tsv", ".txt"])
            with gr.Row():
                header = gr.Radio(["auto", "yes", "no"], value="auto", label="First row is a header")
                column = gr.Dropdown([], value=None, label="Column with the surnames", info="Filled on upload")
    with gr.Row():
        go = gr.Button("Classify all", variant="primary")
        prior = prior_choice(predictor)
    status = gr.Markdown()
    table = gr.Dataframe(label="Predictions", interactive=False, max_height=480)
    download = gr.File(label="Download all as CSV", interactive=False)

    def columns(file_path, header_choice, current=None):
        """The column menu for the upload; a choice made before survives a header change when it still fits."""
        choices, picked = column_choices(file_path, header_choice)
        keep = current is not None and any(current == i for _, i in choices)
        return gr.Dropdown(choices=choices, value=current if keep else picked)

    upload.change(columns, [upload, header], column, api_visibility="private")
    header.change(columns, [upload, header, column], column, api_visibility="private")
    go.click(lambda t, f, h, c, p: run_batch(predictor, t, f, out_dir, header=h, column=c, prior=p),
             [text, upload, header, column, prior], [table, download, status],
             api_visibility="private", concurrency_id="batch", concurrency_limit=1)  # fmt: skip


def build_app(predictor: Predictor, resolved: ResolvedModel) -> gr.Blocks:
    """The whole page plus the /predict and /predict_batch API endpoints."""
    out_dir = Path(tempfile.mkdtemp(prefix="name-origin-"))

    def predict(name: str, prior: str | dict = DEFAULT_PRIOR) -> dict:
        """Classify one surname: language, confidence, unsure flag, prediction set, every language's
        probability, the script's evidence, training evidence, and the prior used. prior: "equal"
        (default), "training", or a {language: weight} mapping."""
        return api_predict(predictor, name, prior)

    def predict_batch(names: list[str], prior: str | dict = DEFAULT_PRIOR) -> dict:
        """Classify up to 10,000 surnames under one prior: {"prior", "results"}; unreadable names come
        back as {"name", "error"} in their place."""
        return api_predict_batch(predictor, names, prior)

    with gr.Blocks(title="Name origin: where does a surname come from?", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(INTRO.format(n=len(predictor.labels)))
        with gr.Tab("Single name"):
            single_tab(predictor)
        with gr.Tab("Batch"):
            batch_tab(predictor, out_dir)
        with gr.Tab("Model"):
            served = model_tab(predictor.run_dir, resolved, readable_metrics(predictor.metrics()), predictor.runtime)
        # read again at each page load: PyTorch takes over if ONNX Runtime fails on a request
        demo.load(lambda: served_text(resolved, predictor.runtime), None, served, api_visibility="private", queue=False)
        gr.api(predict, api_name="predict", queue=False)  # one POST to /gradio_api/run/predict; /call/ works too
        gr.api(predict_batch, api_name="predict_batch", concurrency_id="batch", concurrency_limit=1)
    return demo


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    env = os.environ.get
    try:
        threads, port = int(env("NAME_ORIGIN_THREADS", "1")), int(env("GRADIO_SERVER_PORT", "7860"))
        workers = int(env("NAME_ORIGIN_WORKERS", str(min(4, os.cpu_count() or 1))))
    except ValueError as e:
        log.error("Cannot start: NAME_ORIGIN_THREADS, NAME_ORIGIN_WORKERS and GRADIO_SERVER_PORT must be whole "
                  "numbers (%s).", e)  # fmt: skip
        return 2
    torch.set_num_threads(threads)  # 2 shared cores: one thread per request
    start = time.perf_counter()
    bundled = Path(__file__).resolve().parent / "model"
    try:
        # The published model: the `models:` entry of README.md's front matter; MODEL_REPO overrides ("" skips
        # the Hub), MODEL_REVISION pins it (best: the commit id `python -m trainer push` printed).
        repo = env("MODEL_REPO", default_repo(bundled.parent / "README.md") or "") or None
        predictor, resolved = load_served_model(env("MODEL_DIR"), repo, env("MODEL_REVISION", "main"), bundled)
    except HubError as e:
        log.error("Cannot start: %s. Set MODEL_DIR to a trained run folder (python -m trainer), MODEL_REPO to a "
                  "Hub model repo, or put a trained run in %s.", e, bundled)  # fmt: skip
        return 2
    predictor.workers = max(1, workers)  # a request's exact-length batches run on this many threads
    demo = build_app(predictor, resolved).queue(default_concurrency_limit=4, max_size=128)
    log.info("model loaded and page built in %.2f s", time.perf_counter() - start)
    host = env("GRADIO_SERVER_NAME", "127.0.0.1")
    theme = gr.themes.Soft(primary_hue="indigo")
    demo.launch(server_name=host, server_port=port, theme=theme, css=CSS, max_file_size="5mb", prevent_thread_lock=True)
    log.info("ready in %.2f s after imports", time.perf_counter() - start)
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
