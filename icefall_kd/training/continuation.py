"""Continuing another experiment's training in a new folder (``--init-state training``).

A fine-tuning stage that starts afresh (new optimizer moments, the schedule back at its
peak, a running average of its own updates only) is a different training from the one it
continues. Measured on the embedded corpus (issue 17): the ScaledAdam baseline's raw
weights at epoch 8 give 29.85% dev-clean WER and its running average 21.05%; a fresh
AdamW fine-tuning from that average drifted to 21.6, 22.2 and 22.5% in three epochs, with
or without a teacher. Continuing instead carries on the optimizer state (matched by
parameter name, so a distillation stage may add a projection or drop one), the schedule's
position, the running average, the update count, the data order's epoch and the RNG, so
that without a new loss the continued run is the original run trained on, update for update.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Sequence

import torch
from torch import nn


def parameter_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> List[str]:
    """The name of each tensor the optimizer steps, in its state_dict's order."""
    names = {id(p): n for n, p in model.named_parameters()}
    return [names.get(id(p), f"<unnamed {i}>")
            for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])]


def saved_parameter_names(state: dict, current: Sequence[str]) -> List[str]:
    """The names of the tensors a checkpoint's optimizer stepped. Checkpoints written before
    the names were stored held a plain transducer: its parameters are those of ``current``
    (this run's, in order) that its model state has."""
    names = state.get("optimizer_param_names")
    if names is not None:
        return list(names)
    return [n for n in current if n in state["model"]]


def continued_optimizer_state(path: Path, state: dict, optimizer: torch.optim.Optimizer,
                              names: Sequence[str]) -> Dict[str, int]:
    """Loads the optimizer state of checkpoint ``state`` (read from ``path``) into
    ``optimizer``, tensor by tensor by name; tensors the checkpoint did not train start
    fresh. The learning rates and other settings stay this run's. Returns the counts
    (continued, fresh, dropped: trained there, absent here)."""
    saved = state["optimizer"]
    saved_ids = [i for g in saved["param_groups"] for i in g["params"]]
    saved_names = saved_parameter_names(state, names)
    if len(saved_names) != len(saved_ids):
        raise SystemExit(
            f"--init-state training: {path} holds optimizer state for {len(saved_ids)} "
            f"tensors but its model names {len(saved_names)}: it was written by another "
            "model. Use --init-state weights (the weights only, a fresh optimizer)")
    by_name = dict(zip(saved_names, saved_ids))
    params = [p for g in optimizer.param_groups for p in g["params"]]
    current = optimizer.state_dict()
    continued = {}
    for i, (name, p) in enumerate(zip(names, params)):
        moments = saved["state"].get(by_name.get(name, -1))
        if moments is None:
            continue
        shape = moments["exp_avg"].shape
        if shape != p.shape:
            raise SystemExit(f"--init-state training: {path}'s optimizer state for {name} "
                             f"has shape {tuple(shape)}, this model's tensor "
                             f"{tuple(p.shape)}. Use --init-state weights")
        continued[i] = moments
    current["state"] = continued
    optimizer.load_state_dict(current)
    counts = {"continued": len(continued), "fresh": len(params) - len(continued),
              "dropped": len(set(saved_names) - set(names))}
    logging.info(f"continued {path}'s optimizer state: {counts['continued']} tensors; "
                 f"{counts['fresh']} new here start fresh, {counts['dropped']} not "
                 "trained here are dropped")
    return counts


def continued_average(model_avg: Dict[str, torch.Tensor], state: dict) -> None:
    """The running average carries on for every tensor the checkpoint averaged; a tensor new
    here (a projection) keeps its starting value."""
    saved = state.get("model_avg") or {}
    for name, value in model_avg.items():
        if name in saved and saved[name].shape == value.shape:
            value.copy_(saved[name].to(value.device, value.dtype))
