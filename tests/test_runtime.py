"""model.onnx under ONNX Runtime: the same answers as the PyTorch model, and PyTorch serves (with
the reason shown) when the file is missing, corrupt, another run's, or onnxruntime is absent."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import app
from name_origin.config import ModelConfig
from name_origin.model import BiGRUClassifier, NameGRU
from name_origin.model_tab import served_text
from name_origin.predict import Predictor
from name_origin.runtime import ONNX_NAME, OnnxMembers, OnnxMismatchError, check_agreement
from trainer import report
from trainer.data import read_rows

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def table(answers, labels) -> torch.Tensor:
    """(names, classes) probabilities in label order: the model's, and the final (prior, script)."""
    return torch.tensor([[[p.model_probs[k], p.probs[k]] for k in labels] for p in answers])


def test_forward_without_lengths_is_the_packed_forward():
    torch.manual_seed(0)
    member = BiGRUClassifier(ModelConfig(alphabet=" 'abcdef", labels=("A", "B", "C"), embed_dim=8, hidden_size=8))
    x = torch.randint(2, member.embedding.num_embeddings, (5, 7))
    with torch.inference_mode():
        packed = member.eval()(x, torch.full((5,), 7), sorted_desc=True)
        unpacked = member(x, None)
    torch.testing.assert_close(unpacked, packed, rtol=0, atol=1e-6)


@pytest.mark.parametrize("where", ["bundled", "tiny"])
def test_onnx_runtime_answers_as_the_pytorch_model(where, tiny_run, real_data_dir):
    """Every answer of the served model (probabilities, prior shift, sets, abstention, explanation)
    is the PyTorch model's to 1e-5, over test names of every length and in every script."""
    run = ROOT / "model" if where == "bundled" else tiny_run
    fast, slow = Predictor.from_dir(run), Predictor.from_dir(run, onnx=False)
    assert fast.onnx is not None and fast.runtime.startswith("ONNX Runtime (model.onnx"), fast.runtime
    assert slow.onnx is None
    names = [name for name, _ in read_rows(real_data_dir / "names_test.csv.gz")][::25] + list(app.EXAMPLES)
    assert len({len(n) for n in names}) > 8
    for prior in ("training", "equal"):
        a, b = fast.predict_batch(names, prior), slow.predict_batch(names, prior)
        torch.testing.assert_close(table(a, fast.labels), table(b, fast.labels), rtol=0, atol=1e-5)
        assert [p.prediction_set for p in a] == [p.prediction_set for p in b]
        assert [p.abstain for p in a] == [p.abstain for p in b]
    for name in ("Nakamura", "O'Neill", "Papadopoulos"):
        torch.testing.assert_close(torch.tensor([s for _, s in fast.explain(name)]),
                                   torch.tensor([s for _, s in slow.explain(name)]), rtol=0, atol=1e-4)  # fmt: skip


@pytest.fixture
def onnx_run(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    return run


def served_by_pytorch(run, why: str, caplog) -> Predictor:
    with caplog.at_level(logging.WARNING, logger="name_origin.predict"):
        predictor = Predictor.from_dir(run)
    assert predictor.onnx is None and predictor.runtime.startswith("PyTorch (") and why in predictor.runtime
    reference = Predictor.from_dir(run, onnx=False)
    assert [p.probs for p in predictor.predict_batch(["Rossi", "Ivanov"])] == [
        p.probs for p in reference.predict_batch(["Rossi", "Ivanov"])
    ]
    return predictor


def test_no_model_onnx_serves_pytorch(onnx_run, caplog):
    (onnx_run / ONNX_NAME).unlink()
    served_by_pytorch(onnx_run, "this run has no model.onnx", caplog)


@pytest.mark.parametrize("damage", ["truncated", "not onnx", "empty"])
def test_corrupt_model_onnx_serves_pytorch_with_the_reason(onnx_run, caplog, damage):
    path = onnx_run / ONNX_NAME
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "not onnx": b"<html>404</html>", "empty": b""}[damage])
    predictor = served_by_pytorch(onnx_run, "model.onnx not used:", caplog)
    assert "model.onnx not used" in caplog.text
    assert str(onnx_run) not in predictor.runtime and str(onnx_run.parent) not in predictor.runtime  # no server paths


class OnlyBatchOf:
    """A session that answers like the real one for one batch size only (an export with a fixed batch)."""

    def __init__(self, session: OnnxMembers, size: int):
        self.session, self.size = session, size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.size:
            raise RuntimeError(f"[ONNXRuntimeError] INVALID_ARGUMENT: index: 0 Got: {x.shape[0]} Expected: {self.size}")
        return self.session(x)


