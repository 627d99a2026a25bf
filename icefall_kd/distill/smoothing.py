"""Power transformation of the teacher's output distribution and the rules that choose its
exponent per lattice node (the paper's "adaptive smoothness").

For p = softmax(z), p^a / sum(p^a) = softmax(a * z): a power a < 1 is a temperature 1/a.
What is adaptive is how a is chosen. Every rule here looks at the teacher only, without
gradient:

- ``entropy_floor`` (default): a = 1 where the teacher's entropy H(p) is at least
  ``entropy_floor``; elsewhere the largest a in [alpha_min, 1] whose transformed
  distribution reaches the floor (bisection: H(q_a) does not increase with a). Only
  over-confident nodes are smoothed, each by just enough.
- ``maxprob_cap``: the largest a whose largest probability is at most ``maxprob_cap``.
- ``confidence_temperature``: a = 1 / (1 + kappa * max_k p_k), peaky nodes smoothed more.
- ``fixed``: a = 1 / temperature everywhere (plain temperature KD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from icefall_kd.config import option

ALPHA_MODES = ("entropy_floor", "maxprob_cap", "confidence_temperature", "fixed")
GRANULARITIES = ("node", "frame", "utterance")


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """float64 stays (tests), anything lower (bf16/fp16 under autocast) becomes float32."""
    return x if x.dtype == torch.float64 else x.float()


def power_log_softmax(log_probs: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """log of p^a / sum(p^a). log_probs: (..., V) normalised log-probabilities; alpha: (...)
    broadcastable to log_probs without its last axis."""
    scaled = alpha.unsqueeze(-1) * log_probs
    return scaled - scaled.logsumexp(dim=-1, keepdim=True)


def entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """(..., V) log-probabilities -> (...) entropy in nats."""
    return -(log_probs.exp() * log_probs).sum(-1)


@dataclass
class SmoothingConfig:
    """How the teacher's output distribution is power-transformed (flags ``--kd-*``)."""

    mode: str = option("entropy_floor", "How the teacher's power (1/temperature) is chosen "
                       "per node", choices=ALPHA_MODES, flag_name="alpha_mode")
    entropy_floor: float = option(0.5, "entropy_floor: smooth nodes whose teacher entropy is "
                                  "below this (nats)")
    maxprob_cap: float = option(0.9, "maxprob_cap: the largest teacher probability after "
                                "smoothing")
    kappa: float = option(1.0, "confidence_temperature: temperature = 1 + kappa * max prob")
    temperature: float = option(2.0, "fixed: the temperature")
    alpha_min: float = option(0.05, "Smallest power (largest temperature) an adaptive rule "
                              "may use")
    iterations: int = option(14, "Bisection steps of entropy_floor", flag=False)
    granularity: str = option("node", "One power per lattice node, per frame or per "
                              "utterance (the smallest over the nodes it covers)",
                              choices=GRANULARITIES)

    def __post_init__(self) -> None:
        if self.mode not in ALPHA_MODES:
            raise ValueError(f"unknown smoothing mode {self.mode!r}; choose from {ALPHA_MODES}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"unknown granularity {self.granularity!r}; choose from {GRANULARITIES}")
        if not 0.0 < self.alpha_min <= 1.0:
            raise ValueError(f"alpha_min must be in (0, 1], got {self.alpha_min}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")


def _largest_alpha(log_probs: torch.Tensor, accept: Callable[[torch.Tensor], torch.Tensor],
                   alpha_min: float, iterations: int) -> torch.Tensor:
    """Bisection for the largest a in [alpha_min, 1] with accept(q_a) true, where accept
    holds for every a below some threshold. Returns alpha_min where even that fails."""
    shape = log_probs.shape[:-1]
    lo = torch.full(shape, alpha_min, dtype=log_probs.dtype, device=log_probs.device)
    hi = torch.ones(shape, dtype=log_probs.dtype, device=log_probs.device)
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        ok = accept(power_log_softmax(log_probs, mid))
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    done = accept(log_probs)  # a = 1 already acceptable: no smoothing
    return torch.where(done, torch.ones_like(lo), lo)


@torch.no_grad()
def choose_alpha(teacher_log_probs: torch.Tensor, config: SmoothingConfig) -> torch.Tensor:
    """Per-node exponent a in [alpha_min, 1]. teacher_log_probs: (..., V) -> (...)."""
    lp = at_least_float32(teacher_log_probs)
    if config.mode == "fixed":
        return torch.full(lp.shape[:-1], 1.0 / config.temperature, dtype=lp.dtype, device=lp.device)
    if config.mode == "confidence_temperature":
        return 1.0 / (1.0 + config.kappa * lp.max(-1).values.exp())
    if config.mode == "entropy_floor":
        floor = config.entropy_floor
        return _largest_alpha(lp, lambda lq: entropy(lq) >= floor, config.alpha_min,
                              config.iterations)
    cap = config.maxprob_cap
    return _largest_alpha(lp, lambda lq: lq.max(-1).values.exp() <= cap, config.alpha_min,
                          config.iterations)


def pool_alpha(alpha: torch.Tensor, mask: torch.Tensor, granularity: str) -> torch.Tensor:
    """Shares one exponent per frame or per utterance: the smallest (most smoothing) over
    the valid nodes, so the rule's target holds at every node it covers.

    alpha, mask: (B, T, U) nodes of a lattice (U = pruned range or full symbol axis).
    """
    if granularity == "node":
        return alpha
    big = torch.finfo(alpha.dtype).max
    masked = torch.where(mask, alpha, torch.full_like(alpha, big))
    dims = (2,) if granularity == "frame" else (1, 2)
    pooled = masked.amin(dim=dims, keepdim=True)
    pooled = torch.where(pooled == big, torch.ones_like(pooled), pooled)
    return pooled.expand_as(alpha)


def smoothed_teacher(teacher_log_probs: torch.Tensor, mask: torch.Tensor,
                     config: SmoothingConfig,
                     alpha: Optional[torch.Tensor] = None):
    """(log q (B, T, U, V), alpha (B, T, U)): the transformed teacher distribution."""
    if alpha is None:
        alpha = pool_alpha(choose_alpha(teacher_log_probs, config), mask, config.granularity)
    return power_log_softmax(at_least_float32(teacher_log_probs), alpha), alpha
