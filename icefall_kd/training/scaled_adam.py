"""ScaledAdam: Adam whose step is relative to the size of each parameter tensor, plus a
learned scale per tensor (Yao et al., "Zipformer", arXiv:2310.11230, section 4.1; defaults
as icefall's ``optim.py`` sets them).

For a tensor θ (more than one element) with gradient g, at step t:

    r      = clamp(RMS(θ), min=param_min_rms)
    Δ'     = -lr · r · m̂/(√v̂ + eps)                   m, v: Adam's moments of g
    h      = Σ g ⊙ θ                                  the gradient of log(scale of θ)
    Δ'_r   = -lr · scalar_lr_scale · n̂/(√ŵ + eps) · θ  n, w: Adam's moments of h
    θ     <- θ + Δ' + Δ'_r

so a tensor of RMS 0.01 and one of RMS 1 move by the same fraction of themselves, and the
overall size of a tensor is learned as one number. Above ``param_max_rms`` the scale may
only shrink. A scalar (one element) takes plain Adam steps of ``lr · scalar_lr_scale``,
clamped to ±``scalar_max``. No weight decay: the RMS limit bounds the tensors instead.
The Eden schedule (:class:`~icefall_kd.training.scheduler.Eden`) drives ``lr`` as for AdamW.
"""

from __future__ import annotations

from typing import Iterable, Tuple

import torch


class ScaledAdam(torch.optim.Optimizer):
    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 0.045,
                 betas: Tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                 scalar_lr_scale: float = 0.1, param_min_rms: float = 1e-5,
                 param_max_rms: float = 3.0, scalar_max: float = 10.0) -> None:
        if not lr > 0:
            raise ValueError(f"ScaledAdam: lr must be above 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"ScaledAdam: betas must be in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=betas, eps=eps, scalar_lr_scale=scalar_lr_scale,
                        param_min_rms=param_min_rms, param_max_rms=param_max_rms,
                        scalar_max=scalar_max)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict) -> None:
        grad = p.grad
        if grad.is_sparse:
            raise RuntimeError("ScaledAdam does not take sparse gradients")
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
            if p.numel() > 1:
                state["scale_exp_avg"] = torch.zeros((), dtype=p.dtype, device=p.device)
                state["scale_exp_avg_sq"] = torch.zeros((), dtype=p.dtype, device=p.device)
        state["step"] += 1
        correction1 = 1.0 - beta1 ** state["step"]
        correction2 = 1.0 - beta2 ** state["step"]
        state["exp_avg"].mul_(beta1).add_(grad, alpha=1.0 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        direction = (state["exp_avg"] / correction1) / (
            (state["exp_avg_sq"] / correction2).sqrt() + eps)
        scalar_lr = lr * group["scalar_lr_scale"]
        if p.numel() == 1:
            p.add_(direction, alpha=-scalar_lr).clamp_(-group["scalar_max"], group["scalar_max"])
            return
        rms = p.pow(2).mean().sqrt()
        scale_grad = (grad * p).sum()
        state["scale_exp_avg"].mul_(beta1).add_(scale_grad, alpha=1.0 - beta1)
        state["scale_exp_avg_sq"].mul_(beta2).addcmul_(scale_grad, scale_grad, value=1.0 - beta2)
        scale_direction = (state["scale_exp_avg"] / correction1) / (
            (state["scale_exp_avg_sq"] / correction2).sqrt() + eps)
        # Too large a tensor may shrink but not grow (a negative direction grows it); tensor
        # operations throughout, so that a GPU never waits for a Python comparison.
        scale_direction = torch.where(rms > group["param_max_rms"],
                                      scale_direction.clamp(min=0.0), scale_direction)
        step = direction * rms.clamp(min=group["param_min_rms"])
        p.mul_(1.0 - scalar_lr * scale_direction).sub_(step, alpha=lr)
