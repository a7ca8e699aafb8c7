"""Data: find (or download and verify) the name files, parse them strictly, split, batch.

The files are gzipped CSV without header, one "Name","Language" row per line. They are never
committed: they are read from --data-dir / $NAME_ORIGIN_DATA, ./data, or ../shared/data.
"""

from __future__ import annotations

import codecs
import csv
import functools
import gzip
import hashlib
import io
import logging
import os
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch

from name_origin.encoding import CharEncoder, normalize_name, pad_batch

log = logging.getLogger(__name__)

DATA_ENV = "NAME_ORIGIN_DATA"
FILES = {  # file name -> sha256, as listed in data/README.md
    "names_train.csv.gz": "49b4bf41dce5bfeac989b46ca37cf7baccd9a0d2a855df82f86de67a9376268f",
    "names_test.csv.gz": "57d7758db533a42c99d513b2341a7e7b0f55c1e0e7d233b1ef6a4fa2f1adf753",
}
BASE_URL = "https://github.com/hunkim/PyTorchZeroToAll/raw/master/data/"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class DataError(RuntimeError):
    """Missing, corrupt or unusable data; the message says what to do."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def candidate_dirs(data_dir: str | None, env: dict) -> list[Path]:
    """Where to look, in order: the flag, the environment variable, ./data, ../shared/data."""
    dirs = [Path(d) for d in (data_dir, env.get(DATA_ENV)) if d]
    return dirs + [PROJECT_ROOT / "data", PROJECT_ROOT.parent / "shared" / "data"]


def download(dest: Path, base_url: str = BASE_URL, timeout: float = 20.0) -> None:
    """Fetch both files into dest, verifying checksums before they become visible."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, digest in FILES.items():
        tmp = dest / f".{name}.part"
        try:
            with urllib.request.urlopen(base_url + name, timeout=timeout) as resp, open(tmp, "wb") as f:
                f.write(resp.read())
            if sha256(tmp) != digest:
                raise DataError(f"{base_url + name} does not match the published sha256 {digest}.")
            os.replace(tmp, dest / name)
        finally:
            tmp.unlink(missing_ok=True)  # a failed or cut-off download leaves nothing behind


def locate(data_dir: str | None = None, env: dict | None = None, allow_download: bool = True) -> Path:
    """The first directory holding both files; else download into ./data; else a clear error."""
    env = os.environ if env is None else env
    dirs = candidate_dirs(data_dir, env)
    if data_dir:  # an explicit directory that lacks the files is an error, not a cue to look elsewhere
        dirs = dirs[:1]
    for d in dirs:
        if all((d / name).is_file() for name in FILES):
            return d
    reason = "--data-dir given, so nothing downloaded" if data_dir else "downloads disabled"
    if allow_download and not data_dir:
        try:
            download(dirs[-2])
            return dirs[-2]
        except (OSError, DataError) as e:
            reason = f"download from {BASE_URL} failed: {e}"
    looked = ", ".join(str(d) for d in dirs)
    raise DataError(
        f"names_train.csv.gz and names_test.csv.gz not found (looked in: {looked}; {reason}). "
        f"Pass --data-dir DIR or set {DATA_ENV}=DIR to a folder holding them, "
        f"or download them from {BASE_URL} (see README, 'Data')."
    )


@dataclass
class Split:
    names: list[str]  # normalised names
    labels: list[int]  # class indices
    raw: list[str] = field(default_factory=list)  # names as written in the file


@dataclass
class LoadReport:
    rows: int = 0
    bad_columns: int = 0  # rows without exactly two fields
    empty_name: int = 0  # names with no character left after normalisation
    unknown_label: int = 0  # labels that training never saw (test file only)
    not_a_name: int = 0  # rows whose "name" is page text of the source, not a surname (NOT_SURNAMES)
    # What cleaning changed in the names kept: normalize_name, the same function serving uses.
    bom: int = 0  # 1 when the file began with a byte-order mark (read as utf-8-sig, so removed)
    trimmed_spaces: int = 0  # names with spaces at an edge ("Park ")
    trimmed_punctuation: int = 0  # names with punctuation at an edge ("Lytkin,")
    format_chars: int = 0  # names with invisible format characters deleted (U+FEFF, soft hyphen, zero-width space)
    last_first: int = 0  # "LAST, First" names, cut at the comma
    lookalikes: int = 0  # names with a letter of another script read as its lookalike (Cyrillic о in Nоvak)
    transliterated: int = 0  # names with non-ASCII letters read as ASCII (Müller -> muller)
    # Labels that repeat or disagree (after cleaning): the same name may carry several languages.
    duplicate_rows: int = 0  # rows whose (name, label) pair occurred in an earlier row
    conflicting_names: int = 0  # distinct names that carry two or more labels
    conflicting_rows: int = 0  # rows of those names

    @property
    def cleaned(self) -> dict[str, int]:
        """The non-zero counts of what cleaning changed, for the log."""
        keys = ("bom", "trimmed_spaces", "trimmed_punctuation", "format_chars", "last_first", "lookalikes",
                "transliterated")  # fmt: skip
        return {k: getattr(self, k) for k in keys if getattr(self, k)}

    @property
    def skipped(self) -> int:
        return self.bad_columns + self.empty_name + self.unknown_label + self.not_a_name


