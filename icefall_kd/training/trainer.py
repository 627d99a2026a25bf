"""One training loop for every stage (teacher, streaming baseline, both distillation stages).

What a stage changes is its :class:`Objective`: a callable that takes the model and a batch
and returns the loss. The loop owns everything else: device and precision, DDP, the
optimizer and Eden schedule, the running averaged model, atomic checkpoints with exact
mid-epoch resume (model, optimizer, scheduler, sampler and RNG states), continuing another
folder's training (:mod:`icefall_kd.training.continuation`), skipping non-finite batches,
validation, logs and TensorBoard.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Protocol, Tuple

import numpy as np
import torch
from torch import nn

from icefall_kd.config import add_config_arguments, config_from_args, option
from icefall_kd.data.vocabulary import Vocabulary, VocabularyMismatch, check_vocabulary
from icefall_kd.model.transducer import current_config_dict
from icefall_kd.training.checkpoint import (
    batch_checkpoints,
    config_differences,
    epoch_checkpoints,
    load_checkpoint,
    newest_intact_checkpoint,
    remove_partial_writes,
    remove_old_checkpoints,
    save_checkpoint,
    saved_optimizer,
    update_averaged_model,
)
from icefall_kd.training.continuation import (
    continued_average,
    continued_optimizer_state,
    parameter_names,
)
from icefall_kd.training.scaled_adam import ScaledAdam
from icefall_kd.training.scheduler import Eden


def check_optimizer(path: Path, state: dict, asked: str, continuing: bool) -> None:
    """The optimizer state of checkpoint ``state`` fits only the optimizer that wrote it."""
    saved = saved_optimizer(state)
    if saved == asked:
        return
    if continuing:
        raise SystemExit(f"--init-state training continues {path}, trained with --optimizer "
                         f"{saved}; this command asks for --optimizer {asked}. Pass "
                         f"--optimizer {saved}, or --init-state weights for a fresh optimizer")
    raise SystemExit(f"{path} was trained with --optimizer {saved}, this command asks for "
                     f"--optimizer {asked}: its optimizer state does not fit. Resume with "
                     f"--optimizer {saved}, or pass another --exp-dir")


@dataclass
class LossInfo:
    """loss: scalar to minimise (a sum over the batch); frames: what it is normalised by in
    logs; values: named sums for logging (e.g. simple_loss, pruned_loss)."""

    loss: torch.Tensor
    frames: float
    values: Dict[str, float] = field(default_factory=dict)


class Objective(Protocol):
    def __call__(self, model: nn.Module, batch: dict, batch_idx_train: int,
                 is_training: bool) -> LossInfo: ...


@dataclass
class TrainConfig:
    """The training loop's settings (the ``training`` flags), shared by every stage."""

    exp_dir: Path = option(Path("exp"), "Where checkpoints, logs and TensorBoard files go")
    num_epochs: int = option(10, "Train until this epoch")
    start_epoch: int = option(1, "Start from epoch-(N-1).pt; 1 starts fresh (or resumes, "
                              "see --resume)")
    resume: bool = option(True, "Continue from the newest checkpoint in --exp-dir, mid-epoch "
                          "if needed, exactly where it stopped")
    optimizer: str = option("adamw", "adamw, or scaled-adam (icefall's ScaledAdam: steps "
                            "relative to each tensor's size, icefall_kd/training/scaled_adam.py)",
                            choices=("adamw", "scaled-adam"))
    base_lr: Optional[float] = option(None, "Peak learning rate; default 0.003 for adamw, "
                                      "0.045 for scaled-adam (icefall's Zipformer value: a "
                                      "relative change per step)")
    lr_batches: float = option(2000.0, "Eden: batch decay scale")
    lr_epochs: float = option(3.0, "Eden: epoch decay scale")
    warmup_batches: float = option(500.0, "Learning rate rises from half to full over this "
                                   "many batches")
    weight_decay: float = option(1e-6, "AdamW weight decay (scaled-adam has none: its "
                                 "tensors are bounded in size instead)")
    clip_grad_norm: float = option(5.0, "Clip the gradient norm to this")
    average_period: int = option(50, "Update the running averaged model every N batches")
    save_every_n: int = option(1000, "Write checkpoint-<batch>.pt every N batches (resume "
                               "points)")
    keep_last_k: int = option(3, "Keep only the newest K checkpoint-<batch>.pt")
    log_interval: int = option(50, "Log every N batches")
    seed: int = option(42, "Seed of the model initialisation, data order and chunk draws "
                       "(rank r of a multi-process run uses seed + r)")
    precision: str = option("auto", "auto: bf16 autocast on CPUs with native bf16 "
                            "(AVX512-BF16 or AMX; benchmarks/results/bf16_convergence.md "
                            "checks it trains as well as fp32), fp32 on other CPUs and for "
                            "the Zipformer on any CPU (slower under bf16: "
                            "benchmarks/results/training_zipformer_xeon_amx.md); on GPUs "
                            "bf16 where supported, else fp16. bf16 on a CPU without native "
                            "bf16 is refused (emulated, it is slower than fp32)",
                            choices=("auto", "fp32", "bf16", "fp16"))
    max_bad_batches: int = option(20, "Stop after this many consecutive batches with a "
                                  "non-finite loss")
    tensorboard: bool = option(True, "Write TensorBoard logs to --exp-dir/tensorboard")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser, TrainConfig, title="training",
                             description="The training loop (shared by every stage)",
                             required=["exp_dir"])

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        return config_from_args(cls, args)


