"""Fast inference for names of one length: every member and direction of a NameGRU in lockstep.

nn.GRU runs each member's two directions one after the other, about ten small tensor ops per
character per layer and direction; one 8-letter name through three members is ~1,000 ops, about
4 ms on one thread, nearly all of it per-op overhead. Here the 2 x members recurrences advance
together: one batched matrix-vector product and eleven elementwise ops per character and layer,
in NumPy (about 1 us per small op against about 3 us for a torch op), and the first layer's input
projection is a lookup table (at inference, embedding @ W_ih is fixed).

Same weights and the same GRU equations as the packed nn.GRU (tests compare the two, to 1e-5:
float32 sums in another order); it applies only where there is no padding, i.e. a batch of names
of one length: a single name, the occlusion variants of one name, or a small batch whose distinct
names all have one length (Predictor decides). Everything else goes through the model itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainer.encoding import PAD
from trainer.model import NameGRU


@dataclass(frozen=True)
class _Layer:
    w_ih: torch.Tensor | None  # (members, in, 2*3*hidden), both directions side by side; None: layer 0
    b_ih: np.ndarray  # (2*members, 1, 3*hidden), the gates' recurrent bias folded in (layer 0: in the table)
    w_hh: np.ndarray  # (2*members, hidden, 3*hidden)
    b_hn: np.ndarray  # (2*members, 1, hidden): the candidate's recurrent bias (inside the reset gate)


class FusedMembers:
    """Eval-mode member logits of a NameGRU for equal-length batches, as batched recurrences.

    Recurrence k = 2*member + direction (0 forward, 1 backward), the order of `h_n` in nn.GRU.
    Reset and update gate rows are stored halved: sigmoid(x) = (1 + tanh(x / 2)) / 2.
    The weights are copied when it is built: build a new one after changing the model's."""

    def __init__(self, model: NameGRU):
        cfg = model.config
        self.members, self.hidden = cfg.members, cfg.hidden_size
        hs, grus = cfg.hidden_size, [(m.gru, sfx) for m in model.members for sfx in ("", "_reverse")]
        half = torch.ones(3 * hs)
        half[: 2 * hs] = 0.5

        def stacked(name: str, layer: int) -> torch.Tensor:  # (2M, 3H, ...) with gate rows pre-halved
            w = torch.stack([getattr(g, f"{name}_l{layer}{sfx}").detach().float().cpu() for g, sfx in grus])
            return w * (half[:, None] if w.dim() == 3 else half)

        with torch.no_grad():
            self.layers: list[_Layer] = []
            for layer in range(cfg.num_layers):
                w_ih, b_ih = stacked("weight_ih", layer).transpose(1, 2), stacked("bias_ih", layer).unsqueeze(1)
                b_hh = stacked("bias_hh", layer).unsqueeze(1)
                if layer == 0:  # character -> first-layer input gates, bias included: (vocab, 2M, 3H)
                    emb = torch.stack([m.embedding.weight.detach().float().cpu() for m in model.members])
                    table = torch.baddbmm(b_ih, emb.repeat_interleave(2, dim=0), w_ih)  # (2M, vocab, 3H)
                    table[..., : 2 * hs] += b_hh[..., : 2 * hs]
                    self.table = np.ascontiguousarray(table.transpose(0, 1).numpy())
                w_pair = w_ih.reshape(self.members, 2, *w_ih.shape[1:]).permute(0, 2, 1, 3)  # (M, in, 2, 3H)
                self.layers.append(
                    _Layer(
                        w_pair.reshape(self.members, w_ih.shape[1], -1).contiguous() if layer else None,
                        (b_ih + torch.cat([b_hh[..., : 2 * hs], torch.zeros_like(b_hh[..., 2 * hs :])], -1)).numpy(),
                        np.ascontiguousarray(stacked("weight_hh", layer).transpose(1, 2).numpy()),
                        np.ascontiguousarray(b_hh[..., 2 * hs :].numpy()),
                    )
                )
            heads = [m.head for m in model.members]
            self.head_w = np.stack([h.weight.detach().float().cpu().t().numpy() for h in heads])  # (M, 2H, C)
            self.head_b = np.stack([h.bias.detach().float().cpu().numpy() for h in heads])[:, None]  # (M, 1, C)

    def _recur(self, gi: np.ndarray, layer: _Layer) -> np.ndarray:
        """gi: (L, 2M, B, 3H) input gates (recurrent gate biases included), each recurrence in its
        processing order (backward ones walk the name from its end) -> (L, 2M, B, H) states.
        Every step writes into buffers allocated once: at these sizes allocation is a real cost."""
        hs, (length, k, batch, _) = self.hidden, gi.shape
        g_rz, g_n = np.ascontiguousarray(gi[..., : 2 * hs]), np.ascontiguousarray(gi[..., 2 * hs :])
        states = np.empty((length, k, batch, hs), dtype=np.float32)
        h = np.zeros((k, batch, hs), dtype=np.float32)  # (2M, B, H)
        gh = np.empty((k, batch, 3 * hs), dtype=np.float32)  # W_h h, gate parts halved
        rz = np.empty((k, batch, 2 * hs), dtype=np.float32)  # reset and update gates
        n = np.empty((k, batch, hs), dtype=np.float32)  # candidate state
        gh_rz, gh_n, r, z = gh[..., : 2 * hs], gh[..., 2 * hs :], rz[..., :hs], rz[..., hs:]
        for t in range(length):
            np.matmul(h, layer.w_hh, out=gh)
            np.add(g_rz[t], gh_rz, out=rz)  # halved pre-activations
            np.tanh(rz, out=rz)
            rz += 1.0
            rz *= 0.5  # = sigmoid
            np.add(gh_n, layer.b_hn, out=n)
            n *= r
            n += g_n[t]
            np.tanh(n, out=n)
            h = np.subtract(h, n, out=states[t])
            h *= z
            h += n  # (1 - z) * n + z * h
        return states

    def _first_gates(self, ids: np.ndarray) -> np.ndarray:
        """(B, L) indices -> (L, 2M, B, 3H) first-layer input gates; backward recurrences read reversed."""
        m, hs = self.members, self.hidden
        table = self.table.reshape(len(self.table), m, 2, 3 * hs)  # (vocab, M, direction, 3H)
        gi = np.empty((ids.shape[1], m, 2, ids.shape[0], 3 * hs), dtype=np.float32)
        gi[:, :, 0] = table[ids.T, :, 0].transpose(0, 2, 1, 3)
        gi[:, :, 1] = table[ids.T[::-1], :, 1].transpose(0, 2, 1, 3)
        return gi.reshape(ids.shape[1], 2 * m, ids.shape[0], 3 * hs)

    def _next_gates(self, states: np.ndarray, layer: _Layer) -> np.ndarray:
        """(L, 2M, B, H) states of one layer -> (L, 2M, B, 3H) input gates of the next. Member m's
        input is its own [forward, backward] outputs in text order (reversed for its backward one)."""
        m, hs = self.members, self.hidden
        length, _, batch, _ = states.shape
        text = np.concatenate([states[:, 0::2], states[::-1, 1::2]], axis=-1)  # (L, M, B, 2H)
        inp = torch.from_numpy(np.ascontiguousarray(text.transpose(1, 0, 2, 3)).reshape(m, -1, 2 * hs))
        proj = torch.bmm(inp, layer.w_ih).numpy().reshape(m, length, batch, 2, 3 * hs)  # both directions at once
        gi = np.empty((length, m, 2, batch, 3 * hs), dtype=np.float32)
        gi[:, :, 0] = proj[..., 0, :].transpose(1, 0, 2, 3)
        gi[:, :, 1] = proj[:, ::-1, :, 1, :].transpose(1, 0, 2, 3)
        gi = gi.reshape(length, 2 * m, batch, 3 * hs)
        gi += layer.b_ih
        return gi

    def log_probs(self, x: torch.Tensor | np.ndarray, temperature: float = 1.0) -> torch.Tensor:
        """NameGRU.forward for this batch: (batch, classes) log of the members' mean probability at
        this temperature (combine_members, in float64 NumPy: a few us instead of ~100)."""
        z = self._member_logits(x).astype(np.float64) / temperature  # (M, B, C)
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        return torch.from_numpy(np.log(p.mean(0)).astype(np.float32))

    def member_logits(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """x: (batch, length) character indices, no padding -> (members, batch, classes) logits."""
        return torch.from_numpy(self._member_logits(x))

    def _member_logits(self, x: torch.Tensor | np.ndarray) -> np.ndarray:
        ids = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if ids.ndim != 2 or ids.shape[1] == 0 or (ids == PAD).any():
            raise ValueError("FusedMembers takes a (batch, length) batch of names of one length, without padding")
        if ids.min() < 0 or ids.max() >= len(self.table):
            raise IndexError(f"character index out of range [1, {len(self.table)}): {ids.min()}..{ids.max()}")
        states = self._recur(self._first_gates(ids), self.layers[0])  # (L, 2M, B, H)
        for layer in self.layers[1:]:
            states = self._recur(self._next_gates(states, layer), layer)
        last = np.concatenate([states[-1, 0::2], states[-1, 1::2]], axis=-1)  # (M, B, 2H): final fwd ++ bwd
        return last @ self.head_w + self.head_b  # (M, B, C)
