"""The frozen full-context teacher and its targets: computed on the fly in the student's
forward pass, or exported once and stored with the cuts through lhotse.

Trade-off: on the fly costs a teacher encoder pass per step but sees exactly the student's
(augmented) input. Exported targets cost one pass over the data and disk space
(T x D values per cut, float16 by default), and make every later step cheaper, but they are
computed from unaugmented features: with SpecAugment's time warping the frames would no
longer correspond, so that combination is refused.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from icefall_kd.model.transducer import Transducer

TARGET_FIELD = "teacher_hidden_{layer}"


class FrozenTeacher:
    """A transducer in eval mode without gradients. Deliberately not an ``nn.Module``
    attribute of the student, so it is never optimised, averaged or checkpointed with it."""

    def __init__(self, model: Transducer) -> None:
        if model.causal:
            logging.warning("the teacher is a streaming (causal) model; the paper's teacher "
                            "is full-context")
        self.model = model.eval().requires_grad_(False)

    def to(self, device: torch.device) -> "FrozenTeacher":
        self.model.to(device)
        return self

    @property
    def num_layers(self) -> int:
        return self.model.config.encoder.num_layers

    @torch.no_grad()
    def encode(self, features: torch.Tensor, feature_lens: torch.Tensor):
        """Full-context encoder: ((N, T, D) output, (N,) lengths, list of every layer's
        (N, T, D) output)."""
        return self.model.encoder(features, feature_lens, return_layers=True)


def resolve_layer(index: int, num_layers: int) -> int:
    """-1 (the encoder output) and other negative indices -> 0-based layer index."""
    resolved = index + num_layers if index < 0 else index
    if not 0 <= resolved < num_layers:
        raise ValueError(f"layer {index} does not exist in an encoder with {num_layers} layers")
    return resolved


@torch.no_grad()
def export_teacher_targets(teacher: FrozenTeacher, batches, layers: Sequence[int],
                           storage_dir: Path, dtype: str = "float16"):
    """Runs the teacher over ``batches`` (a data loader of K2SpeechRecognitionDataset
    batches with cuts) and yields each cut with its hidden states attached as custom
    array fields ``teacher_hidden_<layer>`` of shape (T, D)."""
    from lhotse import NumpyFilesWriter

    device = next(teacher.model.parameters()).device
    layers = [resolve_layer(i, teacher.num_layers) for i in layers]
    with NumpyFilesWriter(storage_dir) as writer:
        for batch in batches:
            sup = batch["supervisions"]
            features = batch["inputs"].to(device)
            _, lengths, hidden = teacher.encode(features, sup["num_frames"].to(device))
            for i, cut in enumerate(sup["cut"]):
                n = int(lengths[i])
                for layer in layers:
                    array = hidden[layer][i, :n].float().cpu().numpy().astype(dtype)
                    key = f"{cut.id}-L{layer}"
                    stored = writer.store_array(key, array)  # (T, D) at the 40 ms encoder rate
                    cut = cut.with_custom(TARGET_FIELD.format(layer=layer), stored)
                yield cut


def load_exported_targets(cuts: Sequence, layers: Sequence[int], expected_lens: torch.Tensor,
                          device: torch.device) -> Dict[int, torch.Tensor]:
    """{layer: (N, T, D) float32} zero-padded from the cuts' stored targets. Refuses, naming
    the cut, when a target is missing or its length differs from the student's frames."""
    out: Dict[int, torch.Tensor] = {}
    for layer in layers:
        field = TARGET_FIELD.format(layer=layer)
        arrays: List[np.ndarray] = []
        for cut, n in zip(cuts, expected_lens.tolist()):
            if not cut.has_custom(field):
                raise KeyError(f"cut {cut.id} has no {field}: export the teacher targets for "
                               f"layer {layer} (kd_teacher_export/export_targets.py --layers) "
                               "or use --teacher-targets online")
            array = cut.load_custom(field)
            if array.shape[0] != n:
                raise ValueError(
                    f"cut {cut.id}: exported {field} has {array.shape[0]} frames, the student "
                    f"has {n}. The targets were exported with other features or another "
                    "subsampling; export them again.")
            arrays.append(array)
        max_len = int(expected_lens.max())
        dim = arrays[0].shape[1]
        padded = np.zeros((len(arrays), max_len, dim), dtype=np.float32)
        for i, array in enumerate(arrays):
            padded[i, : array.shape[0]] = array
        out[layer] = torch.from_numpy(padded).to(device)
    return out


