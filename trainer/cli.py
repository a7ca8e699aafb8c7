"""Command line: `python -m trainer [options]` trains; `python -m trainer push RUN_DIR` uploads;
`python -m trainer export RUN_DIR` writes a run's model.onnx (runs trained with --no-onnx, or older)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import typing
from pathlib import Path

from trainer.config import (
    PRESETS,
    ConfigError,
    ModelConfig,
    TrainConfig,
    check_model_config,
    from_dict,
    replace_known,
    to_dict,
)

log = logging.getLogger("trainer")
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "model_card.md"
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2  # as argparse exits on a command line it cannot parse
QUIET_LOGGERS = ("torch.onnx", "onnxscript", "onnx_ir")  # shown with --verbose only
NOT_FLAGS = {"alphabet", "labels", "preset"}  # alphabet and labels come from the data; --preset is its own option


def add_hub_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-id", help="Hub model repo OWNER/NAME to push to")
    p.add_argument("--private", action="store_true", help="create the Hub repo as private")
    p.add_argument("--commit-message", help="Hub commit message")


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer",
        description="Train the surname BiGRU (presets: " + ", ".join(sorted(PRESETS)) + ").",
        epilog="Upload a finished run folder: python -m trainer push RUN_DIR --repo-id OWNER/NAME. "
        "Add model.onnx to a run folder: python -m trainer export RUN_DIR",
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="default", help="starting hyperparameters")
    p.add_argument(
        "--data-dir", help="folder with names_{train,test}.csv.gz (else $NAME_ORIGIN_DATA, data/, ../shared/data)"
    )
    p.add_argument("--out", type=Path, help="run folder to write (default runs/<preset>-s<seed>-<time>)")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--push", action="store_true", help="upload the finished run to the Hub (needs --repo-id)")
    p.add_argument("--no-onnx", action="store_true", help="skip model.onnx (the app then serves with PyTorch)")
    p.add_argument("-v", "--verbose", action="store_true")
    add_hub_args(p)
    for cls, name, typ in config_fields():  # every field is overridable
        p.add_argument("--" + name.replace("_", "-"), type=typ, dest=name, help=f"override {cls.__name__}.{name}")
    return p


def config_fields() -> list[tuple[type, str, type]]:
    """(dataclass, field, type) of each config field the command line sets, from the resolved
    annotations (they are strings under `from __future__ import annotations`). A field of another
    type must be in NOT_FLAGS: it fails here rather than silently going without a flag."""
    out = []
    for cls in (ModelConfig, TrainConfig):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in NOT_FLAGS:
                continue
            if hints[f.name] not in (int, float, str):
                raise TypeError(f"{cls.__name__}.{f.name}: no command-line flag for type {hints[f.name]}")
            out.append((cls, f.name, hints[f.name]))
    return out


def push_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer push", description="Upload an existing run folder to the Hub.")
    p.add_argument("run_dir", type=Path)
    add_hub_args(p)
    return p


def export_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainer export",
        description="Write RUN_DIR/model.onnx from its model.safetensors, checked equal under ONNX Runtime.",
    )
    p.add_argument("run_dir", type=Path)
    return p


def run_export(run_dir: Path) -> int:
    from name_origin.hub import short
    from name_origin.model import NameGRU
    from name_origin.runtime import OnnxMismatchError
    from trainer.export import export_onnx

    if not (run_dir / "model.safetensors").is_file():
        log.error("%s holds no model.safetensors: nothing to export.", run_dir)
        return 1
    try:
        model = NameGRU.from_pretrained(str(run_dir))
    except Exception as e:  # noqa: BLE001 - a folder that does not load is the user's input, not a bug
        log.error("%s does not load (%s): nothing exported.", run_dir, short(e))
        return 1
    try:
        print(f"wrote {export_onnx(model, run_dir)}")
    except OnnxMismatchError as e:
        log.error("model.onnx not written (%s); any earlier model.onnx is kept as it was.", e)
        return 1
    return 0


def build_configs(args: argparse.Namespace) -> tuple[ModelConfig, TrainConfig]:
    preset = PRESETS[args.preset]
    overrides = vars(args)
    return check_model_config(replace_known(preset.model, overrides)), replace_known(preset.train, overrides)


def run_push(run_dir: Path, args) -> int:
    from name_origin.hub import HubError
    from trainer.push import push_run

    if not args.repo_id:
        log.error("--repo-id OWNER/NAME is required to push.")
        return 2
    try:
        commit = push_run(run_dir, args.repo_id, private=args.private, commit_message=args.commit_message)
    except HubError as e:
        log.error("%s", e)
        return 1
    print(f"pushed {run_dir} to {args.repo_id}: commit {commit.oid}\n{commit.commit_url}")
    return 0


class UsageError(Exception):
    """A command line that cannot run as given; the message says what to do instead."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def resume_configs(run_dir: Path) -> tuple[ModelConfig, TrainConfig, Path]:
    """The configs an interrupted run started with (overrides on the command line are ignored)."""
    from trainer.checkpoint import RESUME_DIR

    if not all((run_dir / RESUME_DIR / name).is_file() for name in ("state.safetensors", "configs.json")):
        raise UsageError(
            f"{run_dir} holds no resumable checkpoint (no {RESUME_DIR}/ folder): it finished, "
            "or stopped before its first epoch."
        )
    saved = json.loads((run_dir / RESUME_DIR / "configs.json").read_text())
    mcfg = check_model_config(from_dict(ModelConfig, saved["model"]))
    return mcfg, from_dict(TrainConfig, saved["train"]), Path(saved["data_dir"])


