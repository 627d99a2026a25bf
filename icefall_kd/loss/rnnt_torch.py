"""The pruned RNN-T API in plain PyTorch, on any device (``ICEFALL_KD_RNNT_BACKEND=torch``).

Same functions, arguments and values as fast_rnnt / k2 (their ``rnnt_loss.py`` is the
reference for behaviour; this is an independent implementation): ``rnnt_loss_smoothed``,
``get_rnnt_prune_ranges``, ``do_rnnt_pruning``, ``rnnt_loss_pruned``, ``rnnt_loss``. Only
``rnnt_type="regular"`` (a symbol does not advance the frame), which is what the project uses.

Conventions, shared by every function here:

- B utterances, T frames, S symbols (padded), C classes (vocabulary, blank included).
- ``boundary``: (B, 4) int64 rows ``[s_begin, t_begin, s_end, t_end]``; here ``s_begin`` and
  ``t_begin`` must be 0, ``s_end = S_b`` and ``t_end = T_b`` are each utterance's lengths.
  None means ``[0, 0, S, T]`` for every row.
- The lattice has nodes (s, t), 0 <= s <= S, 0 <= t <= T. ``px: (B, S, T + 1)`` scores the
  symbol arc (s, t) -> (s + 1, t), ``py: (B, S + 1, T)`` the blank arc (s, t) -> (s, t + 1).
  ``px[:, :, T_b]`` is -inf: no symbol after the last frame.
- The total score of utterance b is ``p[b, S_b, T_b]`` of the forward recursion
  ``p[0, 0] = 0, p[s, t] = logaddexp(p[s - 1, t] + px[s - 1, t], p[s, t - 1] + py[s, t - 1])``.

The recursion runs over anti-diagonals (d = s + t, S + T steps, each one vectorised over the
batch and the diagonal), in at least float32. Its backward is not autograd: the local arc
posteriors (which share of p at a node came over each incoming arc) are computed in one go,
then the occupation of every node is propagated back along the diagonals, which gives the
"occupation gradients" ``px_grad`` and ``py_grad`` that the prune ranges come from. Nothing
here syncs the host with the device except the input checks on CPU tensors.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from torch import Tensor

__all__ = ["rnnt_loss_smoothed", "get_rnnt_prune_ranges", "do_rnnt_pruning",
           "rnnt_loss_pruned", "rnnt_loss", "mutual_information_recursion", "with_cuda"]

with_cuda = True  # nothing here is compiled: every torch device works


# ----------------------------------------------------------------------- the recursion
def _skew_index(S: int, T: int, device) -> Tuple[Tensor, Tensor]:
    """For the (D = S + T + 1, S + 1) diagonal layout: the flat index into an (S + 1, T + 1)
    grid of node (s, t = d - s) at [d, s], and whether that node exists (0 <= t <= T)."""
    d = torch.arange(S + T + 1, device=device).view(-1, 1)
    s = torch.arange(S + 1, device=device).view(1, -1)
    t = d - s
    valid = (t >= 0) & (t <= T)
    return s * (T + 1) + t.clamp(0, T), valid


def _to_diagonals(grid: Tensor, index: Tensor, valid: Tensor, fill: float) -> Tensor:
    """(B, S + 1, T + 1) grid -> (B, D, S + 1), node (s, t) at [d = s + t, s]."""
    B = grid.shape[0]
    flat = grid.reshape(B, -1).gather(1, index.reshape(1, -1).expand(B, -1))
    return flat.view(B, *index.shape).masked_fill(~valid, fill)


def _from_diagonals(diag: Tensor, S: int, T: int) -> Tensor:
    """(B, D, S + 1) -> (B, S + 1, T + 1), the inverse of :func:`_to_diagonals`."""
    s = torch.arange(S + 1, device=diag.device).view(-1, 1)
    t = torch.arange(T + 1, device=diag.device).view(1, -1)
    index = ((s + t) * (S + 1) + s).reshape(1, -1).expand(diag.shape[0], -1)
    return diag.reshape(diag.shape[0], -1).gather(1, index).view(-1, S + 1, T + 1)


def _forward_scores(px: Tensor, py: Tensor, ends: Tensor):
    """Forward recursion. px (B, S, T + 1), py (B, S + 1, T), ends (B, 2) = [s_end, t_end].
    Returns the scores (B,) and what the backward needs."""
    B, S, T1 = px.shape
    T = T1 - 1
    neg_inf = float("-inf")
    index, valid = _skew_index(S, T, px.device)
    # Arcs leaving each node, on the diagonal layout; a missing arc is -inf. Both get an
    # extra -inf column in front, like p below, so that the arcs into node s (column s + 1)
    # are x_arc[..., s] (from node s - 1) and y_arc[..., s + 1] (from node s).
    x_grid = torch.nn.functional.pad(px, (0, 0, 0, 1), value=neg_inf)  # (B, S + 1, T + 1)
    y_grid = torch.nn.functional.pad(py, (0, 1), value=neg_inf)  # (B, S + 1, T + 1)
    x_arc = torch.nn.functional.pad(_to_diagonals(x_grid, index, valid, neg_inf), (1, 0),
                                    value=neg_inf)  # (B, D, S + 2)
    y_arc = torch.nn.functional.pad(_to_diagonals(y_grid, index, valid, neg_inf), (1, 0),
                                    value=neg_inf)  # (B, D, S + 2)
    D = S + T + 1
    p = torch.full((B, D, S + 2), neg_inf, dtype=px.dtype, device=px.device)
    p[:, 0, 1] = 0.0
    for d in range(1, D):
        prev = p[:, d - 1]
        from_x = prev[:, :-1] + x_arc[:, d - 1, :-1]  # (s - 1, t) -> (s, t)
        from_y = prev[:, 1:] + y_arc[:, d - 1, 1:]  # (s, t - 1) -> (s, t)
        torch.logaddexp(from_x, from_y, out=p[:, d, 1:])
    s_end, t_end = ends[:, 0], ends[:, 1]
    scores = p[torch.arange(B, device=px.device), s_end + t_end, s_end + 1]
    return scores, (p, x_arc, y_arc)


def _occupation_grads(saved, ends: Tensor, S: int, T: int) -> Tuple[Tensor, Tensor]:
    """d score / d px and d score / d py (occupation probabilities of the arcs)."""
    p, x_arc, y_arc = saved
    B, D, _ = p.shape
    # Local posteriors of the two arcs into each node (d >= 1): the share of p there that
    # came over each. The x share is computed from the forward's own rounded terms, the
    # y share as 1 - x, so that they sum to 1 exactly (fast_rnnt does the same); error
    # then does not build up along the S + T steps back. Unreachable nodes get 0 and 0.
    node = p[:, 1:, 1:]  # (B, D - 1, S + 1)
    from_x = p[:, :-1, :-1] + x_arc[:, :-1, :-1]
    in_x = torch.nan_to_num(torch.exp(from_x - node), nan=0.0)
    in_y = torch.where(node == float("-inf"), 0.0, 1.0 - in_x)
    # Occupation of each node: 1 at the end node, then back along the diagonals.
    occ = torch.zeros((B, D, S + 1), dtype=p.dtype, device=p.device)
    s_end, t_end = ends[:, 0], ends[:, 1]
    occ[torch.arange(B, device=p.device), s_end + t_end, s_end] = 1.0
    for d in range(D - 1, 0, -1):
        occ[:, d - 1, :-1].addcmul_(occ[:, d, 1:], in_x[:, d - 1, 1:])
        occ[:, d - 1].addcmul_(occ[:, d], in_y[:, d - 1])
    # Flow through each arc, stored at the node it leaves ([d, s] for d < D - 1).
    x_flow = torch.nn.functional.pad(occ[:, 1:, 1:] * in_x[:, :, 1:], (0, 1, 0, 1))
    y_flow = torch.nn.functional.pad(occ[:, 1:] * in_y, (0, 0, 0, 1))
    px_grad = _from_diagonals(x_flow, S, T)[:, :S, :]  # (B, S, T + 1)
    py_grad = _from_diagonals(y_flow, S, T)[:, :, :T]  # (B, S + 1, T)
    return px_grad, py_grad


class _MutualInformation(torch.autograd.Function):
    """Scores (B,) from px, py; the occupation gradients go into ``grads_out`` (a list of
    two) when ``return_grad``, and are the backward (times the scores' gradient)."""

    @staticmethod
    def forward(ctx, px, py, ends, return_grad, grads_out):
        scores, saved = _forward_scores(px, py, ends)
        ctx.grads = None
        ctx.saved = saved
        if return_grad:
            ctx.grads = _occupation_grads(saved, ends, px.shape[1], py.shape[2])
            ctx.saved = None  # the diagonals are not needed twice
            grads_out[:] = ctx.grads
        ctx.ends = ends
        ctx.shape = (px.shape[1], py.shape[2])
        return scores

    @staticmethod
    def backward(ctx, scores_grad):
        grads = ctx.grads
        if grads is None:
            grads = _occupation_grads(ctx.saved, ctx.ends, *ctx.shape)
        scale = scores_grad.view(-1, 1, 1)
        return grads[0] * scale, grads[1] * scale, None, None, None


def _lengths(boundary: Optional[Tensor], B: int, S: int, T: int, device) -> Tensor:
    """(B, 2) [s_end, t_end]; checks the rows on CPU (a check on a GPU would sync)."""
    if boundary is None:
        return torch.tensor([[S, T]], dtype=torch.int64, device=device).expand(B, 2)
    assert boundary.shape == (B, 4) and boundary.dtype == torch.int64, boundary.shape
    if boundary.device.type == "cpu":
        assert (boundary[:, :2] == 0).all(), "the torch backend needs s_begin = t_begin = 0"
        assert ((boundary[:, 2] <= S) & (boundary[:, 3] <= T)).all(), (boundary, S, T)
    return boundary[:, 2:].to(device)


def mutual_information_recursion(px: Tensor, py: Tensor, boundary: Optional[Tensor] = None,
                                 return_grad: bool = False
                                 ) -> Union[Tensor, Tuple[Tensor, Tuple[Tensor, Tensor]]]:
    """Total scores (B,) of the lattice (module docstring); with ``return_grad`` also
    ``(px_grad, py_grad)``, the derivatives of ``scores.sum()``, shaped like px and py.
    Half-precision inputs are computed in float32 and the gradients cast back."""
    B, S, T1 = px.shape
    T = py.shape[2]
    assert T1 == T + 1, "only the regular RNN-T lattice (px has T + 1 columns)"
    assert py.shape == (B, S + 1, T), (px.shape, py.shape)
    dtype = px.dtype
    compute = dtype if dtype == torch.float64 else torch.float32
    ends = _lengths(boundary, B, S, T, px.device)
    grads = [None, None]
    scores = _MutualInformation.apply(px.to(compute), py.to(compute), ends, return_grad, grads)
    scores = scores.to(dtype)
    if not return_grad:
        return scores
    return scores, (grads[0].to(dtype), grads[1].to(dtype))


# ------------------------------------------------------------------ lattice log-probs
def _mask_after_last_frame(px: Tensor, boundary: Optional[Tensor]) -> Tensor:
    """px (B, S, T + 1) with column T_b set to -inf (no symbol after the last frame)."""
    if boundary is None:
        return px
    B, S, T1 = px.shape
    t_end = boundary[:, 3].view(B, 1, 1).expand(B, S, 1)
    return px.scatter(2, t_end, float("-inf"))


def _with_final_column(px: Tensor) -> Tensor:
    """(B, S, T) -> (B, S, T + 1) with -inf at t = T."""
    return torch.nn.functional.pad(px, (0, 1), value=float("-inf"))


def _delay_penalty(px: Tensor, boundary: Optional[Tensor], delay_penalty: float) -> Tensor:
    """Adds ``delay_penalty * ((T_b - 1) / 2 - t)`` to the symbol arcs of frame t: emitting
    early is rewarded, late penalised, zero on average over the utterance."""
    if delay_penalty <= 0.0:
        return px
    B, S, T1 = px.shape
    if boundary is None:
        centre = torch.full((B,), (T1 - 2) / 2, device=px.device)
    else:
        centre = (boundary[:, 3] - 1) / 2
    frames = torch.arange(T1, device=px.device)
    penalty = (centre.view(B, 1, 1) - frames.view(1, 1, T1)) * delay_penalty
    return px + penalty.to(px.dtype)


def _reduce(negated: Tensor, reduction: Optional[str]) -> Tensor:
    if reduction == "none":
        return -negated
    if reduction == "mean":
        return -negated.mean()
    if reduction == "sum":
        return -negated.sum()
    raise ValueError(f"reduction should be 'none', 'mean' or 'sum', not {reduction!r}")


def _check_regular(rnnt_type: str) -> None:
    if rnnt_type != "regular":
        raise NotImplementedError(f"rnnt_type={rnnt_type!r}: the torch backend has 'regular' only")


def get_rnnt_logprobs_smoothed(lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
                               lm_only_scale: float = 0.1, am_only_scale: float = 0.1,
                               boundary: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """px (B, S, T + 1) and py (B, S + 1, T) of the "simple" joiner ``lm + am`` (normalised
    over C), interpolated in the log domain with an LM-only model (``lm`` normalised alone,
    weight ``lm_only_scale``) and an AM-only one (``am`` against the batch's average LM
    distribution, weight ``am_only_scale``). lm: (B, S + 1, C), am: (B, T, C), symbols: (B, S)."""
    B, T, C = am.shape
    S = lm.shape[1] - 1
    assert symbols.shape == (B, S), (symbols.shape, B, S)
    tiny = torch.finfo(am.dtype).tiny
    # exp() of the inputs shifted by their maxima cannot overflow; the maxima come back in
    # the log domain.
    am_max = am.max(dim=2, keepdim=True).values  # (B, T, 1)
    lm_max = lm.max(dim=2, keepdim=True).values  # (B, S + 1, 1)
    am_exp = (am - am_max).exp()
    lm_exp = (lm - lm_max).exp()
    joint_norm = (torch.matmul(lm_exp, am_exp.transpose(1, 2)) + tiny).log()
    joint_norm = joint_norm + lm_max + am_max.transpose(1, 2)  # (B, S + 1, T)
    lm_sum = lm_exp.sum(dim=2, keepdim=True)  # (B, S + 1, 1)
    unigram = (lm_exp / lm_sum).mean(dim=(0, 1)) + tiny  # (C,) average LM distribution
    am_norm = (torch.mv(am_exp.reshape(-1, C), unigram).view(B, T, 1).log() + am_max)
    am_norm = am_norm.transpose(1, 2)  # (B, 1, T)
    lm_norm = lm_sum.log() + lm_max  # (B, S + 1, 1)
    log_unigram = unigram.log()

    am_sym = _with_final_column(am.transpose(1, 2).gather(
        1, symbols.unsqueeze(2).expand(B, S, T)))  # (B, S, T + 1), am score of symbol s
    lm_sym = lm[:, :S].gather(2, symbols.unsqueeze(2))  # (B, S, 1)
    unigram_sym = log_unigram[symbols].unsqueeze(2)  # (B, S, 1)

    def final_pad(norm):  # normalisers are (.., T); px has T + 1 columns (the last is -inf)
        return torch.nn.functional.pad(norm, (0, 1))

    px_joint = am_sym + lm_sym - final_pad(joint_norm[:, :S])
    px_am_only = am_sym + unigram_sym - final_pad(am_norm)
    px_lm_only = lm_sym - lm_norm[:, :S]
    am_blank = am[:, :, termination_symbol].unsqueeze(1)  # (B, 1, T)
    lm_blank = lm[:, :, termination_symbol].unsqueeze(2)  # (B, S + 1, 1)
    py_joint = am_blank + lm_blank - joint_norm
    py_am_only = am_blank + log_unigram[termination_symbol] - am_norm
    py_lm_only = lm_blank - lm_norm

    joint_scale = 1.0 - lm_only_scale - am_only_scale
    # A scale of exactly 0 would make 0 * -inf = nan; 1e-20 is as good as 0 otherwise.
    lm_only_scale = lm_only_scale or 1.0e-20
    am_only_scale = am_only_scale or 1.0e-20
    px = px_joint * joint_scale + px_lm_only * lm_only_scale + px_am_only * am_only_scale
    py = py_joint * joint_scale + py_lm_only * lm_only_scale + py_am_only * am_only_scale
    return _mask_after_last_frame(px, boundary), py


def get_rnnt_logprobs_joint(logits: Tensor, symbols: Tensor, termination_symbol: int,
                            boundary: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """px, py from full joiner output logits (B, T, S + 1, C)."""
    B, T, S1, C = logits.shape
    S = S1 - 1
    assert symbols.shape == (B, S), (symbols.shape, logits.shape)
    norm = logits.logsumexp(dim=3)  # (B, T, S + 1)
    sym = logits[:, :, :S].gather(3, symbols.view(B, 1, S, 1).expand(B, T, S, 1)).squeeze(3)
    px = _with_final_column((sym - norm[:, :, :S]).transpose(1, 2))  # (B, S, T + 1)
    py = (logits[:, :, :, termination_symbol] - norm).transpose(1, 2)  # (B, S + 1, T)
    return _mask_after_last_frame(px, boundary), py


def get_rnnt_logprobs_pruned(logits: Tensor, symbols: Tensor, ranges: Tensor,
                             termination_symbol: int, boundary: Optional[Tensor] = None
                             ) -> Tuple[Tensor, Tensor]:
    """px, py from pruned joiner output logits (B, T, R, C) at the nodes ``ranges`` (B, T, R)
    (frame t, symbol positions ranges[b, t, :]); every other arc is -inf."""
    B, T, R, C = logits.shape
    S = symbols.shape[1]
    assert ranges.shape == (B, T, R), (ranges.shape, logits.shape)
    norm = logits.logsumexp(dim=3)  # (B, T, R)
    # The symbol that leaves node (s, t) is symbols[s]; past the last one, the terminator
    # (its x arc is dropped below; only the position matters).
    next_symbol = torch.cat([symbols, symbols.new_full((B, 1), termination_symbol)], 1)
    node_symbol = next_symbol.gather(1, ranges.reshape(B, -1)).view(B, T, R)
    x_pruned = logits.gather(3, node_symbol.unsqueeze(3)).squeeze(3) - norm
    y_pruned = logits[..., termination_symbol] - norm
    full = logits.new_full((B, T, S + 1), float("-inf"))
    px = full.scatter(2, ranges, x_pruned)[:, :, :S].transpose(1, 2)  # (B, S, T)
    py = full.scatter(2, ranges, y_pruned).transpose(1, 2)  # (B, S + 1, T)
    return _mask_after_last_frame(_with_final_column(px), boundary), py


# --------------------------------------------------------------------------- losses
def rnnt_loss_smoothed(lm: Tensor, am: Tensor, symbols: Tensor, termination_symbol: int,
                       lm_only_scale: float = 0.1, am_only_scale: float = 0.1,
                       boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
                       delay_penalty: float = 0.0, reduction: Optional[str] = "mean",
                       return_grad: bool = False):
    """The "simple" loss of :func:`get_rnnt_logprobs_smoothed`; with ``return_grad`` also
    ``(px_grad, py_grad)`` for :func:`get_rnnt_prune_ranges`."""
    _check_regular(rnnt_type)
    px, py = get_rnnt_logprobs_smoothed(lm, am, symbols, termination_symbol, lm_only_scale,
                                        am_only_scale, boundary)
    px = _delay_penalty(px, boundary, delay_penalty)
    out = mutual_information_recursion(px, py, boundary, return_grad)
    if return_grad:
        return _reduce(out[0], reduction), out[1]
    return _reduce(out, reduction)


def rnnt_loss(logits: Tensor, symbols: Tensor, termination_symbol: int,
              boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
              delay_penalty: float = 0.0, reduction: Optional[str] = "mean",
              return_grad: bool = False):
    """The full RNN-T loss from joiner output logits (B, T, S + 1, C)."""
    _check_regular(rnnt_type)
    px, py = get_rnnt_logprobs_joint(logits, symbols, termination_symbol, boundary)
    px = _delay_penalty(px, boundary, delay_penalty)
    out = mutual_information_recursion(px, py, boundary, return_grad)
    if return_grad:
        return _reduce(out[0], reduction), out[1]
    return _reduce(out, reduction)


def rnnt_loss_pruned(logits: Tensor, symbols: Tensor, ranges: Tensor, termination_symbol: int,
                     boundary: Optional[Tensor] = None, rnnt_type: str = "regular",
                     delay_penalty: float = 0.0, reduction: Optional[str] = "mean",
                     return_grad: bool = False):
    """The RNN-T loss on the pruned lattice: logits (B, T, R, C) at ``ranges`` (B, T, R)."""
    _check_regular(rnnt_type)
    px, py = get_rnnt_logprobs_pruned(logits, symbols, ranges, termination_symbol, boundary)
    px = _delay_penalty(px, boundary, delay_penalty)
    out = mutual_information_recursion(px, py, boundary, return_grad)
    if return_grad:
        return _reduce(out[0], reduction), out[1]
    return _reduce(out, reduction)


# -------------------------------------------------------------------------- pruning
def _non_decreasing_from_right(x: Tensor) -> Tensor:
    """The largest non-decreasing sequence below x along the last dim: y[i] = min(x[i:])."""
    return x.flip(-1).cummin(-1).values.flip(-1)


def get_rnnt_prune_ranges(px_grad: Tensor, py_grad: Tensor, boundary: Tensor,
                          s_range: int) -> Tensor:
    """(B, T, R) symbol positions to keep per frame, R = ``s_range`` (raised to what the
    lengths need on CPU, lowered to S + 1): the window of R positions per frame that holds
    the most occupation of the simple loss (``py_grad`` inside it minus the ``px_grad``
    entering it from below), then made to start at 0, never decrease and never skip a
    symbol (consecutive starts differ by less than R). Frames from T_b - 1 on take the last
    window, so that every utterance's end node is kept."""
    B, S, T1 = px_grad.shape
    T = py_grad.shape[2]
    assert T1 == T + 1 and py_grad.shape == (B, S + 1, T), (px_grad.shape, py_grad.shape)
    assert boundary.shape == (B, 4), boundary.shape
    if boundary.device.type == "cpu":  # on a GPU this would sync; see the README's GPU notes
        needed = int(((boundary[:, 2] - 1).div(boundary[:, 3], rounding_mode="trunc") + 2).max())
        if s_range < needed:
            import logging

            logging.warning(f"get_rnnt_prune_ranges: s_range={s_range} is too small for "
                            f"S={boundary[:, 2].tolist()}, T={boundary[:, 3].tolist()}; "
                            f"using {needed}")
            s_range = needed
    s_range = min(s_range, S + 1)
    assert s_range >= 2, "the regular RNN-T lattice needs s_range >= 2"
    windows = S + 2 - s_range  # possible starts 0 .. S + 1 - s_range
    inside = py_grad.unfold(1, s_range, 1).sum(-1)  # (B, windows, T)
    entering = torch.nn.functional.pad(px_grad[:, :, :T], (0, 0, 1, 0))[:, :windows]
    start = (inside - entering).argmax(dim=1)  # (B, T); the first maximum on ties
    frames = torch.arange(T, device=px_grad.device).view(1, T)
    last_start = (boundary[:, 2:3] - s_range + 1).clamp(min=0)
    start = torch.where(frames < boundary[:, 3:4] - 1, start, last_start)
    # Never decrease; then never step by s_range or more (u = (R - 1) t - start must not
    # decrease), starting at 0; then back.
    start = _non_decreasing_from_right(start)
    step = (s_range - 1) * frames
    start = step - _non_decreasing_from_right(step - start).clamp(min=0)
    return start.unsqueeze(2) + torch.arange(s_range, device=px_grad.device)


def do_rnnt_pruning(am: Tensor, lm: Tensor, ranges: Tensor) -> Tuple[Tensor, Tensor]:
    """am (B, T, C) and lm (B, S + 1, C) at the pruned nodes: both (B, T, R, C)."""
    B, T, R = ranges.shape
    assert am.shape[:2] == (B, T) and lm.shape[0] == B, (am.shape, lm.shape, ranges.shape)
    C = lm.shape[2]
    lm_pruned = lm.gather(1, ranges.reshape(B, T * R, 1).expand(B, T * R, C)).view(B, T, R, C)
    return am.unsqueeze(2).expand(B, T, R, am.shape[2]), lm_pruned