@pytest.mark.parametrize("size", [1, 3, 4])
def test_the_probe_refuses_an_export_of_one_batch_size(tiny_run, size):
    model = NameGRU.from_pretrained(str(tiny_run))
    with pytest.raises(RuntimeError, match="INVALID_ARGUMENT"):
        check_agreement(OnlyBatchOf(OnnxMembers(tiny_run / ONNX_NAME), size), model)


def test_onnx_failing_at_run_time_hands_over_to_pytorch(tiny_run, caplog):
    predictor, reference = Predictor.from_dir(tiny_run), Predictor.from_dir(tiny_run, onnx=False)
    predictor.onnx = OnlyBatchOf(predictor.onnx, 3)
    with caplog.at_level(logging.WARNING, logger="name_origin.predict"):
        answer = predictor.predict("Rossi")
    assert answer.probs == reference.predict("Rossi").probs and predictor.onnx is None
    assert (
        predictor.runtime.startswith("PyTorch (model.onnx failed on a batch of shape (1, 5)")
        and "Got: 1" in caplog.text
    )


def test_another_runs_export_is_refused(onnx_run, caplog):
    """Same shapes, other weights (a stale export beside retrained weights): the probe sees it."""
    weights = load_file(onnx_run / "model.safetensors")
    key = next(k for k in weights if k.endswith("head.bias"))
    weights[key] = weights[key] + 0.5
    save_file(weights, onnx_run / "model.safetensors")
    served_by_pytorch(onnx_run, "differs from model.safetensors", caplog)


def test_an_export_of_other_shapes_is_refused(onnx_run, caplog):
    shutil.copy(ROOT / "model" / ONNX_NAME, onnx_run / ONNX_NAME)  # 3 members, hidden 128: not the tiny run's
    served_by_pytorch(onnx_run, "not used", caplog)