def new_run(args) -> tuple[ModelConfig, TrainConfig, Path, Path]:
    from trainer import data
    from trainer.checkpoint import RESUME_DIR

    mcfg, tcfg = build_configs(args)
    run_dir = args.out or ROOT / "runs" / f"{tcfg.preset}-s{tcfg.seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    if (run_dir / RESUME_DIR / "state.safetensors").exists():  # never overwrite an interrupted run's checkpoint
        raise UsageError(
            f"{run_dir} holds an interrupted run: continue it with --resume {run_dir}, or pick another --out."
        )
    return mcfg, tcfg, data.locate(args.data_dir), run_dir


def run_train(args) -> int:
    from trainer import data, report
    from trainer.checkpoint import RESUME_DIR, atomic_write_json
    from trainer.train import Interrupted, resolve_device, train

    if args.push and not args.repo_id:
        raise UsageError("--push needs --repo-id OWNER/NAME.", exit_code=EXIT_USAGE)
    if args.resume:
        run_dir = args.resume
        mcfg, tcfg, data_dir = resume_configs(run_dir)
    else:
        mcfg, tcfg, data_dir, run_dir = new_run(args)
    resolve_device(tcfg.device)  # a device this machine lacks fails before anything is written
    ds = data.load(data_dir, tcfg.val_fraction, tcfg.seed, tcfg.max_train_rows)
    mcfg = dataclasses.replace(mcfg, alphabet=ds.encoder.alphabet, labels=ds.labels)
    if not args.resume:
        saved = {"model": to_dict(mcfg), "train": to_dict(tcfg), "data_dir": str(data_dir)}
        atomic_write_json(run_dir / RESUME_DIR / "configs.json", saved)
    log.info("run folder %s\n%s\n%s", run_dir, mcfg, tcfg)
    log.info(
        "data %s: train %d, validation %d, test %d rows",
        data_dir,
        len(ds.train.names),
        len(ds.val.names),
        len(ds.test.names),
    )
    try:
        result = train(mcfg, tcfg, ds, run_dir, resume=bool(args.resume))
    except Interrupted:
        if (run_dir / RESUME_DIR / "state.safetensors").is_file():
            log.error("interrupted: resume with  python -m trainer --resume %s", run_dir)
        else:
            log.error("interrupted before the first epoch ended: nothing to resume; start again")
        return EXIT_INTERRUPTED
    metrics = report.write_run(run_dir, result, ds, tcfg, TEMPLATE, onnx=not args.no_onnx)
    t, unseen = metrics["test"], metrics["test_unseen"]["accuracy"]
    print(
        f"best epoch {metrics['best_epoch']}: test accuracy {t['accuracy']:.4f}, macro-F1 {t['macro_f1']:.3f}, "
        f"top-3 {t['top3_accuracy']:.4f}, unseen names {'n/a' if unseen is None else f'{unseen:.4f}'}\n"
        f"run folder: {run_dir}"
    )
    return run_push(run_dir, args) if args.push else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv and argv[0] in ("push", "export") else "train"
    parser = {"push": push_parser, "export": export_parser, "train": train_parser}[command]()
    args = parser.parse_args(argv[1:] if command != "train" else argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if command == "push":  # no torch import: a push only uploads files
        return run_push(args.run_dir, args)
    import torch  # noqa: F401 - torch configures its loggers on import: quiet them after that

    for name in QUIET_LOGGERS:  # the ONNX exporter logs hundreds of INFO lines per export
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)
    if command == "export":
        return run_export(args.run_dir)
    from trainer.data import DataError

    # User errors get one line and an exit code; anything else is a bug and keeps its traceback.
    try:
        return run_train(args)
    except UsageError as e:
        log.error("%s", e)
        return e.exit_code
    except ConfigError as e:
        log.error("%s", e)
        return EXIT_USAGE
    except DataError as e:
        log.error("%s", e)
        return 1
