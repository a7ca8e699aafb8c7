"""The packed-sequence BiGRU: shapes, packing correctness, members, strict safetensors round trip."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.nn import functional as F

from name_origin.encoding import pad_batch
from name_origin.model import WEIGHTS_NAME, NameGRU
from trainer.config import PRESETS, ModelConfig

LABELS = ("Arabic", "English", "German", "Japanese", "Russian")


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: torch on one thread


def make_cfg(**kw) -> ModelConfig:
    base = {"alphabet": " 'abcdefghijklmnopqrstuvwxyz", "labels": LABELS, "embed_dim": 8, "hidden_size": 12}
    return ModelConfig(**(base | kw))


def make_model(seed=0, **kw) -> NameGRU:
    torch.manual_seed(seed)
    return NameGRU(make_cfg(**kw)).eval()


def random_batch(n=9, max_len=11, vocab=29, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    lengths[0] = max_len  # at least one full-length row
    seqs = [torch.randint(2, vocab, (int(k),), generator=gen).tolist() for k in lengths]
    return seqs, *pad_batch(seqs)


def test_output_shapes():
    model = make_model()
    _, x, lengths = random_batch()
    assert model(x, lengths).shape == (9, len(LABELS))
    assert model.member_logits(x, lengths).shape == (1, 9, len(LABELS))
    ens = make_model(members=3)
    assert ens(x, lengths).shape == (9, len(LABELS))
    assert ens.member_logits(x, lengths).shape == (3, 9, len(LABELS))
    assert len(ens.members) == 3


def test_config_sizes_reach_the_layers():
    model = make_model(embed_dim=7, hidden_size=5, num_layers=3)
    m = model.members[0]
    assert m.embedding.weight.shape == (28 + 2, 7)  # + PAD and UNK
    assert m.embedding.padding_idx == 0
    assert (m.gru.input_size, m.gru.hidden_size, m.gru.num_layers, m.gru.bidirectional) == (7, 5, 3, True)
    assert m.head.weight.shape == (len(LABELS), 10)


def test_course_preset_builds_the_course_architecture():
    """The course script's model: one 2-layer bidirectional GRU, hidden 100, over a 100-wide
    character embedding, read out by one linear layer; checked on the built model's parameter
    shapes against torch's own GRU of that architecture."""
    cfg = dataclasses.replace(PRESETS["course"].model, alphabet=make_cfg().alphabet, labels=LABELS)
    model = NameGRU(cfg)
    reference = torch.nn.GRU(100, 100, num_layers=2, bidirectional=True, batch_first=True)
    expected = {f"members.0.gru.{n}": tuple(p.shape) for n, p in reference.named_parameters()}
    expected |= {"members.0.embedding.weight": (cfg.vocab_size, 100), "members.0.head.weight": (len(LABELS), 200),
                 "members.0.head.bias": (len(LABELS),)}  # fmt: skip
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == expected


def test_course_preset_trains_like_the_course_script():
    """Adam (AdamW without weight decay) at a constant 1e-3, batches of at most 256 names."""
    from trainer.data import bucketed_batches
    from trainer.train import make_optimizer

    cfg = dataclasses.replace(PRESETS["course"].model, alphabet=make_cfg().alphabet, labels=LABELS)
    train = PRESETS["course"].train
    optimizer, scheduler = make_optimizer(NameGRU(cfg), train, steps_per_epoch=10)
    assert scheduler is None
    assert [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups] == [(1e-3, 0.0), (1e-3, 0.0)]
    lengths = torch.randint(1, 12, (1000,), generator=torch.Generator().manual_seed(0))
    sizes = [len(b) for b in bucketed_batches(lengths, train.batch_size, torch.Generator().manual_seed(0))]
    assert max(sizes) == 256 and sum(sizes) == 1000


@pytest.mark.parametrize("members", [1, 2])
def test_packed_batch_equals_each_sequence_alone(members):
    model = make_model(members=members, dropout=0.3)  # eval mode: dropout off
    seqs, x, lengths = random_batch(n=12)
    batched = model(x, lengths)
    with torch.no_grad():
        alone = torch.cat([model(torch.tensor([s]), torch.tensor([len(s)])) for s in seqs])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_padding_content_does_not_matter():
    model = make_model()
    _, x, lengths = random_batch()
    noisy = x.clone()
    for row, k in enumerate(lengths.tolist()):
        noisy[row, k:] = 7  # garbage after the end of each name
    torch.testing.assert_close(model(x, lengths), model(noisy, lengths), atol=1e-6, rtol=0)
    wider = torch.cat([x, torch.zeros(len(x), 4, dtype=torch.long)], dim=1)  # extra padding columns
    torch.testing.assert_close(model(x, lengths), model(wider, lengths), atol=1e-6, rtol=0)


def test_sorted_desc_gives_the_same_result():
    model = make_model(members=2)
    _, x, lengths = random_batch(n=15)
    order = torch.argsort(lengths, descending=True)
    unsorted = model(x, lengths, sorted_desc=False)[order]
    presorted = model(x[order], lengths[order], sorted_desc=True)
    torch.testing.assert_close(unsorted, presorted, atol=1e-6, rtol=0)