DEFAULT_BASE_LR = {"adamw": 0.003, "scaled-adam": 0.045}


def make_optimizer(config: TrainConfig, params: List[nn.Parameter]) -> torch.optim.Optimizer:
    """``config.optimizer`` at ``config.base_lr`` (or that optimizer's default)."""
    lr = config.base_lr if config.base_lr is not None else DEFAULT_BASE_LR[config.optimizer]
    if config.optimizer == "scaled-adam":
        return ScaledAdam(params, lr=lr)
    return torch.optim.AdamW(params, lr=lr, weight_decay=config.weight_decay)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX tiles); elsewhere
    oneDNN emulates bf16 and autocast makes training slower, not faster."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def fix_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()  # this process's GPU (dropout on it)
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


@dataclass
class DistributedInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> DistributedInfo:
    """Initialises DDP when launched by torchrun (RANK/WORLD_SIZE set): NCCL with one GPU
    per process (``LOCAL_RANK``) when CUDA is available, gloo on CPU."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistributedInfo()
    info = DistributedInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]),
                           int(os.environ.get("LOCAL_RANK", 0)))
    if torch.cuda.is_available():
        # Before the process group: NCCL then binds this rank to its own GPU, not GPU 0.
        torch.cuda.set_device(info.local_rank)
        torch.distributed.init_process_group("nccl")
    else:
        torch.distributed.init_process_group("gloo")
    logging.info(f"DDP rank {info.rank} of {info.world_size} "
                 f"({torch.distributed.get_backend()})")
    return info


def _as_read(model_config: dict) -> dict:
    """A model config dict with the fields it lacks at their defaults (a checkpoint written
    before ``encoder.conv_context`` existed resumes as the causal model it is)."""
    try:
        return current_config_dict(model_config)
    except (TypeError, KeyError, ValueError):  # not a TransducerConfig: compare as stored
        return model_config


class Trainer:
    """Runs ``objective`` over ``train_loader`` for epochs, with checkpoints in ``exp_dir``.

    ``make_train_loader(sampler_state)`` builds the training DataLoader (resuming its
    sampler when given a state); ``valid_loader`` is evaluated after every epoch.
    """

    def __init__(
        self,
        model: nn.Module,
        objective: Objective,
        config: TrainConfig,
        make_train_loader: Callable[[Optional[dict]], torch.utils.data.DataLoader],
        valid_loader: Optional[torch.utils.data.DataLoader],
        model_config: Optional[dict] = None,
        args: Optional[dict] = None,
        dist: Optional[DistributedInfo] = None,
        trainable_parameters: Optional[List[nn.Parameter]] = None,
        vocabulary: Optional[Vocabulary] = None,
        continued_from: Optional[Tuple[Path, dict]] = None,
    ) -> None:
        """``continued_from``: (path, state) of another folder's epoch checkpoint whose
        training this one continues when it starts (the model must hold its raw weights)."""
        self.config = config
        self.dist = dist or DistributedInfo()
        self.device = (torch.device("cuda", self.dist.local_rank)
                       if torch.cuda.is_available() else torch.device("cpu"))
        self.model = model.to(self.device)
        self.objective = objective
        self.make_train_loader = make_train_loader
        self.valid_loader = valid_loader
        self.model_config = model_config
        self.vocabulary = vocabulary  # stored in every checkpoint, checked on resume
        self.args = args or {}
        self.ddp_model: nn.Module = self.model
        if self.dist.world_size > 1:
            self.ddp_model = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.dist.local_rank] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        params = trainable_parameters or [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(config, params)
        self.scheduler = Eden(self.optimizer, config.lr_batches, config.lr_epochs,
                              config.warmup_batches)
        self.precision = self._choose_precision()
        # fp16 needs loss scaling (its range is too small for small gradients); bf16 does not.
        self.grad_scaler = torch.amp.GradScaler(self.device.type,
                                                enabled=self.precision == "fp16")
        if self.dist.is_main:
            logging.info(f"training on {self.device}, precision {self.precision}, "
                         f"{self.dist.world_size} process(es)")
        self.model_avg = {k: v.detach().clone().double() if v.is_floating_point() else v.clone()
                          for k, v in self.model.state_dict().items()} if self.dist.is_main else None
        self.batch_idx_train = 0
        self.epoch = config.start_epoch
        self.continued_from = continued_from
        # A continued training counts on from its start: epochs of the schedule and the data
        # order (this folder's epoch-1.pt is the original's epoch N+1), and batches.
        self.epoch_offset = int(continued_from[1]["epoch"]) if continued_from else 0
        self.stage_start_batch = 0  # where this folder's updates began
        self.bad_batches_in_a_row = 0
        self._rng_to_restore: Optional[dict] = None
        self.tb = None
        if self.dist.is_main and config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(config.exp_dir / "tensorboard"))

    # -------------------------------------------------------------------- helpers
    def _choose_precision(self) -> str:
        wanted = self.config.precision
        if self.device.type != "cuda":
            if wanted == "auto":
                if getattr(getattr(self.model, "encoder", None), "cpu_bf16_slower", False):
                    return "fp32"  # measured slower under bf16 on a CPU (the encoder says why)
                return "bf16" if cpu_has_native_bf16() else "fp32"
            if wanted == "bf16":
                if not cpu_has_native_bf16():
                    raise RuntimeError("--precision bf16: this CPU has neither AVX512-BF16 nor "
                                       "AMX, so bf16 would be slower than fp32; use "
                                       "--precision fp32 (or auto)")
                return "bf16"
            if wanted == "fp16":
                logging.warning("--precision fp16 is for GPUs; using fp32 on CPU")
            return "fp32"
        if wanted == "auto":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        if wanted == "bf16" and not torch.cuda.is_bf16_supported():
            raise RuntimeError(f"--precision bf16: {torch.cuda.get_device_name(self.device)} "
                               "has no bf16; use --precision fp16 (or auto)")
        return wanted

    def _autocast(self):
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        return torch.autocast(device_type=self.device.type, dtype=dtype or torch.float32,
                              enabled=dtype is not None)

    def _state(self, sampler_state: Optional[dict]) -> dict:
        return {
            "model": self.model.state_dict(),
            "model_avg": self.model_avg,
            "optimizer": self.optimizer.state_dict(),
            "optimizer_name": self.config.optimizer,
            "optimizer_param_names": parameter_names(self.model, self.optimizer),
            "epoch_offset": self.epoch_offset,
            "stage_start_batch": self.stage_start_batch,
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.grad_scaler.state_dict(),
            "sampler": sampler_state,
            "rng": _rng_state(),
            "batch_idx_train": self.batch_idx_train,
            "epoch": self.epoch,
            "model_config": self.model_config,
            "vocabulary": self.vocabulary.to_dict() if self.vocabulary else None,
            "args": self.args,
        }

    def _restore(self, state: dict) -> Optional[dict]:
        self.model.load_state_dict(state["model"])
        if self.model_avg is not None and state.get("model_avg") is not None:
            # Checkpoints load on the CPU; the average lives beside the model.
            self.model_avg = {k: v.to(self.model_avg[k].device)
                              for k, v in state["model_avg"].items()}
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.grad_scaler.load_state_dict(state["grad_scaler"])
        self.batch_idx_train = state["batch_idx_train"]
        self.epoch_offset = state.get("epoch_offset", 0)
        self.stage_start_batch = state.get("stage_start_batch", 0)
        _set_rng_state(state["rng"])
        # Mid-epoch, the saved RNG is past the iterator's seed draw: put it back after the
        # resumed iterator draws again. An epoch-N.pt was saved before the next epoch's
        # draw, so the draw is left to happen, as in one long run.
        self._rng_to_restore = state["rng"] if state.get("sampler") is not None else None
        return state.get("sampler")

    def _continue(self, path: Path, state: dict) -> None:
        """Carry on ``state``'s training (another folder's epoch checkpoint) from its end."""
        check_optimizer(path, state, self.config.optimizer, continuing=True)
        continued_optimizer_state(path, state, self.optimizer,
                                  parameter_names(self.model, self.optimizer))
        if self.model_avg is not None:
            continued_average(self.model_avg, state)
        # The schedule's position; the peak rate stays this command's --base-lr.
        self.scheduler.load_state_dict({**state["scheduler"], "base_lrs": self.scheduler.base_lrs})
        self.batch_idx_train = self.stage_start_batch = int(state["batch_idx_train"])
        _set_rng_state(state["rng"])  # an epoch's end: the next epoch draws from here
        logging.info(f"continuing the training of {path} (batch {self.batch_idx_train}, "
                     f"epoch {self.epoch_offset})")

    def _find_resume_point(self) -> Optional[dict]:
        """The newest intact state to continue from, or None to start fresh. A damaged
        checkpoint is skipped with a warning (an older one takes its place); one written by
        a model of other settings is refused."""
        exp_dir = self.config.exp_dir
        if self.config.start_epoch > 1:
            path = exp_dir / f"epoch-{self.config.start_epoch - 1}.pt"
            logging.info(f"starting epoch {self.config.start_epoch} from {path}")
            return self._check_model_config(path, load_checkpoint(path))
        if not self.config.resume:
            return None
        candidates = [c for c in (newest_intact_checkpoint(batch_checkpoints(exp_dir)),
                                  newest_intact_checkpoint(epoch_checkpoints(exp_dir)))
                      if c is not None]
        if not candidates:
            return None
        path, state = max(candidates, key=lambda c: c[1]["batch_idx_train"])
        logging.info(f"resuming from {path} (batch {state['batch_idx_train']}, "
                     f"epoch {state['epoch']})")
        return self._check_model_config(path, state)

    def _check_model_config(self, path: Path, state: dict) -> dict:
        saved = state.get("model_config")
        if saved is not None and self.model_config is not None:
            differences = config_differences(_as_read(saved), _as_read(self.model_config))
            if differences:
                raise SystemExit(
                    f"{path} holds a model with other settings than this command builds: "
                    + "; ".join(differences) + ". Resume with the options it was trained with "
                    "(its 'args' are stored in it), or pass another --exp-dir (or --resume "
                    "false to start afresh there)")
        if self.vocabulary is not None:
            try:
                check_vocabulary(Vocabulary.from_dict(state.get("vocabulary")), str(path),
                                 self.vocabulary, remedy="resume with the --lang-dir it was "
                                 "trained with, or pass another --exp-dir")
            except VocabularyMismatch as error:
                raise SystemExit(f"error: {error}") from None
        check_optimizer(path, state, self.config.optimizer, continuing=False)
        return state

    # ----------------------------------------------------------------------- loop
    def train(self) -> None:
        config = self.config
        config.exp_dir.mkdir(parents=True, exist_ok=True)
        if self.dist.is_main:
            for path in remove_partial_writes(config.exp_dir):
                logging.warning(f"removed {path}, left by a checkpoint write that was killed")
        sampler_state = None
        state = self._find_resume_point()
        if state is not None:
            sampler_state = self._restore(state)
            self.epoch = state["epoch"]
            if sampler_state is None:  # an epoch-N.pt: the next epoch starts fresh
                self.epoch += 1
        elif self.continued_from is not None:
            self._continue(*self.continued_from)
        else:
            fix_random_seed(config.seed + self.dist.rank)
        if hasattr(self.objective, "stage_start_batch"):  # e.g. a KD weight's warm-up
            self.objective.stage_start_batch = self.stage_start_batch
        while self.epoch <= config.num_epochs:
            self.scheduler.step_epoch(self.epoch - 1 + self.epoch_offset)
            loader = self.make_train_loader(sampler_state)
            if sampler_state is None:
                loader.sampler.set_epoch(self.epoch + self.epoch_offset)
            resumed_mid_epoch = sampler_state is not None
            sampler_state = None
            self._train_one_epoch(loader, resumed_mid_epoch)
            valid = self.validate()
            if self.dist.is_main:
                save_checkpoint(config.exp_dir / f"epoch-{self.epoch}.pt", self._state(None))
                logging.info(f"epoch {self.epoch} done; validation: {valid}")
                if self.tb is not None:
                    for name, value in valid.items():
                        self.tb.add_scalar(f"valid/{name}", value, self.batch_idx_train)
            self.epoch += 1
        if self.tb is not None:
            self.tb.close()

    def _train_one_epoch(self, loader, resumed_mid_epoch: bool = False) -> None:
        config = self.config
        self.ddp_model.train()
        totals: Dict[str, float] = {}
        frames_total = 0.0
        interval_frames, interval_start = 0.0, time.time()
        batches_this_epoch = 0
        batches = iter(loader)
        if self._rng_to_restore is not None:
            # Creating the iterator draws a seed from the torch RNG; put the RNG back to
            # where the checkpoint left it, so a resumed run draws the same augmentations.
            _set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None
        for batch in batches:
            batches_this_epoch += 1
            self.batch_idx_train += 1
            self.scheduler.step_batch(self.batch_idx_train)
            with self._autocast():
                info = self.objective(self.ddp_model, batch, self.batch_idx_train, True)
            if not self._all_finite(info.loss):
                self._on_bad_batch(batch, info)
                continue
            self.bad_batches_in_a_row = 0
            self.optimizer.zero_grad(set_to_none=True)
            self.grad_scaler.scale(info.loss / max(info.frames, 1.0)).backward()
            self.grad_scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.clip_grad_norm)
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
            frames_total += info.frames
            interval_frames += info.frames
            for name, value in info.values.items():
                totals[name] = totals.get(name, 0.0) + value
            if self.model_avg is not None and self.batch_idx_train % config.average_period == 0:
                update_averaged_model(self.model_avg, self.model.state_dict(),
                                      self.batch_idx_train, config.average_period)
            if self.batch_idx_train % config.log_interval == 0:
                elapsed = time.time() - interval_start
                # Encoder frames are 40 ms: frames * 0.04 = seconds of audio.
                audio_per_second = interval_frames * 0.04 / max(elapsed, 1e-9)
                self._log(info, totals, frames_total, audio_per_second)
                interval_frames, interval_start = 0.0, time.time()
            if self.dist.is_main and self.batch_idx_train % config.save_every_n == 0:
                save_checkpoint(config.exp_dir / f"checkpoint-{self.batch_idx_train}.pt",
                                self._state(loader.sampler.state_dict()))
                remove_old_checkpoints(config.exp_dir, config.keep_last_k)
        if batches_this_epoch == 0 and not resumed_mid_epoch:
            raise RuntimeError(
                f"epoch {self.epoch} produced no training batch. With little data the bucketing "
                "sampler drops every incomplete bucket: lower --num-buckets or --max-duration, "
                "or pass --drop-last false."
            )

    def _all_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: under DDP all ranks must skip a batch
        together, or the ranks that do run backward wait for the others forever."""
        finite = torch.isfinite(loss.detach()).to(torch.float32).reshape(1)
        if self.dist.world_size > 1:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def _on_bad_batch(self, batch: dict, info: LossInfo) -> None:
        self.bad_batches_in_a_row += 1
        cuts = [c.id for c in batch["supervisions"].get("cut", [])]
        logging.warning(
            f"non-finite loss {float(info.loss.detach())} at batch {self.batch_idx_train}; skipped. "
            f"Cuts: {', '.join(cuts[:20])}{' ...' if len(cuts) > 20 else ''}"
        )
        if self.bad_batches_in_a_row >= self.config.max_bad_batches:
            raise RuntimeError(
                f"{self.bad_batches_in_a_row} batches in a row had a non-finite loss; stopping. "
                "Lower --base-lr, check the cuts named above, or resume from the last checkpoint."
            )

    def _log(self, info: LossInfo, totals: Dict[str, float], frames_total: float,
             audio_per_second: float) -> None:
        if not self.dist.is_main:
            return
        lr = self.scheduler.get_last_lr()[0]
        current = {k: v / max(info.frames, 1.0) for k, v in info.values.items()}
        running = {k: v / max(frames_total, 1.0) for k, v in totals.items()}
        logging.info(
            f"epoch {self.epoch}, batch {self.batch_idx_train}: "
            + ", ".join(f"{k} {v:.4f}" for k, v in current.items())
            + " | epoch avg: " + ", ".join(f"{k} {v:.4f}" for k, v in running.items())
            + f" | lr {lr:.2e}, {audio_per_second:.0f} s audio/s"
        )
        if self.tb is not None:
            for k, v in current.items():
                self.tb.add_scalar(f"train/{k}", v, self.batch_idx_train)
            self.tb.add_scalar("train/lr", lr, self.batch_idx_train)
            self.tb.add_scalar("train/audio_seconds_per_second", audio_per_second,
                               self.batch_idx_train)

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        if self.valid_loader is None:
            return {}
        self.ddp_model.eval()
        totals: Dict[str, float] = {}
        frames = 0.0
        for batch in self.valid_loader:
            with self._autocast():
                info = self.objective(self.model, batch, self.batch_idx_train, False)
            frames += info.frames
            for name, value in info.values.items():
                totals[name] = totals.get(name, 0.0) + value
        self.ddp_model.train()
        return {k: round(v / max(frames, 1.0), 5) for k, v in totals.items()}
