"""Train a transducer with the pruned RNN-T loss: the full-context teacher or the
streaming baseline. The recipe folders' ``train.py`` call :func:`main`."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Optional, Sequence, Tuple

from icefall_kd.config import add_config_arguments, config_from_args
from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.fbank import feature_statistics
from icefall_kd.data.filters import TrainingCutFilter
from icefall_kd.data.vocabulary import vocabulary_of_lang_dir
from icefall_kd.model.conformer import EncoderConfig
from icefall_kd.model.transducer import Transducer
from icefall_kd.recipes.common import (
    add_model_arguments,
    load_bpe,
    load_checked_transducer,
    new_model,
)
from icefall_kd.training.checkpoint import CheckpointError, load_checkpoint
from icefall_kd.training.trainer import (DistributedInfo, Trainer, TrainConfig, fix_random_seed,
                                         setup_distributed)
from icefall_kd.training.transducer_objective import (
    ChunkChoice,
    TransducerLossConfig,
    TransducerObjective,
    parse_int_list,
)
from icefall_kd.utils import HelpFormatter, setup_logging, str2bool


def build_parser(description: str, streaming: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=HelpFormatter)
    add_model_arguments(parser)
    add_config_arguments(parser, TransducerLossConfig, title="loss")
    s = parser.add_argument_group("streaming")
    s.add_argument("--chunk-sizes", default="8,16,32,-1" if streaming else "-1",
                   help="Chunk sizes in 40 ms encoder frames, one drawn per batch; -1 = full "
                   "context. A single value trains with a fixed chunk")
    s.add_argument("--left-contexts", default="16,32,64,-1" if streaming else "-1",
                   help="Left contexts in encoder frames, one drawn per batch; -1 = unlimited")
    s.add_argument("--valid-chunk-size", type=int, default=8 if streaming else -1,
                   help="Chunk size used for the validation loss")
    s.add_argument("--valid-left-context", type=int, default=32 if streaming else -1)
    if streaming:  # the full-context teacher's convolution is always centred
        add_config_arguments(s, EncoderConfig, only=["conv_context"],
                             defaults={"conv_context": None})
    i = parser.add_argument_group("initialisation")
    i.add_argument("--init-from", default="",
                   help="Start from another experiment folder (see --init-state); empty: "
                   "random initialisation")
    i.add_argument("--init-epoch", type=int, default=None,
                   help="Epoch of --init-from to start from (as decode.py --epoch)")
    i.add_argument("--init-avg", type=int, default=1, help="Epochs averaged for the start")
    i.add_argument("--init-use-averaged-model", type=str2bool, default=True)
    i.add_argument("--init-state", choices=["weights", "training"], default="weights",
                   help="weights: its (averaged) weights, with a fresh optimizer, schedule "
                   "and running average (fine-tuning). training: continue its training: the "
                   "raw weights, optimizer state, schedule position, running average, update "
                   "count and data order carry on, and only the loss changes (needs "
                   "--init-avg 1 and its --optimizer; --base-lr stays this command's)")
    d = parser.add_argument_group("cuts")
    d.add_argument("--train-parts", default="train-clean-100",
                   help="Space-separated training parts under --manifest-dir")
    d.add_argument("--valid-part", default="dev-clean")
    d.add_argument("--min-seconds", type=float, default=1.0)
    d.add_argument("--max-seconds", type=float, default=20.0)
    DataConfig.add_arguments(parser)
    TrainConfig.add_arguments(parser)
    return parser


def training_cuts(args, data: AsrDataModule, sp, dist):
    """The filtered training cuts of ``--train-parts`` (the filter's counts logged once)."""
    keep = TrainingCutFilter(sp, args.min_seconds, args.max_seconds)
    train_cuts = None
    for part in args.train_parts.split():
        cuts = data.cuts(part)
        train_cuts = cuts if train_cuts is None else train_cuts + cuts
    if dist.is_main:  # one counting pass, so the log says what the filter drops and why
        over_budget = [(cut.duration, cut.id) for cut in train_cuts
                       if keep(cut) and cut.duration > args.max_duration]
        keep.log_summary()
        if over_budget:
            longest, cut_id = max(over_budget)
            logging.warning(
                f"{len(over_budget)} training cuts are longer than --max-duration "
                f"{args.max_duration:g} s (the longest: {cut_id}, {longest:.1f} s): each trains "
                f"in a batch of its own, over the budget. Pass --max-duration {longest:.0f} or "
                "more, or --max-seconds below it to leave them out")
    return train_cuts.filter(TrainingCutFilter(sp, args.min_seconds, args.max_seconds))


def chunk_choice(args) -> ChunkChoice:
    return ChunkChoice(parse_int_list(args.chunk_sizes), parse_int_list(args.left_contexts),
                       args.valid_chunk_size, args.valid_left_context)


def loss_config(args) -> TransducerLossConfig:
    """The ``loss`` flags, with ``--warm-step``'s default resolved: a fine-tuned model does
    not restart the warm-up (a restart would down-weight the pruned loss again, to 0.1 at
    the first batch)."""
    config = config_from_args(TransducerLossConfig, args)
    if config.warm_step is None:
        from_trained = getattr(args, "init_from", "") not in ("", "scratch")
        config = dataclasses.replace(config, warm_step=0 if from_trained else 1000)
    return config


def transducer_objective(args, sp) -> TransducerObjective:
    config = loss_config(args)
    logging.info(f"loss warm-up: {config.warm_step} batches")
    return TransducerObjective(sp, chunk_choice(args), config)


def check_init_state(args) -> None:
    """``--init-state training`` needs an experiment folder to continue (checked before
    any data is read)."""
    if args.init_state == "training" and args.init_from in ("", "scratch", "teacher"):
        raise SystemExit(f"--init-state training continues an experiment folder's training; "
                         f"--init-from {args.init_from or '(empty)'} names none. Pass the "
                         "folder as --init-from, or --init-state weights")


def continued_training(args) -> Optional[Tuple[Path, dict]]:
    """(path, state) of the checkpoint ``--init-state training`` continues, else None."""
    if args.init_state != "training":
        return None
    check_init_state(args)
    path = Path(args.init_from) / f"epoch-{args.init_epoch}.pt"
    try:
        return path, load_checkpoint(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise SystemExit(f"error: {error}") from None


def run_trainer(args, model, objective, data: AsrDataModule, train_cuts, dist) -> None:
    """Builds the loaders and runs the shared :class:`Trainer`."""

    def make_train_loader(sampler_state):
        return data.train_dataloader(train_cuts, sampler_state, dist.world_size if dist.world_size > 1 else None,
                                     dist.rank if dist.world_size > 1 else None)

    valid_loader = data.eval_dataloader(data.cuts(args.valid_part)) if dist.is_main else None
    trainer = Trainer(model, objective, TrainConfig.from_args(args), make_train_loader,
                      valid_loader, model_config=model.config.to_dict(),
                      args={k: str(v) for k, v in vars(args).items()}, dist=dist,
                      vocabulary=vocabulary_of_lang_dir(args.lang_dir),
                      continued_from=continued_training(args))
    trainer.train()


def new_conv_context(args) -> str:
    """The convolution of a streaming model built afresh: ``--conv-context``, causal when
    not given."""
    return args.conv_context or "causal"


def check_conv_context(args, model: Transducer) -> None:
    """A model continued from ``--init-from`` keeps its convolution; ``--conv-context``,
    when given, must name that one (changing it would change what the weights compute)."""
    have = model.config.encoder.conv_context
    if args.conv_context is not None and args.conv_context != have:
        raise SystemExit(f"{args.init_from} holds a model with --conv-context {have}; this "
                         f"command asks for {args.conv_context}. Leave --conv-context out to "
                         f"continue that model, or start from another --init-from")


def init_from_checkpoint(args, causal: bool):
    """The model of ``--init-from`` at ``--init-epoch``/``--init-avg`` (CMVN included); it
    must be streaming or full-context as ``causal`` says, and a streaming one must have the
    ``--conv-context`` asked for (if given)."""
    if args.init_epoch is None:
        raise SystemExit(f"--init-from {args.init_from} needs --init-epoch (which checkpoint)")
    continues = args.init_state == "training"
    if continues and args.init_avg != 1:
        raise SystemExit(f"--init-state training continues one checkpoint; --init-avg "
                         f"{args.init_avg} averages several. Pass --init-avg 1")
    # A continued training goes on from the raw weights (its running average carries on).
    model = load_checked_transducer(Path(args.init_from), args.init_epoch, args.init_avg,
                                    args.init_use_averaged_model and not continues,
                                    args.lang_dir)
    if model.causal != causal:
        kind = "streaming" if model.causal else "full-context"
        raise SystemExit(f"{args.init_from} holds a {kind} model; this recipe trains a "
                         f"{'streaming' if causal else 'full-context'} one")
    if causal:
        check_conv_context(args, model)
    logging.info(f"initialised from {args.init_from} epoch {args.init_epoch} avg {args.init_avg}")
    return model


def start_run(args) -> DistributedInfo:
    """Logging, the process group, and ``--seed`` set before any model is built: the random
    initialisation (and any projection a recipe adds) must follow the seed like the data order
    and chunk draws do, or two runs of one command train different models."""
    setup_logging()
    dist = setup_distributed()
    fix_random_seed(args.seed + dist.rank)
    return dist


def main(streaming: bool, description: str = "", argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser(description or __doc__, streaming).parse_args(argv)
    check_init_state(args)
    dist = start_run(args)
    sp = load_bpe(args.lang_dir)
    model = (init_from_checkpoint(args, streaming) if args.init_from
             else new_model(args, sp, causal=streaming,
                            conv_context=new_conv_context(args) if streaming else "causal"))
    objective = transducer_objective(args, sp)
    if not streaming and any(c > 0 for c in objective.chunks.chunk_sizes):
        raise SystemExit("the full-context teacher cannot train with chunks; use the streaming recipe")
    data = AsrDataModule(DataConfig.from_args(args, seed=args.seed))
    train_cuts = training_cuts(args, data, sp, dist)
    if not args.init_from:
        # Global CMVN from the training cuts (a resumed run then loads its own buffers).
        mean, std = feature_statistics(train_cuts)
        model.encoder.embed.set_feature_stats(mean, std)
    run_trainer(args, model, objective, data, train_cuts, dist)
