"""Where the pruned RNN-T functions come from, chosen per device of the tensors they get.

Every backend exposes the same API with the same values (``rnnt_loss_smoothed``,
``get_rnnt_prune_ranges``, ``do_rnnt_pruning``, ``rnnt_loss_pruned``, ``rnnt_loss``):

- ``k2`` when it imports (and, for GPU tensors, was built with CUDA);
- else ``fast_rnnt`` for CPU tensors (or any, when it was built with CUDA);
- else ``torch`` (:mod:`icefall_kd.loss.rnnt_torch`, plain PyTorch, any device).

``ICEFALL_KD_RNNT_BACKEND=k2|fast_rnnt|torch`` forces one; forcing one that cannot take the
tensors' device is refused with a message that says what to do. The choice for each device
type is logged once.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType
from typing import Dict

import torch

CHOICES = ("k2", "fast_rnnt", "torch")
_MODULES = {"k2": "k2", "fast_rnnt": "fast_rnnt", "torch": "icefall_kd.loss.rnnt_torch"}
_chosen: Dict[str, ModuleType] = {}  # device type -> backend module
_dispatcher = None


def _import(name: str) -> ModuleType:
    module = importlib.import_module(_MODULES[name])
    if not hasattr(module, "rnnt_loss_pruned"):
        raise ImportError(f"{_MODULES[name]} has no rnnt_loss_pruned")
    return module


def _takes(module: ModuleType, device_type: str) -> bool:
    if device_type == "cpu" or module.__name__ == _MODULES["torch"]:
        return True
    with_cuda = getattr(module, "with_cuda", False)  # a function in fast_rnnt, a bool in k2
    return device_type == "cuda" and bool(with_cuda() if callable(with_cuda) else with_cuda)


def backend_for(device: torch.device) -> ModuleType:
    """The backend module for tensors on ``device`` (cached per device type)."""
    device_type = torch.device(device).type
    if device_type in _chosen:
        return _chosen[device_type]
    wanted = os.environ.get("ICEFALL_KD_RNNT_BACKEND", "")
    if wanted and wanted not in CHOICES:
        raise ValueError(f"ICEFALL_KD_RNNT_BACKEND={wanted!r}; choose one of {', '.join(CHOICES)} "
                         "or unset it (automatic choice per device)")
    errors = []
    for name in [wanted] if wanted else list(CHOICES):
        try:
            module = _import(name)
        except Exception as error:  # k2 wheels fail in many ways (undefined symbols ...)
            errors.append(f"{name}: {error}")
            continue
        if _takes(module, device_type):
            break
        errors.append(f"{name}: built without {device_type} support")
    else:
        if wanted:
            raise RuntimeError(
                f"ICEFALL_KD_RNNT_BACKEND={wanted} cannot compute the loss on {device_type} "
                f"tensors ({'; '.join(errors)}). Set ICEFALL_KD_RNNT_BACKEND=torch (plain "
                "PyTorch, any device) or unset it to choose per device; or train on the CPU.")
        raise ImportError("No pruned RNN-T backend: " + "; ".join(errors)
                          + ". Run tools/install.sh (it builds fast_rnnt).")
    logging.info(f"pruned RNN-T loss on {device_type} tensors: {name} backend"
                 + (" (ICEFALL_KD_RNNT_BACKEND)" if wanted else ""))
    _chosen[device_type] = module
    return module


class _PerDevice:
    """Looks like a backend module; each call goes to :func:`backend_for` of the device of
    its first tensor argument."""

    def __getattr__(self, name: str):
        def call(*args, **kwargs):
            tensor = next(a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor))
            return getattr(backend_for(tensor.device), name)(*args, **kwargs)

        call.__name__ = name
        return call


def rnnt_backend() -> _PerDevice:
    """The pruned RNN-T API; every function runs on the backend for its tensors' device."""
    global _dispatcher
    if _dispatcher is None:
        _dispatcher = _PerDevice()
    return _dispatcher
