"""A bidirectional GRU over a PackedSequence for the CPU, with a hand-written backward.

It computes what `nn.GRU(bidirectional=True)` computes on a PackedSequence, with the same
parameters (the nn.GRU module stays the parameter holder, so checkpoints do not change); a
course-preset epoch takes 0.63-0.78 of the time it takes through nn.GRU on 2 cores (README, Speed).
PyTorch's CPU packed GRU spends about a third of a training step on autograd bookkeeping: every
time step slices the precomputed input projections, and the backward of each slice writes a
zero-filled copy of the whole projection. Here:

- both directions advance in one loop: step k moves the forward direction at time k and the
  reverse direction at time T-1-k, so each step's matmuls and gate arithmetic cover both
  directions in one batched call each (half the calls, twice the rows per call);
- rows live in a "step-major" layout, (direction, step rows, features), gathered once per batch
  from the packed rows; gradients are written once into preallocated buffers, never zero-filled;
- the recurrent weight gradient is one large matmul over all steps, not one per step;
- without dropout on the embeddings (the course preset), the first layer's input projection is
  looked up per character in `embedding @ W_ih^T` (one row per vocabulary entry) rather than
  multiplied out per character: about 10% of a course epoch;
- `packed_bigrus` runs the GRUs of several ensemble members as one: every call covers all
  members' lanes (member x direction), so a 3-member default-preset epoch takes about 20% less;
- each step is one matmul for all gates, then one pass of compiled gate arithmetic
  (trainer/cells.py) where a C compiler is found, else about ten torch operations;
- the two row gathers (table lookup, the other direction's outputs) have their own backward:
  one index_add_ over contiguous rows, and for the second, a permutation that is its own inverse,
  the same gather; autograd's index_select backward was ~8% of a course epoch.

Inference keeps nn.GRU (trainer.model only routes training here): forward-only, it is faster
there (course validation + test: 0.28 s against 0.30 s for this kernel without saved state).

Where the two directions' batch sizes differ at a step (names of different lengths in one batch),
the step runs on the larger count and the extra rows of the other direction keep their state:
finished forward rows keep their last state, not-yet-started reverse rows stay zero.
`tests/test_packed_gru.py` checks outputs and gradients against nn.GRU.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence

from trainer import cells

_tanh_backward = torch.ops.aten.tanh_backward.grad_input  # grad * (1 - y^2), written into grad_input
_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input  # grad * y * (1 - y)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout's maths; on CPU the mask comes from torch.rand, about 1.7x faster than the
    bernoulli_ sampling F.dropout uses there (a large share of a training step at p = 0.3)."""
    if not training or p == 0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    return x * (torch.rand_like(x) >= p) * (1.0 / (1.0 - p))


@dataclass(frozen=True)
class StepPlan:
    steps: tuple[tuple[int, int, int, int], ...]  # per step: (first step-major row, rows, fwd rows, rev rows)
    gather: torch.Tensor  # (2, S) packed row of each step-major row, per direction (0 where unused)
    mirror: torch.Tensor  # (S,) step-major row of the same (time, sequence) in the other direction
    batch: int  # sequences in the batch


def step_plan(batch_sizes) -> StepPlan:
    """Step k advances the forward direction at time k and the reverse one at time T-1-k."""
    return _step_plan(tuple(batch_sizes))


@functools.lru_cache(maxsize=1024)  # every member of a batch, and most batches, share a plan
def _step_plan(batch_sizes: tuple[int, ...]) -> StepPlan:
    T = len(batch_sizes)
    offsets = [0]
    for b in batch_sizes[:-1]:
        offsets.append(offsets[-1] + b)
    steps, bases, base = [], [], 0
    for k in range(T):
        fwd, rev = batch_sizes[k], batch_sizes[T - 1 - k]
        steps.append((base, max(fwd, rev), fwd, rev))
        bases.append(base)
        base += max(fwd, rev)
    gather = torch.zeros(2, base, dtype=torch.long)
    mirror = torch.zeros(base, dtype=torch.long)
    for k, (start, rows, fwd, rev) in enumerate(steps):
        gather[0, start : start + fwd] = torch.arange(offsets[k], offsets[k] + fwd)
        gather[1, start : start + rev] = torch.arange(offsets[T - 1 - k], offsets[T - 1 - k] + rev)
        mirror[start : start + rows] = torch.arange(bases[T - 1 - k], bases[T - 1 - k] + rows)
    return StepPlan(tuple(steps), gather, mirror, batch_sizes[0])


