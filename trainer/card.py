"""Render the top-level model_card.md template with a run's real numbers (model-index included)."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from name_origin.calibration import DEFAULT_PRIOR
from name_origin.model_tab import external_table, prior_table

DATASET = {"name": "PyTorchZeroToAll surname split (names_test.csv.gz)", "type": "hunkim/PyTorchZeroToAll-names"}


def card_data(metrics: dict, model_name: str) -> ModelCardData:
    test = metrics["test"]
    results = [
        EvalResult(
            task_type="text-classification",
            task_name="Surname language-of-origin classification",
            dataset_type=DATASET["type"],
            dataset_name=DATASET["name"],
            dataset_split="test",
            metric_type=metric,
            metric_name=name,
            metric_value=round(value, 4),
        )
        for metric, name, value in (
            ("accuracy", "Accuracy", test["accuracy"]),
            ("f1", "Macro F1", test["macro_f1"]),
            ("accuracy", "Top-3 accuracy", test["top3_accuracy"]),
        )
    ]
    return ModelCardData(
        language="en",
        license="mit",
        library_name="name-origin",
        pipeline_tag="text-classification",
        tags=["surnames", "char-rnn", "bigru", "pytorch"],
        model_name=model_name,
        eval_results=results,
    )


def render_card(
    template: Path, config: dict, metrics: dict, model_name: str = "name-origin BiGRU", external: dict | None = None
) -> str:
    """The model card: `template` rendered with the run's config and metrics, and the external
    name lists' scores (bench/external_eval.py) when given."""
    per_class = sorted(metrics["test"]["per_class"].items(), key=lambda kv: -kv[1]["support"])
    card = ModelCard.from_template(
        card_data(metrics, model_name),
        template_path=str(template),
        model_name=model_name,
        config=config,
        m=metrics,
        per_class=per_class,
        pct=lambda x: "n/a" if x is None else f"{100 * x:.2f}%",
        prior_table=prior_table(metrics, external),
        external_table=external_table(external) if external else "",
        default_prior=DEFAULT_PRIOR,
    )
    return str(card)