# Navigation text scraped with the source lists (16 training and 8 test rows, all labelled Russian):
# kept, it taught the model that a name with spaces is Russian ("Van den Berg" -> Russian 95%).
NOT_SURNAMES = frozenset({"to the first page"})  # normalised text


def read_rows(path: Path) -> list[list[str]]:
    """The rows of a gzipped UTF-8 CSV file, read as utf-8-sig: a byte-order mark at its start is removed."""
    try:
        with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
            return list(csv.reader(io.StringIO(f.read())))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} is not a readable gzipped UTF-8 CSV file: {e}") from e


def has_bom(path: Path) -> bool:
    """Whether the (readable) gzipped file begins with a UTF-8 byte-order mark."""
    with gzip.open(path, "rb") as f:
        return f.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8


def parse(
    rows: list[list[str]], label_index: dict[str, int] | None
) -> tuple[list[str], list[str], list[str], LoadReport]:
    """Validate rows and clean their names with normalize_name, counting what it changed; with
    label_index given, labels outside it are counted and skipped."""
    report = LoadReport(rows=len(rows))
    raw, names, labels = [], [], []
    for row in rows:
        if len(row) != 2:
            report.bad_columns += 1
            continue
        norm, label = normalize_name(row[0]), row[1].strip()
        if not norm.text:
            report.empty_name += 1
        elif norm.text in NOT_SURNAMES:
            report.not_a_name += 1
        elif not label or (label_index is not None and label not in label_index):
            report.unknown_label += 1
        else:
            raw.append(row[0])
            names.append(norm.text)
            labels.append(label)
            report.trimmed_spaces += row[0] != row[0].strip()
            report.trimmed_punctuation += bool(norm.stripped)
            report.format_chars += norm.format_chars
            report.last_first += bool(norm.given)
            report.lookalikes += bool(norm.lookalikes)
            report.transliterated += norm.transliterated
    count_repeats(report, names, labels)
    return raw, names, labels, report


def labels_by_name(names: list, labels: list) -> dict[str, Counter]:
    """{name: Counter of its labels}, names in first-seen order."""
    by_name: dict[str, Counter] = {}
    for name, label in zip(names, labels, strict=True):
        by_name.setdefault(name, Counter())[label] += 1
    return by_name


def count_repeats(report: LoadReport, names: list[str], labels: list[str]) -> None:
    """Fill the report's duplicate and conflicting-label counts."""
    by_name = labels_by_name(names, labels)
    report.duplicate_rows = len(names) - sum(len(c) for c in by_name.values())
    conflicting = [c for c in by_name.values() if len(c) > 1]
    report.conflicting_names = len(conflicting)
    report.conflicting_rows = sum(sum(c.values()) for c in conflicting)


@dataclass
class Dataset:
    encoder: CharEncoder
    labels: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    checksums: dict[str, str]
    reports: dict[str, LoadReport]


