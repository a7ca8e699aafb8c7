"""Accuracy on surnames no one here wrote: the per-locale last-name lists of the `faker` package.

    python bench/external_eval.py [--model-dir model] [--write]

Each list is a locale's surnames (deduplicated), labelled with the one of our 18 languages that
locale writes; ru_RU and el_GR are also romanized through our own reading, as people type them,
and cs_CZ and vi_VN are scored again with the diacritics stripped, to show what the letters add.
Beside the served model, the n-gram baseline of the project's anchors: char 1-4-gram TF-IDF + logistic
regression (C=30), fitted on the training file, reading every name through the same normalizer.
Prints the table per list (top-1 under each prior, top-2 and prediction-set coverage under the
default prior, baseline top-1) and the summary per prior beside the test file. With --write, the
scores are saved as `external.json` in the model folder and its card is rendered again with them
(the card and the Model tab show both tables).

faker is MIT-licensed and a dev dependency: these lists evaluate and choose, never train.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import faker  # noqa: E402
from anyascii import anyascii  # noqa: E402

from name_origin.calibration import DEFAULT_PRIOR, PRIOR_CHOICES  # noqa: E402
from name_origin.encoding import normalize_name  # noqa: E402
from name_origin.model_tab import external_table, prior_table  # noqa: E402
from name_origin.predict import Prediction, Predictor  # noqa: E402
from trainer import data  # noqa: E402
from trainer.card import render_card  # noqa: E402
from trainer.checkpoint import atomic_write_json, atomic_write_text  # noqa: E402

# (list name, faker locale, provider attribute, language, script)
LISTS = [
    ("ru_RU", "ru_RU", "last_names", "Russian", "Cyrillic"),
    ("el_GR", "el_GR", "last_names", "Greek", "Greek"),
    ("ko_KR", "ko_KR", "last_names", "Korean", "Hangul"),
    ("ja_JP kanji", "ja_JP", "last_names", "Japanese", "Han"),
    ("ja_JP romanized", "ja_JP", "last_romanized_names", "Japanese", "Latin"),
    ("zh_CN Han", "zh_CN", "last_names", "Chinese", "Han"),
    ("zh_CN romanized", "zh_CN", "last_romanized_names", "Chinese", "Latin"),
    ("ar_SA", "ar_SA", "last_names", "Arabic", "Arabic"),
    ("ru_RU romanized", "ru_RU", "last_names", "Russian", "Latin"),
    ("el_GR romanized", "el_GR", "last_names", "Greek", "Latin"),
    ("cs_CZ", "cs_CZ", "last_names", "Czech", "Latin"),
    ("vi_VN", "vi_VN", "last_names", "Vietnamese", "Latin"),
    ("pl_PL", "pl_PL", "male_last_names", "Polish", "Latin"),
    ("fr_FR", "fr_FR", "last_names", "French", "Latin"),
    ("de_DE", "de_DE", "last_names", "German", "Latin"),
    ("nl_NL", "nl_NL", "last_names", "Dutch", "Latin"),
    ("it_IT", "it_IT", "last_names", "Italian", "Latin"),
    ("es_ES", "es_ES", "last_names", "Spanish", "Latin"),
    ("pt_PT", "pt_PT", "last_names", "Portuguese", "Latin"),
    ("en_GB", "en_GB", "last_names", "English", "Latin"),
    ("en_IE", "en_IE", "last_names", "Irish", "Latin"),
]
STRIPPED = ("cs_CZ", "vi_VN")  # scored again as plain ASCII


@dataclass(frozen=True)
class NameList:
    name: str  # e.g. "cs_CZ" or "cs_CZ ascii"
    script: str  # the script its names are written in
    language: str  # the right answer for every name
    names: tuple[str, ...]


def strip_diacritics(name: str) -> str:
    """The name in plain ASCII letters (Đặng -> Dang, Dvořák -> Dvorak): what is left without them."""
    return anyascii(name)


def romanized(name: str) -> str:
    """A native-script surname as people write it in Latin letters: our own reading (Иванов -> Ivanov),
    so the list tests the model on Russian and Greek names typed in the Latin alphabet."""
    return normalize_name(name).text.title()


def load_lists() -> list[NameList]:
    """Every list of LISTS from the installed faker, deduplicated in order, plus the ASCII copies."""
    out = []
    for name, locale, attr, language, script in LISTS:
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        names = tuple(dict.fromkeys(getattr(provider, attr)))
        if name.endswith("romanized") and script == "Latin" and not all(n.isascii() for n in names):
            names = tuple(dict.fromkeys(romanized(n) for n in names))
        out.append(NameList(name, script, language, names))
        if name in STRIPPED:
            out.append(NameList(f"{name} ascii", "Latin (ASCII)", language, tuple(map(strip_diacritics, names))))
    return out


def ngram_baseline(data_dir: Path):
    """The anchors' baseline fitted on the training file: a function names -> top-1 labels."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    _, texts, labels, _ = data.parse(data.read_rows(data_dir / "names_train.csv.gz"), None)  # as the trainer reads it
    model = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 4), sublinear_tf=True),
        LogisticRegression(C=30, max_iter=2000),
    )
    model.fit(texts, labels)
    return lambda names: list(model.predict([normalize_name(n).text for n in names]))


