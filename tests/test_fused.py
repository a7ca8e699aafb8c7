"""The fused inference path computes exactly what the packed nn.GRU computes, and serving uses it."""

import pytest
import torch
from test_model import make_model, random_batch

from trainer.encoding import pad_batch
from trainer.fused import FusedMembers
from trainer.predict import FUSED_MAX, Predictor

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


@pytest.mark.parametrize(("members", "num_layers"), [(1, 1), (1, 2), (3, 2), (2, 3)])
@pytest.mark.parametrize("length", [1, 2, 7, 13])
def test_fused_equals_the_packed_gru(members, num_layers, length):
    model = make_model(seed=length, members=members, num_layers=num_layers)
    for p in model.parameters():  # larger weights than the init: saturated gates must agree too
        p.data.mul_(3)
    gen = torch.Generator().manual_seed(length)
    seqs = torch.randint(1, 29, (5, length), generator=gen).tolist()  # UNK (1) included
    x, lengths = pad_batch(seqs)
    with torch.no_grad():
        expected = model.member_logits(x, lengths)  # (members, batch, classes)
    got = FusedMembers(model).member_logits(x)
    assert got.shape == expected.shape == (members, 5, 5)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_fused_rejects_padding_and_empty_input():
    fused = FusedMembers(make_model())
    seqs, x, _ = random_batch()  # mixed lengths: padded
    with pytest.raises(ValueError, match="without padding"):
        fused.member_logits(x)
    with pytest.raises(ValueError, match="without padding"):
        fused.member_logits(torch.zeros(1, 0, dtype=torch.long))


def test_fused_rejects_indices_outside_the_vocabulary():
    fused = FusedMembers(make_model())
    for bad in ([[3, 99]], [[3, -1]]):  # nn.Embedding raises for both; NumPy would wrap -1 silently
        with pytest.raises(IndexError, match="out of range"):
            fused.member_logits(torch.tensor(bad))


def test_fused_reads_double_precision_models_too():
    model = make_model(members=2).double()
    x = torch.randint(2, 29, (3, 5), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = model.member_logits(x, torch.full((3,), 5)).float()
    torch.testing.assert_close(FusedMembers(model).member_logits(x), expected, rtol=1e-5, atol=1e-5)


def test_fused_copies_weights_at_build_time():
    model = make_model()
    x = torch.tensor([[3, 4, 5]])
    fused = FusedMembers(model)
    before = fused.member_logits(x)
    with torch.no_grad():
        model.members[0].head.bias.add_(1.0)
    assert torch.equal(fused.member_logits(x), before)  # documented: rebuild after changing weights
    assert not torch.allclose(FusedMembers(model).member_logits(x), before)


def test_single_names_and_batches_agree(tiny_run):
    """predict (fused, one name) and predict_batch (packed, mixed lengths) give the same numbers."""
    predictor = Predictor.from_dir(tiny_run)
    names = ["Nakamura", "Li", "O'Neill", "De la Fuente", "Dvořák", "Ng", "Abramovich"]
    batch = predictor.predict_batch(names)
    for name, b in zip(names, batch, strict=True):
        single = predictor.predict(name)
        assert list(single.probs) == list(b.probs)
        assert list(single.probs.values()) == pytest.approx(list(b.probs.values()), abs=1e-6)


def test_explanation_variants_take_the_fused_path_up_to_its_limit(tiny_run, monkeypatch):
    predictor = Predictor.from_dir(tiny_run)
    calls = []
    original = predictor.fused.log_probs
    monkeypatch.setattr(predictor.fused, "log_probs", lambda x, t: calls.append(tuple(x.shape)) or original(x, t))
    predictor.explain("Nakamura")
    assert calls == [(9, 8)]  # the name and its 8 occlusions, one fused batch
    calls.clear()
    predictor.predict_batch(["ab"] * 3 + ["abc"])  # two lengths -> packed model
    distinct = [f"{chr(97 + i // 26)}{chr(97 + i % 26)}abc" for i in range(FUSED_MAX + 1)]
    predictor.predict_batch(distinct)  # one length, but more names than the fused path takes
    assert calls == []


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.3])
def test_fused_log_probs_equal_the_model_forward(temperature):
    model = make_model(seed=3, members=3)
    x = torch.randint(2, 29, (4, 6), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(x, torch.full((4,), 6), temperature=temperature)  # combine_members
    torch.testing.assert_close(FusedMembers(model).log_probs(x, temperature), expected, rtol=1e-5, atol=1e-5)
