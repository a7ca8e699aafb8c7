"""Inference: load a run folder and classify names (single, batch), explain, show evidence.

An answer is the model's calibrated probabilities (training prior), shifted to the prior asked for
(name_origin.calibration), weighted by what the name's script and letters say (name_origin.scripts),
with the abstention threshold and the conformal prediction set of that prior. Each distinct name
runs once, in batches of one exact length (no padding), under torch.inference_mode; a request
with names of several lengths spreads those batches over `workers` Python threads (torch and
ONNX Runtime release the GIL). The logits come from the run's model.onnx through ONNX Runtime
when it agrees with the weights (name_origin.runtime), else from the PyTorch model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from name_origin import calibration as C
from name_origin.encoding import UNK, CharEncoder, InvalidNameError, Normalized, pad_batch
from name_origin.evidence import EVIDENCE_NAME, Evidence
from name_origin.hub import short
from name_origin.model import NameGRU, combine_members
from name_origin.runtime import ONNX_NAME, OnnxMembers, check_agreement
from name_origin.scripts import ScriptPrior, script_prior

log = logging.getLogger(__name__)

MAX_BATCH = 10_000  # names per batch request
MAX_SETTINGS = 64  # priors whose threshold and quantile are kept (the named ones are never dropped)
HELDOUT_NAME = "heldout.safetensors"  # validation's calibrated probabilities and labels (run folder)


@dataclass
class Prediction:
    name: str  # as typed, trimmed
    normalized: Normalized
    probs: dict[str, float]  # every label under `prior` and the script prior, highest first
    abstain: bool  # top probability under the threshold of this prior
    evidence: dict[str, int] = field(default_factory=dict)  # training label counts of this exact name
    model_probs: dict[str, float] = field(default_factory=dict)  # the model's alone (training prior), same order
    script: ScriptPrior | None = None  # what the name's script and letters say (None: plain ASCII)
    prior: str = "training"  # the prior over languages used: "training", "equal" or "custom"
    prediction_set: tuple[str, ...] = ()  # conformal set at Predictor.coverage (empty: no held-out data)

    @property
    def top(self) -> tuple[str, float]:
        return next(iter(self.probs.items()))

    @property
    def letters_used(self) -> bool:
        """Whether the model's reading of the letters moved the answer (not for Han alone: the prior decides)."""
        return self.script is None or self.script.reading_is_evidence

    def copy_for(self, name: str, normalized: Normalized) -> Prediction:
        """This answer for one input row (rows sharing a normalised name share the answer, not its dicts)."""
        return dataclasses.replace(self, name=name, normalized=normalized, probs=dict(self.probs),
                                   evidence=dict(self.evidence), model_probs=dict(self.model_probs))  # fmt: skip


@dataclass(frozen=True)
class Setting:
    """How answers are made under one prior."""

    name: str  # "training", "equal" or "custom"
    prior: torch.Tensor  # (classes,) sums to 1
    threshold: float  # abstain when the top probability is below this
    quantile: float | None  # conformal LAC quantile from validation; None without held-out data