def stratified_split(labels: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices (keep, held_out) with about `fraction` of every class held out, seeded."""
    gen = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    keep, held = [], []
    for y in sorted(by_class):
        idx = by_class[y]
        order = torch.randperm(len(idx), generator=gen).tolist()
        n_held = round(len(idx) * fraction) if len(idx) > 1 else 0
        held += [idx[j] for j in order[:n_held]]
        keep += [idx[j] for j in order[n_held:]]
    return sorted(keep), sorted(held)


def load(data_dir: Path, val_fraction: float, seed: int, max_train_rows: int = 0) -> Dataset:
    """Read both files, derive the alphabet and label list from train, carve validation."""
    train_rows = read_rows(data_dir / "names_train.csv.gz")
    if 0 < max_train_rows < len(train_rows):  # evenly spaced, so every class stays represented
        step = len(train_rows) / max_train_rows
        train_rows = [train_rows[int(i * step)] for i in range(max_train_rows)]
    raw, names, labels, train_report = parse(train_rows, None)
    train_report.bom = int(has_bom(data_dir / "names_train.csv.gz"))
    if not names:
        raise DataError(f"{data_dir / 'names_train.csv.gz'} holds no usable rows.")
    label_list = tuple(sorted(set(labels)))
    label_index = {lab: i for i, lab in enumerate(label_list)}
    t_raw, t_names, t_labels, test_report = parse(read_rows(data_dir / "names_test.csv.gz"), label_index)
    test_report.bom = int(has_bom(data_dir / "names_test.csv.gz"))
    for split, report in (("train", train_report), ("test", test_report)):
        if report.skipped:
            log.warning("%s: skipped %d of %d rows (%s)", split, report.skipped, report.rows, report)
        if report.cleaned:
            log.info("%s: cleaned names (%s)", split, ", ".join(f"{k} {n}" for k, n in report.cleaned.items()))
        log.info("%s: %d duplicate rows; %d names carry two or more labels (%d rows)", split,
                 report.duplicate_rows, report.conflicting_names, report.conflicting_rows)  # fmt: skip
    y = [label_index[lab] for lab in labels]
    keep, held = stratified_split(y, val_fraction, seed)
    encoder = CharEncoder.fit(names[i] for i in keep)  # clean names: no comma, no U+FEFF, no stray edges
    pick = lambda idx: Split([names[i] for i in idx], [y[i] for i in idx], [raw[i] for i in idx])  # noqa: E731
    test = Split(t_names, [label_index[lab] for lab in t_labels], t_raw)
    checksums = {name: sha256(data_dir / name) for name in FILES}
    return Dataset(
        encoder, label_list, pick(keep), pick(held), test, checksums, {"train": train_report, "test": test_report}
    )


@dataclass
class Encoded:
    """A split encoded once: padded indices, lengths and labels, kept on the target device."""

    x: torch.Tensor  # (n, max_len) int64
    lengths: torch.Tensor  # (n,) int64, on CPU (pack_padded_sequence wants them there)
    y: torch.Tensor  # (n,) int64 labels, or (n, classes) float soft targets (targets "names")

    def __len__(self) -> int:
        return len(self.y)

    @functools.cached_property
    def distinct(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(names (distinct, max_len), inverse (n,), lengths (distinct,) on CPU): each distinct name
        once, for evaluation. Cached: torch.unique sorts the whole split, so it runs once per run, not per epoch."""
        names, inverse = torch.unique(self.x, dim=0, return_inverse=True)
        lengths = torch.zeros(len(names), dtype=self.lengths.dtype).scatter_(0, inverse.cpu(), self.lengths)
        return names, inverse.cpu(), lengths


def encode_split(split: Split, encoder: CharEncoder, device: torch.device) -> Encoded:
    x, lengths = pad_batch([encoder.encode(n) for n in split.names])
    return Encoded(x.to(device), lengths, torch.tensor(split.labels, dtype=torch.long, device=device))


def bucketed_batches(lengths: torch.Tensor, batch_size: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches of similar-length names (little wasted padding), sorted longest first.

    With a generator: shuffled within lengths and in batch order. Without: deterministic order.
    """
    n = len(lengths)
    noise = torch.rand(n, generator=gen) if gen is not None else torch.arange(n) / n
    order = torch.argsort(lengths.double() + noise * 0.999, descending=True)  # ties broken randomly
    batches = list(order.split(batch_size))
    if gen is not None:
        batches = [batches[i] for i in torch.randperm(len(batches), generator=gen).tolist()]
    return batches


def label_mass(split: Split, num_classes: int, targets: str = "rows") -> list[float]:
    """How much training weight each class gets: its rows, or (targets "names") each distinct name's
    one unit shared among the labels it carries."""
    if targets != "names":
        return [float(c) for c in class_counts(split, num_classes)]
    mass = [0.0] * num_classes
    for labels in labels_by_name(split.names, split.labels).values():
        for label, n in labels.items():
            mass[label] += n / sum(labels.values())
    return mass


def class_counts(split: Split, num_classes: int) -> list[int]:
    counts = Counter(split.labels)
    return [counts.get(i, 0) for i in range(num_classes)]
