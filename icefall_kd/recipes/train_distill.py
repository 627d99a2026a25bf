"""Train a streaming student against a frozen full-context teacher: stage 1 (hidden-layer
MSE), stage 2 (output-layer KD) or both at once (the one-stage ablation). The recipe
folders' ``train.py`` call :func:`main` with their stage's defaults."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Dict, Optional, Sequence

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.fbank import feature_statistics
from icefall_kd.distill.objective import DistillationObjective, DistillConfig, parse_layer_pairs
from icefall_kd.distill.teacher import FrozenTeacher, load_transducer, projections_for, resolve_layer
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.common import load_bpe, new_model
from icefall_kd.recipes.train_transducer import (
    build_parser,
    init_from_checkpoint,
    run_trainer,
    training_cuts,
    transducer_objective,
)
from icefall_kd.training.trainer import setup_distributed
from icefall_kd.utils import setup_logging, str2bool


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    DistillConfig.add_arguments(parser)
    t = parser.add_argument_group("teacher")
    t.add_argument("--teacher-exp-dir", type=Path, default=Path("transducer_teacher/exp"),
                   help="The full-context teacher's experiment folder")
    t.add_argument("--teacher-epoch", type=int, required=True,
                   help="Teacher checkpoint epoch-N.pt (as decode.py --epoch)")
    t.add_argument("--teacher-avg", type=int, default=1,
                   help="Epochs averaged for the teacher (as decode.py --avg)")
    t.add_argument("--teacher-use-averaged-model", type=str2bool, default=True)


def initial_student(args, sp, teacher_model: Transducer) -> Transducer:
    """The student before its first update (a resumed run then loads its checkpoint)."""
    if args.init_from in ("scratch", ""):
        return new_model(args, sp, causal=True)
    if args.init_from == "teacher":
        config = teacher_model.config
        student = Transducer(type(config).from_dict({**config.to_dict(),
                                                     "encoder": {**config.to_dict()["encoder"],
                                                                 "causal": True}}))
        student.load_state_dict(teacher_model.state_dict())
        logging.info("student initialised from the teacher's weights (streaming encoder)")
        return student
    return init_from_checkpoint(args, causal=True)


def main(description: str, defaults: Optional[Dict[str, object]] = None,
         argv: Optional[Sequence[str]] = None) -> None:
    parser = build_parser(description, streaming=True)
    add_distill_arguments(parser)
    parser.set_defaults(**{"init_from": "transducer_streaming/exp", **(defaults or {})})
    for action in parser._actions:  # the student's start has more choices here
        if action.dest == "init_from":
            action.help = ("Student start: an experiment folder (the streaming baseline, or the "
                           "stage-1 model for stage 2), 'teacher' (its weights in a streaming "
                           "encoder) or 'scratch'")
    args = parser.parse_args(argv)
    setup_logging()
    dist = setup_distributed()
    sp = load_bpe(args.lang_dir)
    try:
        config = DistillConfig.from_args(args)
        pairs = parse_layer_pairs(config.hidden_kd_layers)
    except ValueError as e:
        raise SystemExit(str(e)) from None
    if config.teacher_targets == "exported" and args.spec_aug_time_warp_factor > 0 and args.enable_spec_aug:
        raise SystemExit("exported teacher targets are frame-aligned with unaugmented input; "
                         "SpecAugment's time warping moves frames: pass "
                         "--spec-aug-time-warp-factor 0 or --teacher-targets online")
    teacher_model = load_transducer(args.teacher_exp_dir, args.teacher_epoch, args.teacher_avg,
                                    args.teacher_use_averaged_model)
    if teacher_model.config.vocab_size != sp.get_piece_size():
        raise SystemExit(f"the teacher has {teacher_model.config.vocab_size} tokens but "
                         f"{args.lang_dir} has {sp.get_piece_size()}: use the teacher's --lang-dir")
    student = initial_student(args, sp, teacher_model)
    teacher = FrozenTeacher(teacher_model)
    if config.hidden_kd_scale > 0:
        s_dim, t_dim = student.encoder.output_dim, teacher_model.encoder.output_dim
        for s, t in pairs:  # fail now, not after the first batch
            resolve_layer(s, student.config.encoder.num_layers)
            resolve_layer(t, teacher.num_layers)
        projections = projections_for([s_dim] * len(pairs), [t_dim] * len(pairs))
        if projections is not None:
            # Trained with the student, dropped for decoding (see model_state_for_decoding).
            student.kd_projections = projections
            logging.info(f"hidden KD: projections {s_dim} -> {t_dim}")
    objective = DistillationObjective(transducer_objective(args, sp), teacher, config)
    data = AsrDataModule(DataConfig.from_args(args))
    train_cuts = training_cuts(args, data, sp, dist)
    if args.init_from in ("scratch", ""):
        mean, std = feature_statistics(train_cuts)
        student.encoder.embed.set_feature_stats(mean, std)
    run_trainer(args, student, objective, data, train_cuts, dist)
