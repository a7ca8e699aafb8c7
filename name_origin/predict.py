"""Inference: load a run folder and classify names (single, batch), explain, show evidence.

Batches are sorted by length (little padding) and run under torch.inference_mode.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from name_origin.encoding import UNK, CharEncoder, InvalidNameError, Normalized, pad_batch
from name_origin.evidence import EVIDENCE_NAME, Evidence
from name_origin.model import NameGRU

MAX_BATCH = 10_000  # names per batch request


@dataclass
class Prediction:
    name: str  # as typed, trimmed
    normalized: Normalized
    probs: dict[str, float]  # every label, calibrated, highest first
    abstain: bool  # top probability under the model's threshold
    evidence: dict[str, int] = field(default_factory=dict)  # training label counts of this exact name

    @property
    def top(self) -> tuple[str, float]:
        return next(iter(self.probs.items()))


class Predictor:
    def __init__(self, model: NameGRU, config: dict, run_dir: Path):
        self.model = model.eval()
        self.run_dir = Path(run_dir)
        self.labels = model.config.labels
        self.encoder = CharEncoder(model.config.alphabet)
        calibration = config.get("calibration", {})
        self.temperature = float(calibration.get("temperature", 1.0))
        self.threshold = float(calibration.get("abstain_threshold", 0.0))
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"calibration temperature must be a positive number, not {self.temperature}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"abstain_threshold must be within [0, 1], not {self.threshold}")
        path = self.run_dir / EVIDENCE_NAME
        self.evidence = Evidence.load(path) if path.is_file() else None

    @classmethod
    def from_dir(cls, run_dir: str | Path) -> Predictor:
        """Strict safetensors load of a run folder (config.json + model.safetensors)."""
        run_dir = Path(run_dir)
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        return cls(NameGRU.from_pretrained(str(run_dir)), config, run_dir)

    def metrics(self) -> dict | None:
        """metrics.json, or None when it is missing or unreadable (the app then says so)."""
        try:
            return json.loads((self.run_dir / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _log_probs(self, encoded: list[list[int]], batch_size: int = 512) -> torch.Tensor:
        """(n, classes) calibrated log-probabilities, in input order."""
        x, lengths = pad_batch(encoded)
        order = torch.argsort(lengths, descending=True, stable=True)
        out = torch.empty(len(encoded), len(self.labels))
        with torch.inference_mode():
            for idx in order.split(batch_size):
                ln = lengths[idx]
                out[idx] = self.model(x[idx, : int(ln.max())], ln, sorted_desc=True, temperature=self.temperature)
        return out

    def _evidence(self, normalized: str) -> dict[str, int]:
        if self.evidence is None:
            return {}
        return {self.labels[i]: c for i, c in self.evidence.lookup(normalized).items()}

    def predict(self, raw: str) -> Prediction:
        """Classify one name; raises InvalidNameError with a user-facing message."""
        norm = self.encoder.validate(raw)
        probs = self._log_probs([self.encoder.encode(norm.text)])[0].exp()
        return self._prediction(str(raw).strip(), norm, probs)

    def _prediction(self, name: str, norm: Normalized, probs: torch.Tensor) -> Prediction:
        values = probs.tolist()
        order = sorted(range(len(values)), key=lambda i: -values[i])  # stable: ties keep label order
        ranked = {self.labels[i]: values[i] for i in order}
        return Prediction(name, norm, ranked, values[order[0]] < self.threshold, self._evidence(norm.text))

    def predict_batch(self, raws: list[str]) -> list[Prediction | InvalidNameError]:
        """Classify many names at once; an invalid name yields its error in its place."""
        if len(raws) > MAX_BATCH:
            raise InvalidNameError(f"{len(raws):,} names: the limit is {MAX_BATCH:,} per batch.")
        results: list[Prediction | InvalidNameError] = []
        valid: list[tuple[int, Normalized]] = []
        for i, raw in enumerate(raws):
            try:
                valid.append((i, self.encoder.validate(raw)))
                results.append(None)  # type: ignore[arg-type]
            except InvalidNameError as e:
                results.append(e)
        if valid:  # each distinct normalised name runs once; ranking is one sort, not one per row
            texts = list(dict.fromkeys(norm.text for _, norm in valid))
            probs = self._log_probs([self.encoder.encode(t) for t in texts]).exp()
            values, order = (t.tolist() for t in probs.sort(dim=1, descending=True, stable=True))
            ranked = {
                t: ({self.labels[j]: v for j, v in zip(o, vs, strict=True)}, vs[0] < self.threshold, self._evidence(t))
                for t, o, vs in zip(texts, order, values, strict=True)
            }
            for i, norm in valid:
                top, abstain, seen = ranked[norm.text]
                results[i] = Prediction(str(raws[i]).strip(), norm, dict(top), abstain, dict(seen))
        return results

    def explain(self, raw: str, label: str | None = None) -> list[tuple[str, float]]:
        """Occlusion: for each character, how much the label's log-probability drops when that
        character is replaced by the unknown symbol. Positive = pushed toward the label."""
        norm = self.encoder.validate(raw)
        ids = self.encoder.encode(norm.text)
        variants = [ids] + [ids[:i] + [UNK] + ids[i + 1 :] for i in range(len(ids))]
        logp = self._log_probs(variants)  # all of one length: one fused batch when short enough
        target = self.labels.index(label) if label else int(logp[0].argmax())
        scores = (logp[0, target] - logp[1:, target]).tolist()
        return list(zip(norm.text, scores, strict=True))
