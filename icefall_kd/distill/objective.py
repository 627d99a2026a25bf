"""The distillation objective of both stages (and of the one-stage and single-stage
ablations): the student's transducer loss plus a hidden-layer MSE and/or an output-layer
KL against the frozen teacher.

    L = s_trans * L_trans + s_hidden * L_MSE + s_output(batch) * L_KD

Stage 1 is s_hidden > 0, s_output = 0; stage 2 is s_output > 0 (s_hidden = 0 by default);
the one-stage "hierarchical KD" ablation sets both.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import ClassVar, List, Optional, Tuple

import torch
from torch import nn

from icefall_kd.distill.losses import KD_CLASSES, KD_NODE_SETS, hidden_mse, lattice_kd, token_kd
from icefall_kd.config import add_config_arguments, config_from_args, option
from icefall_kd.distill.smoothing import SmoothingConfig
from icefall_kd.distill.teacher import (
    FrozenTeacher,
    load_exported_targets,
    resolve_layer,
    teacher_ranges,
)
from icefall_kd.loss.rnnt_backend import rnnt_backend
from icefall_kd.training.trainer import LossInfo
from icefall_kd.training.transducer_objective import TransducerObjective

KD_NODE_WEIGHTS = ("uniform", "occupancy", "emission")


def parse_layer_pairs(text: str) -> List[Tuple[int, int]]:
    """ "-1:-1" or "1:1,3:3" -> [(student_layer, teacher_layer), ...]; -1 = encoder output."""
    pairs = []
    for item in str(text).split(","):
        if not item.strip():
            continue
        try:
            s, t = item.split(":")
            pairs.append((int(s), int(t)))
        except ValueError:
            raise ValueError(f"bad layer pair {item!r} in {text!r}: write student:teacher, "
                             "e.g. -1:-1 or 1:1,3:3") from None
    if not pairs:
        raise ValueError("--hidden-kd-layers is empty")
    return pairs


OUTPUT_KD_UNITS = ("token", "lattice")


@dataclass
class DistillConfig:
    """The distillation terms and their weights (the ``distillation`` flags). The field
    defaults are the method's choices; each stage script turns its own term on
    (``--hidden-kd-scale`` in stage 1, ``--output-kd-scale`` in stage 2)."""

    transducer_loss_scale: float = option(1.0, "Weight of the student's own pruned RNN-T loss "
                                          "(0: distillation only)")
    hidden_kd_scale: float = option(0.0, "Stage 1: weight of the MSE between student and "
                                    "teacher encoder outputs")
    hidden_kd_layers: str = option("-1:-1", "student:teacher layer pairs for the MSE, 0-based, "
                                   "-1 = encoder output")
    output_kd_scale: float = option(0.0, "Stage 2: weight of KL(smoothed teacher || student)")
    output_kd_warm_step: int = option(0, "Batches over which the output KD weight rises "
                                      "linearly from 0")
    output_kd: str = option("token", "Where the output distributions are compared. token (the "
                            "method): per output token, each model's distribution where its "
                            "own alignment emits it (timing-free: the teacher's earlier "
                            "emissions do not pull the student); lattice: on the nodes of the "
                            "transducer lattice, set by the --kd-nodes, --kd-classes, "
                            "--kd-ranges-from, --kd-node-weights and --kd-teacher-shift flags",
                            choices=OUTPUT_KD_UNITS)
    kd_nodes: str = option("pruned", "--output-kd lattice: pruned: the band of the pruned RNN-T "
                           "loss; full: every (t, u) node (memory B*T*U*V: small cases only)",
                           choices=KD_NODE_SETS)
    kd_classes: str = option("vocab", "--output-kd lattice: vocab: full output distribution; "
                             "collapsed3: {next label, blank, rest} (Panchapagesan et al. 2021, "
                             "a baseline); nonblank: the distribution over tokens given that "
                             "one is emitted (blank left out and both sides renormalised)",
                             choices=KD_CLASSES)
    kd_ranges_from: str = option("student", "--output-kd lattice: whose simple loss picks the "
                                 "pruned nodes", choices=("student", "teacher"))
    kd_node_weights: str = option("uniform", "--output-kd lattice: how nodes are weighted: "
                                  "uniform or occupancy (the probability that the student's "
                                  "alignment passes through a node) average each frame's "
                                  "nodes; emission weights each node by the probability that "
                                  "the student emits a token there and sums",
                                  choices=KD_NODE_WEIGHTS)
    kd_teacher_shift: int = option(0, "--output-kd lattice: delay the teacher's encoder output "
                                   "by this many frames before its joiner is evaluated (a "
                                   "full-context teacher emits earlier than a streaming student)")
    kd_hinton: bool = option(True, "Transform the student with the same exponent and scale the "
                             "KL by 1/a^2 (Hinton's KD); false: only the teacher is transformed")
    teacher_targets: str = option("online", "online: teacher encoder in the same step on the "
                                  "same input; exported: hidden states stored with the cuts "
                                  "(kd_teacher_export/export_targets.py)",
                                  choices=("online", "exported"))
    smoothing: SmoothingConfig = dataclasses.field(default_factory=SmoothingConfig)

    # Meaningful with --output-kd lattice only.
    LATTICE_ONLY: ClassVar[Tuple[str, ...]] = (
        "kd_nodes", "kd_classes", "kd_ranges_from", "kd_node_weights", "kd_teacher_shift")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"--{f.name.replace('_', '-')} {getattr(self, f.name)!r}: "
                                 f"choose from {allowed}")
        if self.hidden_kd_scale <= 0 and self.output_kd_scale <= 0:
            raise ValueError("neither --hidden-kd-scale nor --output-kd-scale is positive: "
                             "nothing to distil (use the streaming recipe for plain training)")
        if self.output_kd == "token":
            defaults = {f.name: f.default for f in dataclasses.fields(self)}
            changed = [f"--{name.replace('_', '-')}" for name in self.LATTICE_ONLY
                       if getattr(self, name) != defaults[name]]
            if changed:
                raise ValueError(f"{', '.join(changed)} apply to --output-kd lattice only (per-"
                                 "token KD reads each model on its own alignment, blank left "
                                 "out): drop them or pass --output-kd lattice")
        if self.teacher_targets == "exported" and self.output_kd_scale > 0 and self.kd_ranges_from == "teacher":
            raise ValueError("--kd-ranges-from teacher needs the teacher's simple heads on its "
                             "encoder output; it works with exported targets only through "
                             "--teacher-targets online")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser, DistillConfig, title="distillation")
        add_config_arguments(parser, SmoothingConfig, title="teacher smoothing",
                             description="The power transform of the teacher's output "
                             "distribution (stage 2)", prefix="kd-")

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "DistillConfig":
        return config_from_args(cls, args,
                                smoothing=config_from_args(SmoothingConfig, args, prefix="kd-"))


class DistillationObjective:
    """Callable objective for :class:`~icefall_kd.training.trainer.Trainer`.

    ``projections``: optional modules mapping student to teacher dimensions per layer pair;
    they must be trained, so the caller registers them on the student (``kd_projections``).
    """

    def __init__(self, transducer: TransducerObjective, teacher: FrozenTeacher,
                 config: DistillConfig) -> None:
        self.transducer = transducer
        self.teacher = teacher
        self.config = config
        self.layer_pairs = parse_layer_pairs(config.hidden_kd_layers)
        num_t = teacher.num_layers
        self.teacher_layers = [resolve_layer(t, num_t) for _, t in self.layer_pairs]
        self._teacher_device: Optional[torch.device] = None
        # The update count where this stage began (the Trainer sets it when it continues
        # another folder's training): the KD weight's warm-up counts from there.
        self.stage_start_batch = 0

    def output_kd_weight(self, batch_idx_train: int, is_training: bool) -> float:
        warm = self.config.output_kd_warm_step
        done = batch_idx_train - self.stage_start_batch
        if not is_training or warm <= 0 or done >= warm:
            return self.config.output_kd_scale
        return self.config.output_kd_scale * done / warm

    def _teacher_hidden(self, batch: dict, features, feature_lens, student_lens):
        """(teacher encoder output or None, {layer: (N, T, D)})."""
        if self.config.teacher_targets == "online":
            enc_t, lens_t, layers_t = self.teacher.encode(features, feature_lens)
            if not torch.equal(lens_t, student_lens):
                raise RuntimeError("teacher and student encoders subsample differently; "
                                   "distillation needs frame-aligned encoders")
            return enc_t, {i: layers_t[i] for i in set(self.teacher_layers)}
        cuts = batch["supervisions"]["cut"]
        final = self.teacher.num_layers - 1
        wanted = set(self.teacher_layers) | ({final} if self.config.output_kd_scale > 0 else set())
        stored = load_exported_targets(cuts, sorted(wanted), student_lens, features.device)
        return stored.get(final), stored

    def __call__(self, model: nn.Module, batch: dict, batch_idx_train: int,
                 is_training: bool) -> LossInfo:
        cfg = self.config
        student = getattr(model, "module", model)
        if self._teacher_device != next(student.parameters()).device:
            self._teacher_device = next(student.parameters()).device
            self.teacher.to(self._teacher_device)
        step = self.transducer.forward_batch(model, batch, is_training,
                                             return_layers=cfg.hidden_kd_scale > 0)
        loss, enc_s, lens = step.output.loss, step.output.encoder_out, step.output.encoder_lens
        frames = float(lens.sum())
        trans_total, values = self.transducer.combine(step.output, batch_idx_train, is_training)
        total = cfg.transducer_loss_scale * trans_total
        enc_t, hidden_t = self._teacher_hidden(batch, step.features, step.feature_lens, lens)

        if cfg.hidden_kd_scale > 0:
            layers_s = step.output.encoder_layers
            h_s = [layers_s[resolve_layer(s, len(layers_s))] for s, _ in self.layer_pairs]
            h_t = [hidden_t[t] for t in self.teacher_layers]
            projections = getattr(student, "kd_projections", None)
            mse = hidden_mse(h_s, h_t, lens, projections)
            total = total + cfg.hidden_kd_scale * mse
            values["hidden_mse"] = float(mse.detach())

        weight = self.output_kd_weight(batch_idx_train, is_training)
        if cfg.output_kd_scale > 0:
            kd, stats = self._output_kd(student, enc_s, lens, enc_t, loss)
            total = total + weight * kd
            values["output_kd"] = float(kd.detach())
            values.update({k: v * frames for k, v in stats.items()})  # logs divide by frames
        values["loss"] = float(total.detach())
        return LossInfo(loss=total, frames=frames, values=values)

    def _output_kd(self, student, enc_s, lens, enc_t, loss):
        cfg = self.config
        teacher = self.teacher.model
        backend = rnnt_backend()
        symbols, boundary = loss.symbols, loss.boundary
        y_lens = boundary[:, 2]
        blank = student.config.blank_id
        decoder_in = torch.cat([torch.full_like(symbols[:, :1], blank), symbols], dim=1)
        if cfg.kd_teacher_shift > 0:
            shift = min(cfg.kd_teacher_shift, enc_t.shape[1])
            enc_t = torch.cat([enc_t[:, :1].expand(-1, shift, -1), enc_t[:, : enc_t.shape[1] - shift]], 1)
        with torch.no_grad():
            dec_t = teacher.decoder(decoder_in)
            am_t = teacher.joiner.encoder_proj(enc_t)
            lm_t = teacher.joiner.decoder_proj(dec_t)
        if cfg.output_kd == "token":  # the student's own pruned logits; nothing to project
            return self._token_kd(student, teacher, loss, enc_t, dec_t, am_t, lm_t)
        am_s = student.joiner.encoder_proj(enc_s)
        lm_s = student.joiner.decoder_proj(loss.decoder_out)
        if cfg.kd_nodes == "full":
            u = torch.arange(symbols.shape[1] + 1, device=symbols.device)
            node_u = u.view(1, 1, -1).expand(enc_s.shape[0], enc_s.shape[1], -1)
            logits_s = student.joiner(am_s.unsqueeze(2), lm_s.unsqueeze(1), project_input=False)
            with torch.no_grad():
                logits_t = teacher.joiner(am_t.unsqueeze(2), lm_t.unsqueeze(1), project_input=False)
        else:
            if cfg.kd_ranges_from == "teacher":
                ranges = teacher_ranges(teacher, enc_t, dec_t, symbols, boundary,
                                        self.transducer.config.prune_range, self.transducer.config.lm_scale,
                                        self.transducer.config.am_scale)
                am_p, lm_p = backend.do_rnnt_pruning(am=am_s, lm=lm_s, ranges=ranges)
                logits_s = student.joiner(am_p, lm_p, project_input=False)
            else:
                ranges = loss.ranges
                logits_s = loss.logits
            node_u = ranges
            with torch.no_grad():
                am_p, lm_p = backend.do_rnnt_pruning(am=am_t, lm=lm_t, ranges=ranges)
                logits_t = teacher.joiner(am_p, lm_p, project_input=False)
        t_valid = torch.arange(enc_s.shape[1], device=lens.device).view(1, -1, 1) < lens.view(-1, 1, 1)
        node_mask = t_valid & (node_u <= y_lens.view(-1, 1, 1))
        collapse = None
        if cfg.kd_classes == "collapsed3":
            has_next = node_u < y_lens.view(-1, 1, 1)
            padded = torch.cat([symbols, torch.zeros_like(symbols[:, :1])], dim=1)
            next_symbol = padded.gather(1, node_u.reshape(len(symbols), -1)).view_as(node_u)
            collapse = dict(next_symbol=next_symbol, has_next=has_next, blank_id=blank)
        weights = None
        if cfg.kd_node_weights != "uniform":
            occ = loss.node_occupancy if cfg.kd_node_weights == "occupancy" else loss.emission_occupancy
            weights = occ.gather(2, node_u.clamp(max=occ.shape[2] - 1))  # (B, T, S + 1) -> nodes
        return lattice_kd(logits_s, logits_t, node_mask, cfg.smoothing, cfg.kd_hinton, collapse,
                          weights, drop_class=blank if cfg.kd_classes == "nonblank" else None,
                          per_frame_mean=cfg.kd_node_weights != "emission")

    def _token_kd(self, student, teacher, loss, enc_t, dec_t, am_t, lm_t):
        """KD per output token, each model on its own alignment (``--output-kd token``)."""
        cfg = self.config
        backend = rnnt_backend()
        blank = student.config.blank_id
        ranges_t, emission_t = teacher_ranges(teacher, enc_t, dec_t, loss.symbols, loss.boundary,
                                              self.transducer.config.prune_range, self.transducer.config.lm_scale,
                                              self.transducer.config.am_scale, with_emission=True)
        with torch.no_grad():
            am_p, lm_p = backend.do_rnnt_pruning(am=am_t, lm=lm_t, ranges=ranges_t)
            logits_t = teacher.joiner(am_p, lm_p, project_input=False)
        emission_s = loss.emission_occupancy
        student_side = (loss.logits, loss.ranges,
                        emission_s.gather(2, loss.ranges.clamp(max=emission_s.shape[2] - 1)))
        teacher_side = (logits_t, ranges_t,
                        emission_t.gather(2, ranges_t.clamp(max=emission_t.shape[2] - 1)))
        return token_kd(student_side, teacher_side, loss.boundary[:, 2], cfg.smoothing,
                        cfg.kd_hinton, blank)
