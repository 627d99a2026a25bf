"""A Zipformer encoder (Yao et al., arXiv:2310.11230) with the Conformer encoder's
interface; see :mod:`icefall_kd.model.zipformer.encoder` for frame rates, the hidden layers
distillation reads, and what was left out."""

from icefall_kd.model.zipformer.config import ZipformerConfig
from icefall_kd.model.zipformer.encoder import (
    ZipformerEncoder,
    ZipformerState,
    stack_states,
    unstack_states,
)

__all__ = ["ZipformerConfig", "ZipformerEncoder", "ZipformerState", "stack_states",
           "unstack_states"]
