"""trainer.packed_gru against its reference, nn.GRU on the same PackedSequence and weights."""

import pytest
import torch
from test_model import make_cfg, random_batch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from trainer import cells
from trainer.config import TrainConfig
from trainer.model import NameGRU
from trainer.packed_gru import dropout, packed_bigru, packed_bigrus, step_plan
from trainer.train import make_optimizer

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


@pytest.fixture(params=[True, False], ids=["compiled gates", "torch-op gates"])
def compiled(request) -> bool:
    """Every equality test runs with both gate implementations (trainer/cells.py, torch ops)."""
    if request.param and cells.load() is None:
        pytest.skip("no C compiler: the compiled gates are not built here (test_compiled_gates_build)")
    return request.param


LENGTHS = {
    "mixed": [7, 7, 5, 3, 3, 1],
    "uniform": [4, 4, 4],
    "single": [1],
    "one long, many short": [9, 2, 2, 2, 1],
    "all distinct": [6, 5, 4, 3, 2, 1],
}


def both(gru: nn.GRU, x: torch.Tensor, lengths: torch.Tensor, batch_first: bool = True, compiled: bool = True):
    """(h_n of nn.GRU, h_n of packed_bigru) on the same input, packed unsorted."""
    pack = lambda: pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)  # noqa: E731
    return gru(pack())[1], packed_bigru(gru, pack(), compiled=compiled)


