"""Training schedules: icefall's Eden learning rate (any torch optimizer) and the warm-up of
the pruned RNN-T loss scales."""

from __future__ import annotations

from typing import Tuple

import torch


class Eden:
    """lr = base_lr * ((b^2 + B^2) / B^2)^-0.25 * ((e^2 + E^2) / E^2)^-0.25 * warmup(b)

    b: batches trained, e: epochs finished (fractional), B = ``lr_batches``,
    E = ``lr_epochs``; warmup rises linearly from 0.5 to 1 over ``warmup_batches``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr_batches: float, lr_epochs: float,
                 warmup_batches: float = 500.0) -> None:
        self.optimizer = optimizer
        self.lr_batches = lr_batches
        self.lr_epochs = lr_epochs
        self.warmup_batches = warmup_batches
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.batch = 0
        self.epoch = 0.0
        self._apply()

    def factor(self) -> float:
        batch_factor = ((self.batch**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25
        epoch_factor = ((self.epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        warmup = min(1.0, 0.5 + 0.5 * self.batch / self.warmup_batches)
        return batch_factor * epoch_factor * warmup

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor()

    def step_batch(self, batch: int) -> None:
        self.batch = batch
        self._apply()

    def step_epoch(self, epoch: float) -> None:
        self.epoch = epoch
        self._apply()

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {"batch": self.batch, "epoch": self.epoch, "base_lrs": self.base_lrs}

    def load_state_dict(self, state: dict) -> None:
        self.batch, self.epoch, self.base_lrs = state["batch"], state["epoch"], state["base_lrs"]
        self._apply()


def warmup_loss_scales(batch_idx: int, warm_step: int,
                       simple_loss_scale: float) -> Tuple[float, float]:
    """icefall's warm-up: the simple loss alone at first (the pruned loss needs good ranges),
    then a linear move to ``simple_loss_scale`` and a pruned scale of 1 at ``warm_step``."""
    if batch_idx >= warm_step:
        return simple_loss_scale, 1.0
    progress = batch_idx / warm_step
    return 1.0 - progress * (1.0 - simple_loss_scale), 0.1 + 0.9 * progress