class RowLookup(torch.autograd.Function):
    """rows of `src` (N, F) at `index` (any shape) -> (*index.shape, F); the backward adds each
    gradient row into its source row with one index_add_ over contiguous rows: about 0.5 ms per
    course batch, against 1.2 ms for autograd's index_select backward (per lane, strided rows)."""

    @staticmethod
    def forward(ctx, src: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.rows = src.shape[0]
        return src.index_select(0, index.flatten()).view(*index.shape, src.shape[1])

    @staticmethod
    def backward(ctx, grad):
        (index,) = ctx.saved_tensors
        flat = grad.reshape(-1, grad.shape[-1]).contiguous()  # from strided rows, index_add_ is ~10x slower
        return grad.new_zeros(ctx.rows, grad.shape[-1]).index_add_(0, index.flatten(), flat), None


class Involution(torch.autograd.Function):
    """rows of `src` (N, F) reordered by a permutation that is its own inverse, so the backward
    is the same gather (autograd's index_select backward scatter-adds instead: ~5x slower)."""

    @staticmethod
    def forward(ctx, src: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        ctx.perm = perm
        return src.index_select(0, perm)

    @staticmethod
    def backward(ctx, grad):
        return grad.index_select(0, ctx.perm), None


class BiGRURecurrence(torch.autograd.Function):
    """The recurrence of one bidirectional layer of one or more GRUs, input projections given.

    Lanes are (GRU, direction) pairs, forward and reverse alternating: L = 2 x GRUs.
    g: (L, S, 3H) step-major input projections (gates r, z, n), the recurrent r and z biases
    already added (the caller folds them into the projection's bias: one pass fewer each way);
    weights: L recurrent weights (3H, H), then L recurrent n-gate biases (H,). Returns the
    step-major outputs (L, S, H) and the final states (L, batch, H)."""

    @staticmethod
    def forward(ctx, g, plan: StepPlan, lib, *weights):
        L, S, H = g.shape[0], g.shape[1], weights[0].shape[1]
        g = g.contiguous()
        w_t = torch.stack(weights[:L]).transpose(1, 2)  # (L, H, 3H)
        b_hn = torch.stack(weights[L:]).unsqueeze(1)  # (L, 1, H)
        h_prev, rz_all, n_all, ghn_all, out = (g.new_empty(L, S, w) for w in (H, 2 * H, H, H, H))
        h, diff = g.new_zeros(L, plan.batch, H), g.new_empty(L, plan.batch, H)  # diff: h - n of a step
        scratch = g.new_empty(L * plan.batch * 3 * H)  # each step's matmul output, contiguous
        for step in plan.steps:
            start, rows, fwd, rev = step
            s = slice(start, start + rows)
            hp = h[:, :rows]  # (L, rows, H)
            gh = torch.bmm(hp, w_t, out=scratch[: L * rows * 3 * H].view(L, rows, 3 * H))  # all gates: one matmul
            if lib is not None:  # the rest of the step in one compiled pass (trainer/gru_cells.c)
                cells.forward_step(lib, g, gh, b_hn, h, (h_prev, rz_all, ghn_all, n_all, out), step)
                continue
            h_prev[:, s] = hp
            rz = torch.add(g[:, s, : 2 * H], gh[..., : 2 * H], out=rz_all[:, s]).sigmoid_()  # (L, rows, 2H)
            ghn = torch.add(gh[..., 2 * H :], b_hn, out=ghn_all[:, s])  # (L, rows, H)
            n = torch.addcmul(g[:, s, 2 * H :], rz[..., :H], ghn, out=n_all[:, s]).tanh_()
            d = torch.sub(hp, n, out=diff[:, :rows])
            new = torch.addcmul(n, rz[..., H:], d, out=out[:, s])  # h' = n + z * (h - n)
            if fwd == rev:
                h[:, :rows] = new
            else:  # rows past a direction's count keep their state (finished, or not started)
                h[0::2, :fwd] = new[0::2, :fwd]
                h[1::2, :rev] = new[1::2, :rev]
        ctx.save_for_backward(w_t, h_prev, rz_all, n_all, ghn_all)
        ctx.plan, ctx.lib = plan, lib
        ctx.set_materialize_grads(False)
        return out, h

    @staticmethod
    def backward(ctx, d_out, d_h):
        w_t, h_prev, rz_all, n_all, ghn_all = ctx.saved_tensors
        plan, lib = ctx.plan, ctx.lib
        L, S, H = h_prev.shape
        # Columns of d_all: (n-gate matmul part r * d_n, r, z, n). The first three are the gradient
        # of a step's matmul output (one matmul back to h, rows of the weight in that order), the
        # last three that of the input projections (returned as a view, no copy).
        w = w_t.transpose(1, 2)  # (L, 3H, H), rows r, z, n
        w_nrz = torch.cat([w[:, 2 * H :], w[:, : 2 * H]], 1)  # (L, 3H, H), rows n, r, z
        d_all = h_prev.new_empty(L, S, 4 * H)
        dh = h_prev.new_zeros(L, plan.batch, H)
        if d_h is not None:
            dh.copy_(d_h)
        d_out = d_out.contiguous() if d_out is not None and lib is not None else d_out
        gz = h_prev.new_empty(L, plan.batch, H)  # grad * z: reaches the previous state directly
        buffers = None  # grad, gz, dn, tmp of the torch-operation gates
        if lib is None:
            buffers = (
                h_prev.new_empty(L, plan.batch, H),
                gz,
                h_prev.new_empty(L, plan.batch, H),
                h_prev.new_empty(L, plan.batch, H),
            )
        for step in reversed(plan.steps):
            start, rows, fwd, rev = step
            s = slice(start, start + rows)
            dk = d_all[:, s]
            if lib is not None:
                gzk = gz.view(-1)[: L * rows * H].view(L, rows, H)
                cells.backward_step(lib, dh, d_out, (rz_all, ghn_all, n_all, h_prev), d_all, gzk, step)
            else:
                gzk = _backward_gates(
                    dh, d_out, step, rz_all[:, s], n_all[:, s], h_prev[:, s], ghn_all[:, s], dk, buffers
                )
            if fwd == rev:
                torch.baddbmm(gzk, dk[..., : 3 * H], w_nrz, out=dh[:, :rows])  # (L, rows, H)
            else:
                new = torch.baddbmm(gzk, dk[..., : 3 * H], w_nrz)
                dh[0::2, :fwd] = new[0::2, :fwd]
                dh[1::2, :rev] = new[1::2, :rev]
        d_w = d_all[..., : 3 * H].transpose(1, 2) @ h_prev  # (L, 3H, H), rows n, r, z
        d_w = torch.cat([d_w[:, H:], d_w[:, :H]], 1)  # rows r, z, n
        d_b = d_all[..., :H].sum(1)  # (L, H)
        return d_all[..., H:], None, None, *d_w.unbind(), *d_b.unbind()


def _backward_gates(dh, d_out, step, rz, n, h_prev, ghn, dk, buffers) -> torch.Tensor:
    """The backward gate arithmetic of one step with torch operations (what gru_cells.c does in
    one pass): fills dk, returns grad * z, the part that reaches the previous state directly."""
    start, rows, fwd, rev = step
    H = n.shape[-1]
    grad, gz, dn, tmp = (b[:, :rows] for b in buffers)
    if d_out is not None:
        torch.add(dh[:, :rows], d_out[:, start : start + rows], out=grad)
    else:
        grad.copy_(dh[:, :rows])
    if fwd != rev:  # rows that kept their state pass their gradient through untouched
        grad[0::2, fwd:] = 0
        grad[1::2, rev:] = 0
    r, z = rz[..., :H], rz[..., H:]
    torch.mul(grad, z, out=gz)  # to h directly
    torch.sub(grad, gz, out=dn)  # to n: (1 - z) * grad
    _sigmoid_backward(
        torch.sub(h_prev, n, out=tmp).mul_(grad), z, grad_input=dk[..., 2 * H : 3 * H]
    )  # z: (h - n) * grad
    dpn = _tanh_backward(dn, n, grad_input=dk[..., 3 * H :])
    torch.mul(dpn, r, out=dk[..., :H])
    _sigmoid_backward(torch.mul(dpn, ghn, out=tmp), r, grad_input=dk[..., H : 2 * H])
    return gz


def packed_bigru(
    gru: nn.GRU, packed: PackedSequence, embedding: torch.Tensor | None = None, compiled: bool = True
) -> torch.Tensor:
    """h_n of `gru` (bidirectional, batch_first or not) on `packed`: (layers * 2, batch, hidden),
    in the batch's original order, like nn.GRU's. Dropout between layers when `gru.training`.

    With `embedding` (vocab, input): `packed` holds character indices, and the first layer's input
    projection becomes a lookup in `embedding @ W_ih^T` (vocab rows, not one row per character):
    a third of the matmul work of a course-size training step, for the same numbers."""
    return packed_bigrus([gru], [packed], None if embedding is None else [embedding], compiled)[0]


def packed_bigrus(grus, packs, embeddings=None, compiled: bool = True) -> list[torch.Tensor]:
    """packed_bigru for several GRUs of one shape at once, each on its own PackedSequence of the
    same lengths (ensemble members: their own embeddings and dropout, the same names). Every step
    of all of them is one batched call per operation: the per-call cost is paid once, not once
    per member. Returns each GRU's h_n. `compiled`: the gate arithmetic from trainer/cells.py where
    it builds (same results), else torch operations."""
    first = grus[0]
    for gru in grus:
        if not (gru.bidirectional and gru.bias and gru.mode == "GRU"):
            raise ValueError("packed_bigru needs a bidirectional nn.GRU with biases")
    if any(not torch.equal(p.batch_sizes, packs[0].batch_sizes) for p in packs):
        raise ValueError("packed_bigrus needs sequences of the same lengths for every GRU")
    plan = step_plan(packs[0].batch_sizes.tolist())
    weight = first.weight_hh_l0
    lib = cells.load() if compiled and weight.device.type == "cpu" and weight.dtype in cells.SUFFIX else None
    # (L, S, ...) step-major rows of each lane; L = 2 * len(grus), forward and reverse alternating
    rows = torch.stack([p.data.index_select(0, plan.gather[d]) for p in packs for d in (0, 1)])
    finals = []
    for layer in range(first.num_layers):
        w_ih, b_ih, w_hh, b_hh = (
            [getattr(gru, f"{name}_l{layer}{sfx}") for gru in grus for sfx in ("", "_reverse")]
            for name in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")
        )
        H = first.hidden_size
        # r and z add both biases: fold the recurrent ones into the projection's bias
        bias = (torch.stack(b_ih) + F.pad(torch.stack(b_hh)[:, : 2 * H], (0, H))).unsqueeze(1)  # (L, 1, 3H)
        if layer == 0 and embeddings is not None:
            lane_embeddings = torch.stack([e for e in embeddings for _ in (0, 1)])  # (L, vocab, input)
            table = torch.baddbmm(bias, lane_embeddings, torch.stack(w_ih).transpose(1, 2))  # (L, vocab, 3H)
            lane_rows = rows + torch.arange(0, rows.shape[0] * table.shape[1], table.shape[1]).unsqueeze(1)
            g = RowLookup.apply(table.flatten(0, 1), lane_rows)  # (L, S, 3H)
        else:
            if layer > 0:  # a reverse lane's input is (reverse, forward) outputs: swap its weight's halves
                w_ih[1::2] = [torch.cat(w.chunk(2, 1)[::-1], 1) for w in w_ih[1::2]]
            g = torch.baddbmm(bias, rows, torch.stack(w_ih).transpose(1, 2))  # (L, S, 3H)
        out, h = BiGRURecurrence.apply(g, plan, lib, *w_hh, *(b[2 * H :] for b in b_hh))  # (L, S, H), (L, batch, H)
        finals.append(h)
        if layer + 1 < first.num_layers:
            out = dropout(out, first.dropout, first.training)  # one mask per output, as in nn.GRU
            # The next layer reads, at each (time, sequence), both directions' outputs: the other
            # direction holds that time at the mirrored step. Rows of a lane: (own, partner's).
            # partner[l, s] = out[l ^ 1, mirror[s]]: swapping twice gives the identity
            L, S = out.shape[:2]
            swap = (torch.arange(L) ^ 1).unsqueeze(1) * S + plan.mirror  # (L, S) rows of out.flatten(0, 1)
            partner = Involution.apply(out.reshape(L * S, H), swap.flatten()).view(L, S, H)
            rows = torch.cat([out, partner], 2)  # (L, S, 2H)
    h_n = torch.stack(finals, 1)  # (L, layers, batch, H), sorted order
    result = []
    for i, p in enumerate(packs):
        h = h_n[2 * i : 2 * i + 2].transpose(0, 1).flatten(0, 1)  # (layers * 2, batch, H), nn.GRU's order
        result.append(h if p.unsorted_indices is None else h.index_select(1, p.unsorted_indices))
    return result