def grads(h_n: torch.Tensor, weight: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    loss = (h_n * weight).sum() + h_n.pow(2).sum()  # a loss that weighs every state differently
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("case", sorted(LENGTHS))
def test_states_and_gradients_equal_nn_gru(layers, case, compiled):
    torch.manual_seed(layers)
    gru = nn.GRU(5, 4, num_layers=layers, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor(LENGTHS[case])[torch.randperm(len(LENGTHS[case]))]  # unsorted on purpose
    x = torch.randn(len(lengths), int(lengths.max()), 5, dtype=torch.double, requires_grad=True)
    ref, ours = both(gru, x, lengths, compiled=compiled)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    weight = torch.randn_like(ref)
    inputs = [x, *gru.parameters()]
    for a, b in zip(grads(ours, weight, inputs), grads(ref, weight, inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", sorted(LENGTHS))
def test_embedding_table_path_equals_nn_gru_on_embedded_input(case, compiled):
    """Character indices + the embedding (the first layer's projection looked up per vocabulary
    row) give nn.GRU's states and gradients, the embedding's included; PAD rows get none."""
    torch.manual_seed(1)
    emb = nn.Embedding(7, 5, padding_idx=0).double()
    gru = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    lengths = torch.tensor(LENGTHS[case])[torch.randperm(len(LENGTHS[case]))]
    idx = torch.randint(1, 7, (len(lengths), int(lengths.max())))
    idx[torch.arange(idx.shape[1]) >= lengths[:, None]] = 0  # PAD past each name's end
    pack = lambda t: pack_padded_sequence(t, lengths, batch_first=True, enforce_sorted=False)  # noqa: E731
    ref = gru(pack(emb(idx)))[1]
    ours = packed_bigru(gru, pack(idx), emb.weight, compiled=compiled)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    weight = torch.randn_like(ref)
    inputs = [emb.weight, *gru.parameters()]
    ours_grads = grads(ours, weight, inputs)
    for a, b in zip(ours_grads, grads(ref, weight, inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert ours_grads[0][0].abs().max() == 0 and ours_grads[0][1:].abs().max() > 0


def test_model_uses_the_table_only_without_embedding_dropout(monkeypatch):
    import trainer.model

    seen = []
    real = trainer.model.packed_bigru
    monkeypatch.setattr(
        trainer.model,
        "packed_bigru",
        lambda gru, packed, emb=None, **kw: seen.append(emb) or real(gru, packed, emb, **kw),
    )
    _, x, lengths = random_batch()
    for p, expect_table in ((0.0, True), (0.3, False)):
        model = NameGRU(make_cfg(dropout=p)).train()
        model.use_cpu_kernel(True)
        model(x, lengths).sum().backward()
        assert (seen.pop() is not None) == expect_table
        model.eval()  # eval mode drops no embeddings, so the table is exact there too
        model(x, lengths).sum().backward()
        assert seen.pop() is not None


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("case", ["mixed", "one long, many short"])
def test_several_grus_in_one_call_equal_each_nn_gru(layers, case, compiled):
    """Ensemble members share one kernel call: each gets its own nn.GRU's states and gradients."""
    torch.manual_seed(layers)
    grus = [nn.GRU(5, 4, num_layers=layers, bidirectional=True, batch_first=True).double() for _ in range(3)]
    lengths = torch.tensor(LENGTHS[case])[torch.randperm(len(LENGTHS[case]))]
    xs = [torch.randn(len(lengths), int(lengths.max()), 5, dtype=torch.double, requires_grad=True) for _ in grus]
    pack = lambda t: pack_padded_sequence(t, lengths, batch_first=True, enforce_sorted=False)  # noqa: E731
    ours = packed_bigrus(grus, [pack(x) for x in xs], compiled=compiled)
    weights = [torch.randn(2 * layers, len(lengths), 4, dtype=torch.double) for _ in grus]
    inputs = [t for gru, x in zip(grus, xs, strict=True) for t in (x, *gru.parameters())]
    ours_loss = sum((h * w).sum() + h.pow(2).sum() for h, w in zip(ours, weights, strict=True))
    ours_grads = torch.autograd.grad(ours_loss, inputs)
    refs = [gru(pack(x))[1] for gru, x in zip(grus, xs, strict=True)]
    ref_loss = sum((h * w).sum() + h.pow(2).sum() for h, w in zip(refs, weights, strict=True))
    for a, b in zip(ours, refs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    for a, b in zip(ours_grads, torch.autograd.grad(ref_loss, inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_several_grus_need_the_same_lengths():
    grus = [nn.GRU(3, 4, bidirectional=True) for _ in range(2)]
    packs = [pack_padded_sequence(torch.randn(3, 2, 3), torch.tensor(n)) for n in ([3, 2], [3, 1])]
    with pytest.raises(ValueError, match="same lengths"):
        packed_bigrus(grus, packs)


def test_time_major_input_and_float32(compiled):
    torch.manual_seed(0)
    gru = nn.GRU(6, 8, num_layers=2, bidirectional=True)  # batch_first=False
    lengths = torch.tensor([5, 3, 3, 2])
    x = torch.randn(5, 4, 6, requires_grad=True)  # (seq, batch, features)
    ref, ours = both(gru, x, lengths, batch_first=False, compiled=compiled)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-6)
    weight = torch.randn_like(ref)
    for a, b in zip(grads(ours, weight, [x]), grads(ref, weight, [x]), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_dropout_between_layers_only_in_training():
    torch.manual_seed(0)
    gru = nn.GRU(5, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.5).double()
    lengths = torch.tensor([4, 3, 1])
    x = torch.randn(3, 4, 5, dtype=torch.double)
    gru.eval()
    ref, ours = both(gru, x, lengths)
    torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)
    gru.train()
    ref, ours = both(gru, x, lengths)
    torch.testing.assert_close(ours[:2], ref[:2], rtol=0, atol=1e-12)  # first layer: no dropout before it
    assert not torch.allclose(ours[2:], ref[2:])  # second layer reads dropped-out inputs


def test_step_plan_pairs_each_forward_time_with_its_mirror():
    plan = step_plan([3, 2, 2, 1])  # lengths 4, 3, 1
    # step k: forward time k (3, 2, 2, 1 rows) with reverse time 3-k (1, 2, 2, 3 rows)
    assert [(rows, fwd, rev) for _, rows, fwd, rev in plan.steps] == [(3, 3, 1), (2, 2, 2), (2, 2, 2), (3, 1, 3)]
    assert plan.gather[0, :3].tolist() == [0, 1, 2] and plan.gather[1, :1].tolist() == [7]
    assert plan.mirror[plan.mirror].tolist() == list(range(plan.gather.shape[1]))  # an involution


@pytest.mark.parametrize("kwargs", [{}, {"bidirectional": True, "bias": False}])
def test_rejects_what_it_does_not_compute(kwargs):
    gru = nn.GRU(3, 4, **kwargs)
    packed = pack_padded_sequence(torch.randn(2, 1, 3), torch.tensor([2]))
    with pytest.raises(ValueError, match="bidirectional nn.GRU with biases"):
        packed_bigru(gru, packed)


def test_training_steps_match_nn_gru(compiled):
    """A few optimiser steps of the trainer's model give the same weights with either kernel."""
    _, x, lengths = random_batch(n=16)
    y = torch.arange(16) % 5
    models = []
    for kernel in (False, True):
        torch.manual_seed(0)
        model = NameGRU(make_cfg(members=2)).double().train()
        model.use_cpu_kernel(kernel, compiled=compiled)
        optimizer, _ = make_optimizer(model, TrainConfig(lr=1e-2), steps_per_epoch=1)
        for _ in range(3):
            loss = torch.nn.functional.nll_loss(model(x, lengths), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        models.append(model)
    for (name, a), (_, b) in zip(models[0].state_dict().items(), models[1].state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=name)


def test_inference_takes_nn_gru():
    """Under no_grad the model runs nn.GRU (as fast there): the kernel is for training only."""
    _, x, lengths = random_batch()
    torch.manual_seed(0)
    model = NameGRU(make_cfg()).eval()
    model.use_cpu_kernel(True)
    calls = []
    handle = model.members[0].gru.register_forward_hook(lambda *a: calls.append(1))
    with torch.no_grad():
        model(x, lengths)
    assert calls == [1]
    model(x, lengths).sum().backward()  # with autograd on, nn.GRU's forward is not called
    assert calls == [1]
    handle.remove()


def test_dropout_keeps_the_expectation_and_scales_survivors():
    torch.manual_seed(0)
    x = torch.rand(200, 500) + 0.5
    y = dropout(x, 0.3, training=True)
    dropped = y == 0
    assert abs(dropped.double().mean().item() - 0.3) < 0.01
    torch.testing.assert_close(y[~dropped], x[~dropped] / 0.7)
    assert abs(y.mean().item() / x.mean().item() - 1) < 0.01
    assert dropout(x, 0.3, training=False) is x
    assert torch.equal(dropout(x, 0.0, training=True), x)


def test_compiled_gates_build_where_a_compiler_is_found():
    """With gcc/cc on the path (as on this project's machines and CI) the gates must build; a
    broken build would otherwise only show as slower training."""
    import shutil

    if not (shutil.which("gcc") or shutil.which("cc")):
        pytest.skip("no C compiler on this machine")
    lib = cells.load()
    assert lib is not None and hasattr(lib, "gru_forward_step_f32") and hasattr(lib, "gru_backward_step_f64")


def test_compiled_gates_can_be_turned_off(monkeypatch):
    cells.load.cache_clear()
    monkeypatch.setenv("NAME_ORIGIN_NO_CC", "1")
    try:
        assert cells.load() is None
        model = NameGRU(make_cfg())
        model.use_cpu_kernel(True)  # asks for the compiled gates, gets torch operations
        assert not model.members[0].compiled_cells
    finally:
        cells.load.cache_clear()