def test_members_average_probabilities_at_the_temperature():
    model = make_model(members=3)
    _, x, lengths = random_batch()
    with torch.no_grad():
        each = [m(x, lengths) for m in model.members]
        # independently initialised: the members disagree by far more than rounding, and the same
        # seed builds the very same ensemble
        assert (each[0] - each[1]).abs().max() > 0.05 and (each[1] - each[2]).abs().max() > 0.05
        assert torch.equal(make_model(members=3)(x, lengths), model(x, lengths))
        for t in (1.0, 0.7):
            expected = torch.stack([F.softmax(lg / t, -1) for lg in each]).mean(0).log()
            torch.testing.assert_close(model(x, lengths, temperature=t), expected, atol=1e-6, rtol=0)
    single = make_model(members=1)
    with torch.no_grad():
        torch.testing.assert_close(single(x, lengths), F.log_softmax(single.members[0](x, lengths), -1))


def test_save_load_round_trip(tmp_path):
    model = make_model(members=2, dropout=0.2, num_layers=1)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", WEIGHTS_NAME]
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["labels"] == list(LABELS) and saved["members"] == 2
    loaded = NameGRU.from_pretrained(str(tmp_path))
    assert loaded.config == model.config
    assert isinstance(loaded.config.labels, tuple)
    assert not loaded.training
    _, x, lengths = random_batch()
    assert torch.equal(model(x, lengths), loaded(x, lengths))


def test_load_ignores_extra_run_metadata_in_config(tmp_path):
    model = make_model()
    model.save_pretrained(tmp_path, config={**vars(model.config), "train": {"seed": 3}, "calibration": {"t": 1.5}})
    loaded = NameGRU.from_pretrained(str(tmp_path))
    assert loaded.config == model.config


def _tamper(tmp_path, edit):
    model = make_model()
    model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / WEIGHTS_NAME)
    edit(tensors)
    save_file(tensors, tmp_path / WEIGHTS_NAME)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.pop("members.0.head.bias"), "Missing key"),
        (lambda t: t.__setitem__("members.0.extra", torch.zeros(3)), "Unexpected key"),
        (lambda t: t.__setitem__("members.0.head.weight", torch.zeros(len(LABELS), 5)), "size mismatch"),
    ],
    ids=["missing", "extra", "misshaped"],
)
def test_strict_loading_rejects_tampered_weights(tmp_path, edit, message):
    _tamper(tmp_path, edit)
    with pytest.raises(RuntimeError, match=message):
        NameGRU.from_pretrained(str(tmp_path))


def test_strict_loading_rejects_config_that_does_not_match(tmp_path):
    make_model(hidden_size=12).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg | {"hidden_size": 13}))
    with pytest.raises(RuntimeError, match="size mismatch"):
        NameGRU.from_pretrained(str(tmp_path))


def is_pickle_or_torch_zip(path) -> bool:
    head = path.read_bytes()[:4]
    return head[:1] == b"\x80" or head == b"PK\x03\x04"


def test_no_pickles_written(tmp_path):
    make_model(members=2).save_pretrained(tmp_path)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    for p in files:
        assert p.suffix not in {".bin", ".pt", ".pth", ".pkl", ".ckpt"}
        assert not is_pickle_or_torch_zip(p), p


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n = 48
    seqs = [torch.randint(2, 29, (int(k),), generator=gen).tolist() for k in torch.randint(3, 10, (n,), generator=gen)]
    y = torch.randint(0, len(LABELS), (n,), generator=gen)  # random labels: only memorising fits them
    x, lengths = pad_batch(seqs)
    model = NameGRU(make_cfg(embed_dim=16, hidden_size=32)).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first_loss = None
    for _step in range(300):
        loss = F.cross_entropy(model(x, lengths), y)
        first_loss = first_loss or loss.item()
        if loss.item() < 0.02:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first_loss > 1.0  # it did not start out fitted
    model.eval()
    with torch.no_grad():
        logits = model(x, lengths)
    assert F.cross_entropy(logits, y).item() < 0.05
    assert (logits.argmax(1) == y).all()


def test_batched_prediction_equals_each_name_alone_with_repeats():
    """predict_member_logits runs each distinct name once and batches them by length; every row,
    repeated names included, gets what the model gives that name alone, in the data's order."""
    from trainer.data import Encoded
    from trainer.evaluate import predict_member_logits

    model = make_model(members=2)
    seqs, _, _ = random_batch(n=12)
    seqs = seqs + [seqs[3], seqs[0], seqs[3]]  # repeats, scattered
    x, lengths = pad_batch(seqs)
    got = predict_member_logits(model, Encoded(x, lengths, torch.zeros(len(seqs), dtype=torch.long)), batch_size=4)
    with torch.no_grad():
        alone = torch.cat([model.member_logits(*pad_batch([s])) for s in seqs], 1)
    torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-6)
    assert torch.equal(got[:, 12], got[:, 3]) and torch.equal(got[:, 14], got[:, 3])