def teacher_ranges(teacher: Transducer, encoder_out: torch.Tensor, decoder_out: torch.Tensor,
                   symbols: torch.Tensor, boundary: torch.Tensor, prune_range: int,
                   lm_scale: float, am_scale: float,
                   with_emission: bool = False):
    """The pruning ranges (B, T, R) the teacher's own simple loss chooses; with
    ``with_emission`` also its emission posteriors (B, T, S + 1) (the probability that
    its alignment emits symbol s + 1 at frame t)."""
    from icefall_kd.loss.rnnt_backend import rnnt_backend
    from icefall_kd.loss.transducer_loss import arc_posteriors

    backend = rnnt_backend()
    with torch.no_grad():  # the occupation gradients come from the recursion itself
        lm = teacher.simple_lm_proj(decoder_out).float()
        am = teacher.simple_am_proj(encoder_out).float()
        _, (px_grad, py_grad) = backend.rnnt_loss_smoothed(
            lm=lm, am=am, symbols=symbols, termination_symbol=teacher.config.blank_id,
            lm_only_scale=lm_scale, am_only_scale=am_scale, boundary=boundary,
            reduction="sum", return_grad=True,
        )
        ranges = backend.get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad,
                                               boundary=boundary, s_range=prune_range)
        if not with_emission:
            return ranges
        return ranges, arc_posteriors(px_grad, py_grad)[1]


def projections_for(student_dims: Sequence[int], teacher_dims: Sequence[int],
                    always: bool = False) -> Optional[nn.ModuleList]:
    """A Linear per layer pair whose dimensions differ (identity elsewhere), or, with
    ``always``, for every pair; None when no pair needs one."""
    if not always and all(s == t for s, t in zip(student_dims, teacher_dims)):
        return None
    return nn.ModuleList(nn.Linear(s, t) if always or s != t else nn.Identity()
                         for s, t in zip(student_dims, teacher_dims))


@torch.no_grad()
def fit_projections(projections: nn.ModuleList, student_hidden: Sequence[torch.Tensor],
                    teacher_hidden: Sequence[torch.Tensor]) -> List[float]:
    """Ridge-regularised least-squares fit of each Linear in ``projections`` (bias included) mapping the
    student's frames to the teacher's: (F, D_s) and (F, D_t) valid frames per pair. Returns
    the fitted MSE per pair. Independently trained models use unrelated bases; starting the
    map at its least-squares solution lets the MSE teach what the teacher encodes without
    first forcing the student into the teacher's basis."""
    errors = []
    for proj, h_s, h_t in zip(projections, student_hidden, teacher_hidden):
        if not isinstance(proj, nn.Linear):
            errors.append(float("nan"))
            continue
        x = torch.cat([h_s.double(), torch.ones(len(h_s), 1, dtype=torch.float64)], dim=1)
        # Ridge: LayerNorm'd outputs lie near an affine subspace, so plain least squares
        # finds huge cancelling weights that blow up on the next batch.
        gram = x.T @ x
        ridge = 1e-3 * gram.diagonal().mean() * torch.eye(len(gram), dtype=gram.dtype)
        solution = torch.linalg.solve(gram + ridge, x.T @ h_t.double())  # (D_s + 1, D_t)
        proj.weight.copy_(solution[:-1].T.to(proj.weight.dtype))
        proj.bias.copy_(solution[-1].to(proj.bias.dtype))
        errors.append(float((proj(h_s.float()) - h_t.float()).pow(2).mean()))
    return errors
