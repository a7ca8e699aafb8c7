"""The Batch tab without the UI: names from pasted text or any spreadsheet file, one table row per
input row (unreadable ones keep their row and reason; the first column, "row", is the row's number in
the file or the line's in the pasted text), a CSV to download, and the status line.
"""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

import pandas as pd

from name_origin import tabular
from name_origin.calibration import DEFAULT_PRIOR, PriorError
from name_origin.encoding import InvalidNameError
from name_origin.predict import Prediction, Predictor
from name_origin.tabular import Table, TableError
from name_origin.views import GENERIC_ERROR, classify_many, md_escape

log = logging.getLogger(__name__)
SHOWN_ROWS, KEEP_CSVS = 1000, 50  # rows shown on the page; CSVs kept for download
HEADER_CHOICES = {"auto": None, "yes": True, "no": False}  # the Batch tab's "first row is a header"
BATCH_COLUMNS = ["row", "name", "language", "confidence", "unsure"]
LABEL_CHARS = 40  # a column menu label's header cell and example value are cut to this many characters
TEXT_IGNORED = "The pasted names were ignored: the uploaded file was read (remove the file to classify them)."


def header_choice(header: str | bool | None) -> bool | None:
    """The Batch tab's "auto" / "yes" / "no" as tabular takes it: None (detect), True, False."""
    return HEADER_CHOICES.get(header) if isinstance(header, str) else header


def names_from_csv(path: str | Path, header: str | bool | None = None, column: int | str | None = None) -> Table:
    """An uploaded CSV or text file as name_origin.tabular reads it: any encoding, separator and header
    a spreadsheet writes; one name per data row (a blank or unreadable one with its reason)."""
    return tabular.read_file(path, header_choice(header), column)


def short(text: str, limit: int = LABEL_CHARS) -> str:
    """text on one line, cut to `limit` characters with an ellipsis when longer."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def column_choices(file_path: str | None, header: str | bool | None = None) -> tuple[list[tuple[str, int]], int | None]:
    """The Batch tab's column menu for an upload: ((label, index) per column, the index picked by default).
    Never raises: no file, or one that cannot be read, gives no choices (the batch run then says why)."""
    if not file_path:
        return [], None
    try:
        table = names_from_csv(file_path, header)
    except TableError:
        return [], None
    except Exception:
        log.exception("reading the columns of an upload failed")
        return [], None
    pairs = zip(table.columns, table.examples, strict=True)
    labels = [short(c) if not e or c == e else f"{short(c)} (e.g. {short(e)})" for c, e in pairs]
    return [(label, i) for i, label in enumerate(labels)], table.column


def batch_row(row: int, name: str, result: Prediction | InvalidNameError, dropped: str) -> dict:
    """One row of the batch table: its input row, the answer, notes on what was changed, every probability."""
    if not isinstance(result, Prediction):
        return {"row": row, "name": name, "note": str(result)}
    norm = result.normalized
    source = f" (from {norm.script})" if norm.native else ""
    notes = [f"transliterated → {norm.text}{source}"] * norm.transliterated
    notes += [result.script.short] if result.script else []
    notes += list(norm.notes)
    notes += [f"ignored {' '.join(dropped)}"] * bool(dropped)
    seen = ", ".join(f"{k} ×{n}" for k, n in result.evidence.items())
    top = {"language": result.top[0], "confidence": result.top[1], "unsure": result.abstain}
    answer = {**top, "prediction set": " or ".join(result.prediction_set), "seen in training": seen}
    return {"row": row, "name": name, **answer, "note": "; ".join(notes), **result.probs}


def batch_frame(
    predictor: Predictor, names: list[str], prior=DEFAULT_PRIOR, rows: list[int] | None = None
) -> pd.DataFrame:
    """One row per name: its input row (rows; 1, 2, ... by default), the answer under `prior`, its
    prediction set, notes, every probability."""
    columns = [*BATCH_COLUMNS, "prediction set", "seen in training", "note", *predictor.labels]
    rows = list(range(1, len(names) + 1)) if rows is None else rows
    answers = classify_many(predictor, names, prior)
    out = [batch_row(r, name, result, dropped) for r, (name, result, dropped) in zip(rows, answers, strict=True)]
    return pd.DataFrame(out, columns=columns).round(4)


def write_csv(frame: pd.DataFrame, out_dir: Path, keep: int = KEEP_CSVS) -> Path:
    """The full table as CSV; names that look like spreadsheet formulas get a leading quote.
    Only the newest `keep` CSVs of out_dir are kept."""
    safe = frame.assign(name=frame["name"].map(lambda s: "'" + s if s[:1] in ("=", "+", "-", "@", "\t") else s))
    for old in sorted(out_dir.glob("*.csv"), key=lambda f: f.stat().st_mtime)[:-keep]:
        old.unlink(missing_ok=True)
    path = out_dir / f"name-origin-{uuid.uuid4().hex[:8]}.csv"
    safe.to_csv(path, index=False, encoding="utf-8-sig")  # the byte-order mark: Excel then reads it as UTF-8
    return path


def batch_names(
    text: str | None, file_path: str | None, header: str | bool | None = None, column: int | str | None = None
) -> Table:
    """The names of a batch request: the uploaded file's names column if any, else the non-blank lines."""
    if file_path:
        return names_from_csv(file_path, header, column)
    return tabular.from_text(text)