def top1_credit(pred: Prediction | Exception, language: str) -> float:
    """1 when the answer is right, 1/k when it is one of k languages tied for the top (Han alone ties
    Chinese and Japanese exactly: label order must not decide), 0 when wrong or unreadable."""
    if not isinstance(pred, Prediction):
        return 0.0
    best = pred.top[1]
    tied = [lab for lab, p in pred.probs.items() if p >= best - 1e-6]
    return 1 / len(tied) if language in tied else 0.0


def prior_scores(results: list, language: str) -> dict:
    """top-1, top-2, prediction-set coverage and mean size over one list (unreadable names count wrong)."""
    ranked = [list(r.probs) if isinstance(r, Prediction) else [] for r in results]
    sets = [r.prediction_set if isinstance(r, Prediction) else () for r in results]
    return {
        "top1": statistics.fmean(top1_credit(r, language) for r in results),
        "top2": statistics.fmean(language in r[:2] for r in ranked),
        "set_coverage": statistics.fmean(language in s for s in sets),
        "set_size": statistics.fmean(len(s) for s in sets),
    }


def score(predictor: Predictor, lst: NameList, baseline) -> dict:
    """The served model on one list under each named prior, beside the baseline's top-1."""
    priors = {p: prior_scores(predictor.predict_batch(list(lst.names), p), lst.language) for p in PRIOR_CHOICES}
    base = statistics.fmean(b == lst.language for b in baseline(list(lst.names)))
    return {"list": lst.name, "script": lst.script, "language": lst.language, "names": len(lst.names),
            "priors": priors, "baseline_top1": base}  # fmt: skip


def write(model_dir: Path, rows: list[dict]) -> None:
    """external.json into the model folder, and its card (README.md) rendered again with it."""
    atomic_write_json(model_dir / "external.json", {"lists": rows, "faker": faker.VERSION})
    config = json.loads((model_dir / "config.json").read_text())
    metrics = json.loads((model_dir / "metrics.json").read_text())
    card = render_card(ROOT / "model_card.md", config, metrics, external={"lists": rows})
    atomic_write_text(model_dir / "README.md", card)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", type=Path, default=ROOT / "model")
    p.add_argument("--data-dir", help="folder with names_train.csv.gz (else NAME_ORIGIN_DATA, data/)")
    p.add_argument("--write", action="store_true", help="save the table as external.json in the model folder")
    args = p.parse_args(argv)
    predictor = Predictor.from_dir(args.model_dir)
    baseline = ngram_baseline(data.locate(args.data_dir, allow_download=False))
    rows = [score(predictor, lst, baseline) for lst in load_lists()]
    print(f"external lists (faker {faker.VERSION}), model {args.model_dir}, default prior {DEFAULT_PRIOR}\n")
    print(external_table({"lists": rows}))
    print()
    print(prior_table(json.loads((args.model_dir / "metrics.json").read_text()), {"lists": rows}))
    if args.write:
        write(args.model_dir, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