class Predictor:
    def __init__(self, model: NameGRU, config: dict, run_dir: Path, workers: int = 1):
        self.model = model.eval()
        self.workers = workers  # threads a request's exact-length batches run on (each uses torch's threads)
        self.run_dir = Path(run_dir)
        self.labels = model.config.labels
        self.encoder = CharEncoder(model.config.alphabet)
        calibration = config.get("calibration", {})
        self.temperature = float(calibration.get("temperature", 1.0))
        self.threshold = float(calibration.get("abstain_threshold", 0.0))  # training prior, without held-out data
        self.abstain_target = float(config.get("train", {}).get("abstain_target", 0.9))
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"calibration temperature must be a positive number, not {self.temperature}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"abstain_threshold must be within [0, 1], not {self.threshold}")
        path = self.run_dir / EVIDENCE_NAME
        self.evidence = Evidence.load(path) if path.is_file() else None
        path = self.run_dir / HELDOUT_NAME
        self.heldout = load_file(path) if path.is_file() else None  # {"probs": (n, classes), "labels": (n,)}
        self.training_prior = self._training_prior(config.get("label_prior"))
        self.coverage = C.COVERAGE if self.heldout is not None else None
        self._settings: dict[str, Setting] = {}
        self._lock = threading.Lock()
        self.onnx: OnnxMembers | None = None  # set by use_onnx: the session that computes the logits
        self.runtime = "PyTorch"  # what computes the logits, and why (shown on the Model tab)

    def _training_prior(self, saved: dict | None) -> torch.Tensor:
        """(classes,) the prior the probabilities carry: config's label_prior, else the evidence
        file's label totals (older runs), else uniform."""
        if saved:
            counts = torch.tensor([float(saved.get(label, 0.0)) for label in self.labels])
        elif self.evidence is not None:
            counts = torch.zeros(len(self.labels)).index_add_(
                0, self.evidence.label.long(), self.evidence.count.float()
            )
        else:
            counts = torch.ones(len(self.labels))
        return counts.clamp(min=1e-6) / counts.clamp(min=1e-6).sum()

    @classmethod
    def from_dir(cls, run_dir: str | Path, workers: int = 1, onnx: bool = True) -> Predictor:
        """Strict safetensors load of a run folder (config.json + model.safetensors); with `onnx`,
        its model.onnx computes the logits when it agrees with those weights (use_onnx)."""
        run_dir = Path(run_dir)
        config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
        predictor = cls(NameGRU.from_pretrained(str(run_dir)), config, run_dir, workers)
        if onnx:
            predictor.use_onnx()
        return predictor

    def use_onnx(self) -> bool:
        """Serve through run_dir/model.onnx if ONNX Runtime loads it and it gives these weights'
        logits (runtime.check_agreement); otherwise PyTorch serves. Never raises: `runtime` says
        which serves and why, for the Model tab and the log."""
        path = self.run_dir / ONNX_NAME
        if not path.is_file():
            self.runtime = f"PyTorch (this run has no {ONNX_NAME})"
            return False
        try:
            session = OnnxMembers(path)
            worst = check_agreement(session, self.model)
        except Exception as e:  # noqa: BLE001 - missing onnxruntime, a corrupt or foreign file: PyTorch serves
            reason = short(e, hide=self.run_dir)  # no server paths on the page
            log.warning("%s not used, PyTorch serves: %s", path, reason)
            self.runtime = f"PyTorch ({ONNX_NAME} not used: {reason})"
            return False
        self.onnx = session
        self.runtime = f"ONNX Runtime ({ONNX_NAME}; its logits agree with the PyTorch weights to {worst:.0e})"
        return True

    def metrics(self) -> dict | None:
        """metrics.json, or None when it is missing or unreadable (the app then says so)."""
        try:
            return json.loads((self.run_dir / "metrics.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def setting(self, prior: str | dict | None = C.DEFAULT_PRIOR) -> Setting:
        """The Setting of a prior ("training", "equal" or {language: weight}); raises PriorError.
        Threshold and quantile are fitted on validation shifted to that prior, as at training."""
        name, target = C.resolve_prior(prior, self.labels, self.training_prior)
        key = name if name != "custom" else repr(target.tolist())
        with self._lock:  # the app answers several requests at once
            if key not in self._settings:
                if len(self._settings) >= MAX_SETTINGS:  # custom priors come from API callers: keep the newest
                    self._settings.pop(next(k for k in self._settings if k not in C.PRIOR_CHOICES))
                self._settings[key] = self._fit(name, target)
            return self._settings[key]

    def _fit(self, name: str, target: torch.Tensor) -> Setting:
        """Threshold and conformal quantile of a prior, from the held-out names whose language it
        allows (a language of prior 0 cannot be the answer, so its names say nothing of the sets),
        weighted so their languages follow the prior (calibration.fit_prior)."""
        if self.heldout is None:
            return Setting(name, target, self.threshold if name == "training" else 0.0, None)
        y = self.heldout["labels"].long()
        allowed = target[y] > 0
        probs, y = C.shift_prior(self.heldout["probs"].float()[allowed], self.training_prior, target), y[allowed]
        threshold, quantile = C.fit_prior(probs, y, None if name == "training" else target, self.abstain_target)
        return Setting(name, target, threshold, quantile)

    def _log_probs(self, encoded: list[list[int]], batch_size: int = 256) -> torch.Tensor:
        """(n, classes) calibrated log-probabilities under the training prior, in input order.
        Names run in batches of one exact length: no padding, so every packed step is full. With
        several batches and workers > 1 they run on that many threads, largest first; the answer is
        the same as on one thread (each batch is computed alike, only where it runs differs)."""
        x, lengths = pad_batch(encoded)
        groups = [
            (idx, length)
            for length in lengths.unique().tolist()
            for idx in (lengths == length).nonzero().squeeze(1).split(batch_size)
        ]
        groups.sort(key=lambda g: -len(g[0]) * g[1])  # (batch, seq) work, longest first

        def run(group: tuple[torch.Tensor, int]) -> torch.Tensor:
            idx, length = group
            return self._exact_length(x[idx, :length], lengths[idx])

        if self.workers > 1 and len(groups) > 1:
            with ThreadPoolExecutor(min(self.workers, len(groups)), thread_name_prefix="name-origin") as pool:
                results = list(pool.map(run, groups))
        else:
            results = [run(g) for g in groups]
        out = torch.empty(len(encoded), len(self.labels))
        for (idx, _), logp in zip(groups, results, strict=True):
            out[idx] = logp
        return out

    def _exact_length(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(batch, seq) indices, every row seq long -> (batch, classes) calibrated log-probabilities,
        from ONNX Runtime when it serves, else from the PyTorch model."""
        with torch.inference_mode():  # thread-local: entered in the thread that runs the batch
            session = self.onnx
            if session is not None:
                try:
                    return combine_members(session(x), self.temperature)  # (members, batch, classes) in
                except Exception as e:  # noqa: BLE001 - a shape the export cannot take: PyTorch answers from now on
                    self.onnx = None
                    reason = short(e, hide=self.run_dir)
                    self.runtime = f"PyTorch ({ONNX_NAME} failed on a batch of shape {tuple(x.shape)}: {reason})"
                    log.warning("%s", self.runtime)
            return self.model(x, lengths, sorted_desc=True, temperature=self.temperature)

    def _evidence(self, normalized: str) -> dict[str, int]:
        if self.evidence is None:
            return {}
        return {self.labels[i]: c for i, c in self.evidence.lookup(normalized).items()}

    def predict(self, raw: str, prior: str | dict | None = C.DEFAULT_PRIOR) -> Prediction:
        """Classify one name; raises InvalidNameError (or PriorError) with a user-facing message."""
        result = self.predict_batch([raw], prior)[0]
        if isinstance(result, InvalidNameError):
            raise result
        return result

    def predict_batch(
        self, raws: list[str], prior: str | dict | None = C.DEFAULT_PRIOR
    ) -> list[Prediction | InvalidNameError]:
        """Classify many names at once; an invalid name yields its error in its place.
        Over MAX_BATCH names raises InvalidNameError: the one place the batch limit is checked."""
        if len(raws) > MAX_BATCH:
            raise InvalidNameError(f"{len(raws):,} names: the limit is {MAX_BATCH:,} per batch. Please split the list.")
        setting = self.setting(prior)
        norms: list[Normalized | InvalidNameError] = []
        for raw in raws:
            try:
                norms.append(self.encoder.validate(raw))
            except InvalidNameError as e:
                norms.append(e)
        keys = list(dict.fromkeys((n.text, n.marks) for n in norms if isinstance(n, Normalized)))
        answers = dict(zip(keys, self._answers(keys, setting), strict=True))
        return [
            n if isinstance(n, InvalidNameError) else answers[n.text, n.marks].copy_for(str(raw).strip(), n)
            for raw, n in zip(raws, norms, strict=True)
        ]

    def _answers(self, keys: list[tuple[str, frozenset]], setting: Setting) -> list[Prediction]:
        """One Prediction per distinct (normalised text, marks); each distinct text runs once."""
        if not keys:
            return []
        texts = list(dict.fromkeys(text for text, _ in keys))
        row = {t: i for i, t in enumerate(texts)}
        model = self._log_probs([self.encoder.encode(t) for t in texts]).exp()[[row[t] for t, _ in keys]]
        scripts = [script_prior(tuple(self.labels), marks) if marks else None for _, marks in keys]
        evidence = model.clone()
        for k, s in enumerate(scripts):
            if s is not None and not s.reading_is_evidence:  # Han alone: p(c|x) = π(c), the prior decides
                evidence[k] = self.training_prior
        probs = C.shift_prior(evidence, self.training_prior, setting.prior)  # (keys, classes)
        if any(scripts):  # p'(c|x) ∝ p(c|x)·π(c|letters)
            weights = torch.tensor([s.weights if s else (1.0,) * len(self.labels) for s in scripts])
            probs = C.shift_prior(probs, torch.ones(len(self.labels)), weights)
        sets = C.prediction_sets(probs, setting.quantile) if setting.quantile is not None else None
        values, order = (t.tolist() for t in probs.sort(dim=1, descending=True, stable=True))
        model, sets = model.tolist(), sets.tolist() if sets is not None else [[False] * len(self.labels)] * len(keys)
        out = []
        for k, (text, _) in enumerate(keys):  # plain lists from here: indexing tensors per element is slow
            o, v, m, member = order[k], values[k], model[k], sets[k]
            ranked = {self.labels[j]: p for j, p in zip(o, v, strict=True)}
            base = {self.labels[j]: m[j] for j in o}
            chosen = tuple(self.labels[j] for j in o if member[j])
            out.append(Prediction(text, None, ranked, v[0] < setting.threshold, self._evidence(text), base, scripts[k],
                                  setting.name, chosen))  # fmt: skip
        return out

    def explain(self, raw: str, label: str | None = None) -> list[tuple[str, float]]:
        """Occlusion: for each character, how much the label's log-probability drops when that
        character is replaced by the unknown symbol. Positive = pushed toward the label."""
        norm = self.encoder.validate(raw)
        ids = self.encoder.encode(norm.text)
        variants = [ids] + [ids[:i] + [UNK] + ids[i + 1 :] for i in range(len(ids))]
        logp = self._log_probs(variants)  # all of one length
        target = self.labels.index(label) if label else int(logp[0].argmax())
        scores = (logp[0, target] - logp[1:, target]).tolist()
        return list(zip(norm.text, scores, strict=True))