def test_without_onnxruntime_pytorch_serves(onnx_run, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if it were not installed
    served_by_pytorch(onnx_run, "ModuleNotFoundError", caplog)


def test_check_agreement_reports_the_worst_difference(tiny_run):
    model = NameGRU.from_pretrained(str(tiny_run))
    session = OnnxMembers(tiny_run / ONNX_NAME)
    assert 0 <= check_agreement(session, model) <= 1e-5
    with torch.no_grad():
        model.members[0].head.bias.add_(1e-3)  # just above the tolerance
    with pytest.raises(OnnxMismatchError, match="differs from model.safetensors by 0.001"):
        check_agreement(session, model)


def test_model_tab_says_what_computes_the_logits(tiny_run):
    from name_origin.hub import ResolvedModel

    resolved = ResolvedModel(tiny_run, "bundled", None, [])
    text = served_text(resolved, Predictor.from_dir(tiny_run).runtime)
    assert "Its logits come from ONNX Runtime" in text and "model\\.onnx" in text and str(tiny_run) not in text


def test_a_failed_export_keeps_the_run_and_says_how_to_retry(tiny_run, monkeypatch, caplog, tmp_path):
    import trainer.export

    def broken(model, run_dir):
        raise RuntimeError("exporter bug")

    monkeypatch.setattr(trainer.export, "export_onnx", broken)
    with caplog.at_level(logging.ERROR, logger="trainer.report"):
        assert report.write_onnx(NameGRU.from_pretrained(str(tiny_run)), tmp_path) is False
    assert "python -m trainer export" in caplog.text and "exporter bug" in caplog.text  # with its traceback


@pytest.mark.slow  # three real exports (~10 s each)
def test_exports_in_one_process_all_serve_and_a_refused_one_keeps_the_old_file(tiny_run, tmp_path, monkeypatch):
    """torch 2.13 fixed the length of a second export in one process (trainer.export.forget_gru_dispatch)."""
    import trainer.export
    from trainer.export import export_onnx

    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        shutil.copytree(tiny_run, run)
        (run / ONNX_NAME).unlink()
        export_onnx(NameGRU.from_pretrained(str(run)), run)
        assert Predictor.from_dir(run).runtime.startswith("ONNX Runtime"), run
    before = (runs[0] / ONNX_NAME).read_bytes()

    def refuse(session, model):
        raise OnnxMismatchError("refused")

    monkeypatch.setattr(trainer.export, "check_agreement", refuse)
    with pytest.raises(OnnxMismatchError):
        export_onnx(NameGRU.from_pretrained(str(runs[0])), runs[0])
    assert (runs[0] / ONNX_NAME).read_bytes() == before and sorted(p.name for p in runs[0].glob(".*")) == []


@pytest.mark.slow  # one real export in a fresh process (~10 s)
def test_export_command_adds_model_onnx_to_a_run(onnx_run):
    (onnx_run / ONNX_NAME).unlink()
    res = subprocess.run([sys.executable, "-m", "trainer", "export", str(onnx_run)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (
        f"wrote {onnx_run / ONNX_NAME}" in res.stdout
        and "onnx_ir" not in res.stderr
        and "torchvision" not in res.stderr
    )
    assert Predictor.from_dir(onnx_run).runtime.startswith("ONNX Runtime")


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_export_of_weights_that_do_not_load_is_one_line(onnx_run, caplog, damage):
    from trainer.cli import main

    weights = onnx_run / "model.safetensors"
    weights.unlink() if damage == "missing" else weights.write_bytes(b"not a safetensors file")
    with caplog.at_level(logging.ERROR, logger="trainer"):
        assert main(["export", str(onnx_run)]) == 1
    expected = "holds no model.safetensors" if damage == "missing" else "does not load"
    assert expected in caplog.text and "Traceback" not in caplog.text


def test_weights_as_float16_keeps_every_result_bit_identical(tmp_path):
    """Weights float16 holds exactly are stored as float16 (cast back at load); others stay float32."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from trainer.export import weights_as_float16

    rng = np.random.default_rng(0)
    exact = rng.standard_normal((16, 8)).astype(np.float16).astype(np.float32)  # as the run's weights are
    inexact = rng.standard_normal((8, 4)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(exact, "w1"), numpy_helper.from_array(inexact, "w2")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.standard_normal((5, 16)).astype(np.float32)
    before = ort.InferenceSession(proto.SerializeToString()).run(None, {"x": x})[0]
    assert weights_as_float16(proto) == 1
    kinds = {i.name: i.data_type for i in proto.graph.initializer}
    assert kinds == {"w1.float16": TensorProto.FLOAT16, "w2": TensorProto.FLOAT}
    onnx.save(proto, tmp_path / "m.onnx")
    after = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"x": x})[0]
    assert np.array_equal(after, before)


def test_model_tab_follows_a_handover_to_pytorch(tiny_run):
    from name_origin.hub import ResolvedModel

    predictor = Predictor.from_dir(tiny_run)
    demo = app.build_app(predictor, ResolvedModel(tiny_run, "bundled", None, []))
    (on_load,) = [d.fn for d in demo.fns.values() if any(kind == "load" for _, kind in d.targets)]
    assert "Its logits come from ONNX Runtime" in on_load()
    predictor.onnx = OnlyBatchOf(predictor.onnx, 3)
    predictor.predict("Rossi")
    assert "Its logits come from PyTorch \\(model\\.onnx failed" in on_load()


@pytest.mark.slow  # one tiny training (~6 s)
def test_training_into_a_folder_drops_its_earlier_export(onnx_run, small_data_dir):
    from trainer.cli import main

    args = ["--preset", "tiny", "--data-dir", str(small_data_dir), "--out", str(onnx_run), "--threads", "1"]
    assert main([*args, "--seed", "5", "--no-onnx"]) == 0
    assert not (onnx_run / ONNX_NAME).exists()  # the card says so, and a push would carry it otherwise


def test_a_refused_export_is_one_line(onnx_run, monkeypatch, caplog):
    import trainer.export
    from trainer.cli import main

    def refuse(model, run_dir):
        raise OnnxMismatchError("model.onnx differs from model.safetensors by 0.5 in a logit")

    monkeypatch.setattr(trainer.export, "export_onnx", refuse)
    with caplog.at_level(logging.ERROR, logger="trainer"):
        assert main(["export", str(onnx_run)]) == 1
    assert (
        "model.onnx not written" in caplog.text and "kept as it was" in caplog.text and "Traceback" not in caplog.text
    )


def test_an_initializer_that_is_also_an_input_stays_float32():
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    from trainer.export import weights_as_float16

    w = np.ones((16, 4), dtype=np.float32)  # float16 holds it exactly, but a caller may pass another w
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in (("x", ["n", 16]), ("w", [16, 4]))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(w, "w")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert weights_as_float16(proto) == 0 and proto.graph.initializer[0].data_type == TensorProto.FLOAT


@pytest.mark.parametrize(
    ("hide", "message", "expected"),
    [
        ("{tmp}/real", "Load model from {tmp}/real/model.onnx failed", "Load model from real/model.onnx failed"),
        ("{tmp}/link", "Load model from {tmp}/link/model.onnx failed", "Load model from link/model.onnx failed"),
        ("{tmp}/link", "Load model from {tmp}/real/model.onnx failed", "Load model from link/model.onnx failed"),
        ("/", "Load model from /srv/m/model.onnx failed", "Load model from /srv/m/model.onnx failed"),
        ("model", "Load model from model/model.onnx failed", "Load model from model/model.onnx failed"),
    ],
)
def test_short_hides_the_folder_path_and_nothing_else(tmp_path, hide, message, expected):
    """The folder's absolute path (as given, or resolved through a link) is shown as its name as
    given; the root or a relative path changes nothing."""
    from name_origin.hub import short

    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    fill = {"tmp": str(tmp_path)}
    assert short(RuntimeError(message.format(**fill)), hide=Path(hide.format(**fill))) == f"RuntimeError: {expected}"
