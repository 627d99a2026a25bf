"""The pruned RNN-T loss of a :class:`Transducer`, as icefall computes it.

Steps (k2's recipe): a "simple" loss with an additive joiner over the full (T, S) lattice
gives occupation gradients; from them, ``prune_range`` symbols per frame are kept; the real
joiner is evaluated only there and the pruned loss computed on that band.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import nn

from icefall_kd.loss.rnnt_backend import rnnt_backend


@dataclass
class TransducerLossOutput:
    """Losses are sums over the batch (``reduction="sum"``).

    ranges: (B, T, R) int64 symbol positions kept per frame; logits: (B, T, R, V) joiner
    output at those lattice nodes; boundary: (B, 4) ``[0, 0, S_b, T_b]``; symbols: (B, S).
    """

    simple_loss: torch.Tensor
    pruned_loss: torch.Tensor
    ranges: torch.Tensor
    logits: torch.Tensor
    boundary: torch.Tensor
    symbols: torch.Tensor
    decoder_out: Optional[torch.Tensor] = None  # (B, S + 1, decoder_dim), for distillation
    # (B, T, S + 1): probability that the alignment passes through lattice node (t, s),
    # under the simple (smoothed) loss; sums blank and symbol arcs leaving the node.
    node_occupancy: Optional[torch.Tensor] = None
    # (B, T, S + 1): probability that the alignment emits symbol s + 1 at frame t (the
    # symbol arc leaving node (t, s)); 0 at s = S. Sums to S_b over an utterance.
    emission_occupancy: Optional[torch.Tensor] = None


def arc_posteriors(px_grad: torch.Tensor, py_grad: torch.Tensor):
    """(node occupancy, emission posteriors), both (B, T, S + 1), from the occupation
    gradients of the simple loss: px_grad (B, S, T [+ 1]) of the symbol arcs and py_grad
    (B, S + 1, T) of the blank arcs. Emission is 0 at s = S."""
    emission = torch.zeros_like(py_grad)  # (B, S + 1, T)
    emission[:, :-1, :] = px_grad.detach()[:, :, : emission.shape[2]]  # symbol arcs
    occupancy = py_grad.detach() + emission  # plus the blank arcs
    return occupancy.transpose(1, 2), emission.transpose(1, 2)


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def pad_token_ids(token_ids: List[List[int]], pad: int, device) -> torch.Tensor:
    """(B, S_max) int64, right-padded with ``pad``."""
    max_len = max((len(t) for t in token_ids), default=0)
    out = torch.full((len(token_ids), max_len), pad, dtype=torch.int64, device=device)
    for i, tokens in enumerate(token_ids):
        out[i, : len(tokens)] = torch.tensor(tokens, dtype=torch.int64)
    return out


def pruned_transducer_loss(
    model: nn.Module,
    encoder_out: torch.Tensor,
    encoder_lens: torch.Tensor,
    token_ids: List[List[int]],
    prune_range: int = 5,
    lm_scale: float = 0.25,
    am_scale: float = 0.0,
    delay_penalty: float = 0.0,
) -> TransducerLossOutput:
    """model: a :class:`~icefall_kd.model.transducer.Transducer` (its decoder, joiner, simple
    projections and ``config.blank_id`` are used); encoder_out: (B, T, D) and encoder_lens:
    (B,) from its encoder; token_ids: B lists of BPE ids without blank. Every utterance needs T_b >= S_b (filter cuts first)."""
    backend = rnnt_backend()
    device = encoder_out.device
    blank = model.config.blank_id
    symbols = pad_token_ids(token_ids, 0, device)  # (B, S)
    y_lens = torch.tensor([len(t) for t in token_ids], dtype=torch.int64, device=device)
    decoder_in = torch.cat(
        [torch.full((len(token_ids), 1), blank, dtype=torch.int64, device=device), symbols],
        dim=1,
    )  # (B, S + 1): blank then the symbols
    decoder_out = model.decoder(decoder_in)  # (B, S + 1, decoder_dim)
    boundary = torch.zeros((len(token_ids), 4), dtype=torch.int64, device=device)
    boundary[:, 2] = y_lens
    boundary[:, 3] = encoder_lens
    lm = model.simple_lm_proj(decoder_out)
    am = model.simple_am_proj(encoder_out)
    # The lattice recursions run in float32 even under autocast.
    with torch.autocast(device_type=device.type, enabled=False):
        simple_loss, (px_grad, py_grad) = backend.rnnt_loss_smoothed(
            lm=_at_least_float32(lm), am=_at_least_float32(am), symbols=symbols, termination_symbol=blank,
            lm_only_scale=lm_scale, am_only_scale=am_scale, boundary=boundary,
            delay_penalty=delay_penalty, reduction="sum", return_grad=True,
        )
    ranges = backend.get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad,
                                           boundary=boundary, s_range=prune_range)
    am_pruned, lm_pruned = backend.do_rnnt_pruning(
        am=model.joiner.encoder_proj(encoder_out),
        lm=model.joiner.decoder_proj(decoder_out),
        ranges=ranges,
    )
    logits = model.joiner(am_pruned, lm_pruned, project_input=False)  # (B, T, R, V)
    with torch.autocast(device_type=device.type, enabled=False):
        pruned_loss = backend.rnnt_loss_pruned(
            logits=_at_least_float32(logits), symbols=symbols, ranges=ranges, termination_symbol=blank,
            boundary=boundary, delay_penalty=delay_penalty, reduction="sum",
        )
    occupancy, emission = arc_posteriors(px_grad, py_grad)
    return TransducerLossOutput(simple_loss, pruned_loss, ranges, logits, boundary, symbols,
                                decoder_out=decoder_out, node_occupancy=occupancy,
                                emission_occupancy=emission)


def ctc_loss(model: nn.Module, encoder_out: torch.Tensor, encoder_lens: torch.Tensor,
             token_ids: List[List[int]]) -> torch.Tensor:
    """CTC on the model's auxiliary head (blank = the transducer's blank), summed over the
    batch. encoder_out: (N, T, D)."""
    log_probs = model.ctc_output(encoder_out).float().log_softmax(-1)  # (N, T, V)
    targets = torch.tensor([t for tokens in token_ids for t in tokens], dtype=torch.int64)
    target_lens = torch.tensor([len(t) for t in token_ids], dtype=torch.int64)
    return torch.nn.functional.ctc_loss(
        log_probs.transpose(0, 1), targets, encoder_lens.cpu(), target_lens,
        blank=model.config.blank_id, reduction="sum", zero_infinity=True,
    )

