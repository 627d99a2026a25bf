"""Where the pruned RNN-T functions come from: k2 when it imports, else fast_rnnt.

Both expose the same API with the same values (``rnnt_loss_smoothed``,
``get_rnnt_prune_ranges``, ``do_rnnt_pruning``, ``rnnt_loss_pruned``, ``rnnt_loss``).
``ICEFALL_KD_RNNT_BACKEND=fast_rnnt`` or ``=k2`` forces one.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

_backend: ModuleType | None = None


def rnnt_backend() -> ModuleType:
    global _backend
    if _backend is None:
        wanted = os.environ.get("ICEFALL_KD_RNNT_BACKEND", "")
        candidates = [wanted] if wanted else ["k2", "fast_rnnt"]
        errors = []
        for name in candidates:
            try:
                module = importlib.import_module(name)
                if hasattr(module, "rnnt_loss_pruned"):
                    _backend = module
                    break
            except Exception as error:  # k2 wheels fail in many ways (undefined symbols ...)
                errors.append(f"{name}: {error}")
        if _backend is None:
            raise ImportError(
                "No pruned RNN-T backend: " + "; ".join(errors)
                + ". Run tools/install.sh (it builds fast_rnnt)."
            )
    return _backend