def with_problems(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """frame (one row per name of table) with the rows tabular found unreadable (blank cell, U+FFFD, ...)
    holding only the name and that reason: never classified, never dropped, so rows stay aligned."""
    if not any(table.problems):
        return frame
    records = frame.to_dict("records")
    rows = [{"row": r["row"], "name": n, "note": p} if p else r
            for r, n, p in zip(records, table.names, table.problems, strict=True)]  # fmt: skip
    return pd.DataFrame(rows, columns=frame.columns)


def batch_status(
    frame: pd.DataFrame,
    file_path: str | None,
    seconds: float,
    shown_rows: int,
    table: Table | None = None,
    text_ignored: bool = False,
) -> str:
    """The Markdown above the batch table: counts, time, whether the table is cut, how a file was read,
    and (text_ignored) that names were pasted too but the file was read instead."""
    bad, unsure = int(frame["language"].isna().sum()), int(frame["unsure"].eq(True).sum())
    source = f" from {md_escape(Path(file_path).name)}" if file_path else ""
    status = f"{len(frame):,} names{source} in {seconds:.2f} s: {len(frame) - bad:,} classified "
    status += f"({unsure:,} unsure), {bad:,} unreadable" + (" (see *note*, the last column)." if bad else ".")
    if len(frame) > shown_rows:
        status += f" Showing the first {shown_rows:,} rows; the CSV holds all of them."
    if file_path and table is not None:
        status += "\n\n" + ("⚠️ " if table.guessed else "") + md_escape(table.describe())
    if file_path and text_ignored:
        status += "\n\n" + TEXT_IGNORED
    return status


def run_batch(
    predictor: Predictor,
    text: str | None,
    file_path: str | None,
    out_dir: Path,
    shown_rows: int = SHOWN_ROWS,
    header: str | bool | None = None,
    column: int | str | None = None,
    prior=DEFAULT_PRIOR,
) -> tuple[pd.DataFrame, str | None, str]:
    """Batch tab: (table shown, CSV path, status). header ("auto"/"yes"/"no", or None/True/False) and
    column (index or header text; None picks it) say how to read an uploaded file; prior as for
    Predictor.predict_batch. Never raises. Pasted text beside an uploaded file is not read: the status says so."""
    empty = pd.DataFrame(columns=BATCH_COLUMNS)
    ignored = bool(file_path) and bool((text or "").strip())
    also = "\n\n" + TEXT_IGNORED if ignored else ""
    try:
        table = batch_names(text, file_path, header, column)
        if not table.names and file_path:
            return empty, None, "⚠️ That file holds no names (only a header row?)." + also
        if not table.names:
            return empty, None, "⚠️ Paste surnames, one per line, or upload a CSV whose first column holds them."
        start = time.perf_counter()
        frame = batch_frame(predictor, table.names, prior, table.rows)  # every row counts toward the limit
        frame = with_problems(frame, table)
        path = write_csv(frame, out_dir)
    except (InvalidNameError, PriorError, TableError) as e:
        return empty, None, f"⚠️ {md_escape(str(e))}" + also
    except Exception:
        log.exception("batch failed")
        return empty, None, f"⚠️ {GENERIC_ERROR}"
    status = batch_status(frame, file_path, time.perf_counter() - start, shown_rows, table, ignored)
    return frame.head(shown_rows), str(path), status
