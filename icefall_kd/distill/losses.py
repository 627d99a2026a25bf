"""The two distillation losses of the paper: hidden-layer MSE (stage 1) and KL between
output distributions on transducer lattice nodes (stage 2).

Both are sums over the batch on the transducer loss's per-frame scale, so the trainer's
division by the number of encoder frames applies to them as it does to the RNN-T loss.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from torch import nn

from icefall_kd.distill.smoothing import (
    SmoothingConfig,
    at_least_float32,
    power_log_softmax,
    smoothed_teacher,
)

KD_NODE_SETS = ("pruned", "full")  # lattice nodes that --output-kd lattice compares
KD_CLASSES = ("vocab", "collapsed3", "nonblank")


def frame_mask(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(N,) lengths -> (N, T) True on valid frames."""
    return torch.arange(num_frames, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def hidden_mse(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
               lengths: torch.Tensor,
               projections: Optional[Sequence[Optional[nn.Module]]] = None) -> torch.Tensor:
    """sum_pairs sum_{b, t < T_b} mean_d (P(h_s) - h_t)^2.

    student, teacher: equally long lists of (N, T, D_s) and (N, T, D_t) hidden states
    (teacher ones already detached); projections: per pair a module mapping D_s -> D_t, or
    None where the dimensions match. Frames past ``lengths`` contribute nothing.
    """
    if len(student) != len(teacher):
        raise ValueError(f"{len(student)} student layers but {len(teacher)} teacher layers")
    total = student[0].new_zeros(())
    for i, (h_s, h_t) in enumerate(zip(student, teacher)):
        proj = projections[i] if projections is not None else None
        if proj is not None:
            h_s = proj(h_s)
        if h_s.shape != h_t.shape:
            raise ValueError(f"layer pair {i}: student {tuple(h_s.shape)} vs teacher "
                             f"{tuple(h_t.shape)}; give a projection when dimensions differ")
        mask = frame_mask(lengths, h_s.shape[1]).unsqueeze(-1)
        diff = (at_least_float32(h_s) - at_least_float32(h_t)) * mask
        total = total + diff.pow(2).mean(-1).sum()
    return total


def collapse_to_three(log_probs: torch.Tensor, next_symbol: torch.Tensor,
                      has_next: torch.Tensor, blank_id: int = 0) -> torch.Tensor:
    """(..., V) log-probs -> (..., 3) log-probs of {next label y_{u+1}, blank, the rest}
    (Panchapagesan et al., 2021). next_symbol: (...) label at each node; has_next: (...)
    False at u = U_b, where there is no next label (its probability is 0)."""
    lp = at_least_float32(log_probs)
    log_y = lp.gather(-1, next_symbol.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    log_y = torch.where(has_next, log_y, torch.full_like(log_y, -1e4))
    log_blank = lp[..., blank_id]
    # log(1 - p_y - p_blank), kept finite where the two take all the mass.
    log_rest = torch.log1p(-torch.stack([log_y, log_blank], -1).logsumexp(-1).exp()
                           .clamp(max=1 - 1e-6))
    out = torch.stack([log_y, log_blank, log_rest], -1)
    return out - out.logsumexp(-1, keepdim=True)


def without_class(scores: torch.Tensor, class_id: int) -> torch.Tensor:
    """(..., V) logits or log-probs -> (..., V - 1) log-probs of the other classes,
    renormalised: the distribution given that ``class_id`` (blank) is not chosen."""
    keep = torch.arange(scores.shape[-1], device=scores.device) != class_id
    return at_least_float32(scores[..., keep]).log_softmax(-1)


def lattice_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               node_mask: torch.Tensor, smoothing: SmoothingConfig, hinton: bool = False,
               collapse: Optional[dict] = None, node_weights: Optional[torch.Tensor] = None,
               drop_class: Optional[int] = None, per_frame_mean: bool = True):
    """KL(q || r) summed over the batch, averaged over the valid nodes of each frame.

    student_logits, teacher_logits: (B, T, U, V) joiner outputs at the same lattice nodes
    (U = the pruned range or the full symbol axis); node_mask: (B, T, U) True at nodes with
    t < T_b and u <= U_b. q is the power-transformed teacher; r the student, transformed with
    the same exponent in Hinton mode (and the KL scaled by 1/a^2 there). ``collapse``: dict
    with ``next_symbol``, ``has_next`` (B, T, U) and ``blank_id`` for the 3-class variant.
    ``node_weights`` (B, T, U), e.g. alignment occupancy: a weighted instead of a plain mean
    over each frame's nodes. ``drop_class``: compare the distributions over the other
    classes only (the ``nonblank`` variant: which token, not when). ``per_frame_mean=False``:
    the weighted sum over nodes instead of a per-frame mean (weights that already sum to the
    number of events, e.g. emission posteriors, which sum to U_b per utterance).

    Returns (loss, stats) with stats the mean exponent and mean teacher entropies before
    and after smoothing over valid nodes (for logs).
    """
    if drop_class is not None:  # the blank's column is gone, so it gets no gradient at all
        teacher_logits = without_class(teacher_logits, drop_class)
        student_logits = without_class(student_logits, drop_class)
    teacher_lp = at_least_float32(teacher_logits.detach()).log_softmax(-1)
    student_lp = at_least_float32(student_logits).log_softmax(-1)
    if collapse is not None:
        teacher_lp = collapse_to_three(teacher_lp, **collapse)
        student_lp = collapse_to_three(student_lp, **collapse)
    with torch.no_grad():
        log_q, alpha = smoothed_teacher(teacher_lp, node_mask, smoothing)
    scale = torch.ones_like(alpha)
    if hinton:
        student_lp = power_log_softmax(student_lp, alpha)
        scale = alpha.pow(-2)
    kl = (log_q.exp() * (log_q - student_lp)).sum(-1)  # (B, T, U)
    # where, not a product: a masked node adds nothing to the loss or the gradient.
    kl = torch.where(node_mask, kl * scale, torch.zeros_like(kl))
    if node_weights is None:
        if not per_frame_mean:
            raise ValueError("per_frame_mean=False needs node_weights")
        per_frame = kl.sum(-1) / node_mask.sum(-1).clamp(min=1).to(kl.dtype)
    else:
        w = torch.where(node_mask, node_weights.detach().to(kl.dtype), torch.zeros_like(kl))
        per_frame = (kl * w).sum(-1)
        if per_frame_mean:
            per_frame = per_frame / w.sum(-1).clamp(min=1e-8)
    loss = per_frame.sum()
    with torch.no_grad():
        valid = node_mask
        stats = {
            "kd_alpha": float(alpha[valid].mean()) if valid.any() else 1.0,
            "kd_teacher_entropy": float((-(teacher_lp.exp() * teacher_lp).sum(-1))[valid].mean())
            if valid.any() else 0.0,
            "kd_target_entropy": float((-(log_q.exp() * log_q).sum(-1))[valid].mean())
            if valid.any() else 0.0,
        }
    return loss, stats


def token_log_probs(logits: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor,
                    num_rows: int, blank_id: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """What a model emits at each output position, wherever its own alignment puts it.

    logits: (B, T, R, V) joiner outputs at lattice nodes (t, rows[b, t, r]); weights:
    (B, T, R) the probability that the alignment emits a token at each node (emission
    posteriors). Returns log P(k | position s) (B, num_rows, V - 1), the token distribution
    given an emission averaged over the frames where position s is emitted, and the
    emission mass that went into each position (B, num_rows), about 1 where the nodes
    cover the alignment.
    """
    b, t, r, _ = logits.shape
    probs = without_class(logits, blank_id).exp() * weights.detach().unsqueeze(-1).to(logits.dtype)
    index = rows.reshape(b, t * r)
    total = probs.new_zeros(b, num_rows, probs.shape[-1]).scatter_add(
        1, index.unsqueeze(-1).expand(-1, -1, probs.shape[-1]), probs.reshape(b, t * r, -1))
    mass = probs.new_zeros(b, num_rows).scatter_add(1, index, weights.detach().reshape(b, t * r).to(probs.dtype))
    mixed = total / mass.clamp(min=1e-8).unsqueeze(-1)
    return mixed.clamp(min=1e-30).log(), mass


def token_kd(student: Tuple[torch.Tensor, torch.Tensor, torch.Tensor],
             teacher: Tuple[torch.Tensor, torch.Tensor, torch.Tensor], num_tokens: torch.Tensor,
             smoothing: SmoothingConfig, hinton: bool = False, blank_id: int = 0,
             min_mass: float = 0.5):
    """KL between the teacher's and the student's token distributions per output position,
    each taken where that model's own alignment emits the token (see ``token_log_probs``):
    what to emit is learnt from the teacher, when to emit is left to the student's own
    transducer loss, so a teacher that sees the future and emits earlier pushes nothing.

    student, teacher: (logits (B, T, R, V), rows (B, T, R), emission weights (B, T, R)) on
    each model's own pruned nodes; num_tokens: (B,) labels per utterance. Positions whose
    emission mass (either model) is below ``min_mass`` (the pruned band missed them) are
    left out. The power transform acts on the teacher's per-position distribution. Returns
    (sum over positions of KL, stats) like :func:`lattice_kd`.
    """
    num_rows = int(num_tokens.max()) + 1 if len(num_tokens) else 1
    log_s, mass_s = token_log_probs(*student, num_rows, blank_id)
    with torch.no_grad():
        log_t, mass_t = token_log_probs(*(x.detach() for x in teacher), num_rows, blank_id)
    position = torch.arange(num_rows, device=num_tokens.device).unsqueeze(0)
    valid = (position < num_tokens.unsqueeze(1)) & (mass_s >= min_mass) & (mass_t >= min_mass)
    # One "frame" holding every position: a weighted sum over positions, one unit per token.
    return lattice_kd(log_s.unsqueeze(1), log_t.unsqueeze(1), valid.unsqueeze(1), smoothing,
                      hinton, node_weights=torch.ones_like(valid, dtype=log_s.dtype).unsqueeze(1),
                      per_frame_mean=False)
