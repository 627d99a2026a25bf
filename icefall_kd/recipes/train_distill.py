"""Train a streaming student against a frozen full-context teacher: stage 1 (hidden-layer
MSE), stage 2 (output-layer KD) or both at once (the one-stage ablation). The recipe
folders' ``train.py`` call :func:`main` with their stage's defaults."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.fbank import feature_statistics
from icefall_kd.distill.objective import DistillationObjective, DistillConfig, parse_layer_pairs
from icefall_kd.distill.teacher import FrozenTeacher, projections_for, resolve_layer
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.common import load_bpe, load_checked_transducer, new_model
from icefall_kd.recipes.train_transducer import (
    build_parser,
    check_init_state,
    init_from_checkpoint,
    new_conv_context,
    run_trainer,
    start_run,
    training_cuts,
    transducer_objective,
)
from icefall_kd.utils import str2bool


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    DistillConfig.add_arguments(parser)
    parser.add_argument_group("distillation").add_argument(
        "--hidden-kd-projection", choices=["auto", "fitted"], default="auto",
        help="auto: a trained Linear only where student and teacher dimensions differ "
        "(identity otherwise, the paper's MSE); fitted: a Linear for every layer pair, "
        "initialised by least squares on --projection-fit-batches batches, then trained")
    parser.add_argument("--projection-fit-batches", type=int, default=20,
                        help="Batches used for the least-squares start of fitted projections")
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
        return new_model(args, sp, causal=True, conv_context=new_conv_context(args))
    if args.init_from == "teacher":
        config = teacher_model.config
        encoder = {**config.to_dict()["encoder"], "causal": True,
                   "conv_context": new_conv_context(args)}
        student = Transducer(type(config).from_dict({**config.to_dict(), "encoder": encoder}))
        student.load_state_dict(teacher_model.state_dict())
        logging.info("student initialised from the teacher's weights (streaming encoder)")
        return student
    return init_from_checkpoint(args, causal=True)


def fit_student_projections(student: Transducer, teacher: FrozenTeacher,
                            objective: DistillationObjective, pairs, data: AsrDataModule,
                            train_cuts, num_batches: int) -> None:
    """Least-squares start of the projections on the first batches (a resumed run then
    loads the trained ones from its checkpoint)."""
    import torch

    from icefall_kd.distill.losses import frame_mask
    from icefall_kd.distill.teacher import fit_projections
    from icefall_kd.training.transducer_objective import batch_inputs

    student_frames = [[] for _ in pairs]
    teacher_frames = [[] for _ in pairs]
    student.eval()
    with torch.no_grad():
        for _, batch in zip(range(num_batches), data.eval_dataloader(train_cuts)):
            features, lens, _ = batch_inputs(batch, torch.device("cpu"))
            chunk, left = objective.transducer.chunks.sample(False)
            _, out_lens, layers_s = student.encoder(features, lens, chunk, left, return_layers=True)
            _, _, layers_t = teacher.encode(features, lens)
            mask = frame_mask(out_lens, layers_s[0].shape[1])
            n_s = len(layers_s)
            for i, ((s, _), t) in enumerate(zip(pairs, objective.teacher_layers)):
                student_frames[i].append(layers_s[resolve_layer(s, n_s)][mask])
                teacher_frames[i].append(layers_t[t][mask])
    student.train()
    errors = fit_projections(student.kd_projections, [torch.cat(f) for f in student_frames],
                             [torch.cat(f) for f in teacher_frames])
    logging.info(f"hidden KD: projections fitted by least squares on {num_batches} batches; "
                 f"MSE per layer pair after the fit: {[round(e, 4) for e in errors]}")


# What each stage script trains by default: the method (its other choices are
# DistillConfig's field defaults). run.sh passes only what an ablation changes.
STAGE_DEFAULTS: Dict[str, Dict[str, object]] = {
    "stage1": dict(hidden_kd_scale=0.3, hidden_kd_projection="fitted",
                   init_from="transducer_streaming/exp"),
    "stage2": dict(output_kd_scale=0.1, output_kd_warm_step=100, init_from="kd_stage1_hidden/exp"),
}


def build_distill_parser(description: str, stage: str) -> argparse.ArgumentParser:
    """The flags of a distillation stage script (``stage``: a key of STAGE_DEFAULTS)."""
    parser = build_parser(description, streaming=True)
    add_distill_arguments(parser)
    parser.set_defaults(**STAGE_DEFAULTS[stage])
    for action in parser._actions:  # the student's start has more choices here
        if action.dest == "init_from":
            action.help = ("Student start: an experiment folder (the streaming baseline, or the "
                           "stage-1 model for stage 2), 'teacher' (its weights in a streaming "
                           "encoder) or 'scratch'")
    return parser


def with_current_flags(argv: Sequence[str]) -> List[str]:
    """``--kd-nodes token``, the spelling before ``--output-kd token`` (the commands listed in
    RESULTS.md use it), as the current flag."""
    argv = list(argv)
    for i in range(len(argv) - 1):
        if argv[i] == "--kd-nodes" and argv[i + 1] == "token":
            logging.warning("--kd-nodes token is now --output-kd token")
            argv[i], argv[i + 1] = "--output-kd", "token"
    return argv


def main(description: str, stage: str, argv: Optional[Sequence[str]] = None) -> None:
    argv = with_current_flags(sys.argv[1:] if argv is None else argv)
    args = build_distill_parser(description, stage).parse_args(argv)
    check_init_state(args)
    dist = start_run(args)
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
    # The teacher's output distribution is over its tokens: the student (and its --init-from
    # checkpoint, checked in init_from_checkpoint) must share them.
    teacher_model = load_checked_transducer(args.teacher_exp_dir, args.teacher_epoch, args.teacher_avg,
                                            args.teacher_use_averaged_model, args.lang_dir)
    student = initial_student(args, sp, teacher_model)
    teacher = FrozenTeacher(teacher_model)
    if config.hidden_kd_scale > 0:
        s_dim, t_dim = student.encoder.output_dim, teacher_model.encoder.output_dim
        for s, t in pairs:  # fail now, not after the first batch
            resolve_layer(s, student.config.encoder.num_layers)
            resolve_layer(t, teacher.num_layers)
        projections = projections_for([s_dim] * len(pairs), [t_dim] * len(pairs),
                                      always=args.hidden_kd_projection == "fitted")
        if projections is not None:
            # Trained with the student, dropped for decoding (see model_state_for_decoding).
            student.kd_projections = projections
            logging.info(f"hidden KD: projections {s_dim} -> {t_dim}")
    objective = DistillationObjective(transducer_objective(args, sp), teacher, config)
    data = AsrDataModule(DataConfig.from_args(args, seed=args.seed))
    train_cuts = training_cuts(args, data, sp, dist)
    if getattr(student, "kd_projections", None) is not None and args.hidden_kd_projection == "fitted":
        fit_student_projections(student, teacher, objective, pairs, data, train_cuts,
                                args.projection_fit_batches)
    if args.init_from in ("scratch", ""):
        mean, std = feature_statistics(train_cuts)
        student.encoder.embed.set_feature_stats(mean, std)
    run_trainer(args, student, objective, data, train_cuts, dist)
