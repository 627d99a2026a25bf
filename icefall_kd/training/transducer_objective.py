"""The transducer objective of the teacher and the streaming baseline: pruned RNN-T loss
with icefall's warm-up, and for streaming models dynamic chunk training (a random chunk
size and left context per batch, full context among the choices)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import sentencepiece as spm
import torch
from torch import nn

from icefall_kd.config import option
from icefall_kd.model.transducer import TransducerForward
from icefall_kd.training.scheduler import warmup_loss_scales
from icefall_kd.training.trainer import LossInfo


def parse_int_list(text: str) -> List[int]:
    """ "8,16,-1" -> [8, 16, -1]"""
    return [int(x) for x in str(text).split(",") if x.strip()]


@dataclass
class ChunkChoice:
    """Chunk sizes and left contexts in encoder frames (40 ms); -1 = full / unlimited."""

    chunk_sizes: Sequence[int] = (-1,)
    left_contexts: Sequence[int] = (-1,)
    valid_chunk_size: int = -1
    valid_left_context: int = -1

    def sample(self, is_training: bool) -> Tuple[int, int]:
        if not is_training:
            return self.valid_chunk_size, self.valid_left_context
        chunk = random.choice(list(self.chunk_sizes))
        left = random.choice(list(self.left_contexts)) if chunk > 0 else -1
        return chunk, left


def batch_inputs(batch: dict, device: torch.device):
    """(features (N, T, 80), feature_lens (N,), texts) from a K2SpeechRecognitionDataset
    batch. Supervisions cover whole cuts here (LibriSpeech), so num_frames are lengths."""
    features = batch["inputs"].to(device)
    sup = batch["supervisions"]
    feature_lens = sup["num_frames"].to(device)
    return features, feature_lens, list(sup["text"])


@dataclass
class BatchForward:
    """One batch through the model: its inputs (features (N, T_in, 80), feature_lens (N,),
    token_ids: N lists of BPE ids) and what the model computed on them."""

    features: torch.Tensor
    feature_lens: torch.Tensor
    token_ids: List[List[int]]
    output: TransducerForward


@dataclass
class TransducerLossConfig:
    """The transducer loss's settings (the ``loss`` flags of the training recipes)."""

    prune_range: int = option(5, "Symbols kept per frame")
    lm_scale: float = option(0.25, "LM-only weight in the simple loss")
    am_scale: float = option(0.0, "AM-only weight in the simple loss")
    simple_loss_scale: float = option(0.5, "Weight of the simple loss after warm-up")
    warm_step: Optional[int] = option(None, "Batches over which the loss moves from simple to "
                                      "pruned (the pruned loss needs ranges from a trained "
                                      "simple joiner). Default: 1000 from scratch, 0 when "
                                      "--init-from gives a trained model, which has them")
    ctc_loss_scale: float = option(0.2, "Weight of the auxiliary CTC loss on the encoder (0 "
                                   "disables); it speeds up learning the alignment")
    delay_penalty: float = option(0.0, "Rewards earlier emission (k2's delay penalty); 0 "
                                  "disables")

    @property
    def warm_step_batches(self) -> int:
        """``warm_step``, 1000 (from scratch) where the caller left it open."""
        return 1000 if self.warm_step is None else self.warm_step


class TransducerObjective:
    """The pruned RNN-T loss (plus CTC) of a batch, with a chunk draw per batch. Settings:
    ``config``, or :class:`TransducerLossConfig` fields as keywords."""

    def __init__(self, sp: spm.SentencePieceProcessor, chunks: ChunkChoice,
                 config: Optional[TransducerLossConfig] = None, **settings) -> None:
        self.sp = sp
        self.chunks = chunks
        self.config = dataclasses.replace(config or TransducerLossConfig(), **settings)

    def forward_batch(self, model: nn.Module, batch: dict, is_training: bool,
                      return_layers: bool = False) -> "BatchForward":
        """The model's forward pass on a batch, with a chunk size and left context drawn for
        it: the transducer's own loss (teacher, baseline) or the student's part of a
        distillation loss."""
        device = next(model.parameters()).device
        features, feature_lens, texts = batch_inputs(batch, device)
        token_ids = self.sp.encode(texts, out_type=int)
        chunk, left = self.chunks.sample(is_training)
        out = model(
            features, feature_lens, token_ids, chunk_size=chunk, left_context=left,
            prune_range=self.config.prune_range, lm_scale=self.config.lm_scale, am_scale=self.config.am_scale,
            delay_penalty=self.config.delay_penalty if is_training else 0.0,
            with_ctc=self.config.ctc_loss_scale > 0, return_layers=return_layers,
        )
        return BatchForward(features, feature_lens, token_ids, out)

    def combine(self, out: TransducerForward, batch_idx_train: int,
                is_training: bool) -> Tuple[torch.Tensor, Dict[str, float]]:
        """(total transducer loss, {name: sum}) with icefall's warm-up of the two scales."""
        simple_scale, pruned_scale = warmup_loss_scales(
            batch_idx_train if is_training else self.config.warm_step_batches, self.config.warm_step_batches,
            self.config.simple_loss_scale,
        )
        loss = out.loss
        total = simple_scale * loss.simple_loss + pruned_scale * loss.pruned_loss
        values = {"simple_loss": float(loss.simple_loss.detach()),
                  "pruned_loss": float(loss.pruned_loss.detach())}
        if out.ctc_loss is not None:
            total = total + self.config.ctc_loss_scale * out.ctc_loss
            values["ctc_loss"] = float(out.ctc_loss.detach())
        return total, values

    def __call__(self, model: nn.Module, batch: dict, batch_idx_train: int,
                 is_training: bool) -> LossInfo:
        step = self.forward_batch(model, batch, is_training)
        total, values = self.combine(step.output, batch_idx_train, is_training)
        values["loss"] = float(total.detach())
        return LossInfo(loss=total, frames=float(step.output.encoder_lens.sum()), values=values)
