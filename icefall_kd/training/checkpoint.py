"""Checkpoints in icefall's naming, written atomically, and model averaging.

Files in ``exp_dir``: ``epoch-<N>.pt`` after each epoch, ``checkpoint-<batch>.pt`` every
``save_every_n`` batches (the newest ``keep_last_k`` kept), ``pretrained.pt`` from export.
Keys: ``model``, ``model_avg`` (running average of all updates so far), ``optimizer``,
``scheduler``, ``sampler``, ``grad_scaler``, ``rng``, ``batch_idx_train``, ``epoch``,
``model_config``, ``vocabulary`` (:class:`~icefall_kd.data.vocabulary.Vocabulary` as a dict;
absent in checkpoints written before it was stored) and ``args``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from icefall_kd.data.vocabulary import Vocabulary
from icefall_kd.model.transducer import Transducer, TransducerConfig
from icefall_kd.utils import atomic_output


def save_checkpoint(path: Path, state: dict) -> None:
    """torch.save to a temporary file, then rename: a crash never leaves half a checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


# How reports name the --optimizer choices.
OPTIMIZER_LABELS = {"adamw": "AdamW", "scaled-adam": "ScaledAdam"}


def saved_optimizer(state: dict) -> str:
    """The --optimizer that wrote a checkpoint; checkpoints older than the choice were AdamW's."""
    return state.get("optimizer_name", "adamw")


class CheckpointError(RuntimeError):
    """A checkpoint that exists but cannot be read, or does not fit the request; the
    message names the file and what to do."""


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as error:  # zip reader, unpickler and EOF errors of a damaged file
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); it is "
            f"corrupt or truncated ({path.stat().st_size} bytes: an interrupted copy or a "
            "full disk?). Delete it and train again, or use another epoch") from None


# What atomic_output leaves behind when a process is killed while writing a checkpoint.
_PARTIAL_WRITE = re.compile(r"(checkpoint|epoch)-\d+\.tmp\d+\.pt")


def remove_partial_writes(exp_dir: Path) -> List[Path]:
    """Deletes the temporary files of checkpoint writes that were killed half-way; returns
    them."""
    removed = [p for p in Path(exp_dir).glob("*.tmp*.pt") if _PARTIAL_WRITE.fullmatch(p.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def newest_intact_checkpoint(paths: List[Path]) -> Optional[Tuple[Path, dict]]:
    """The first of ``paths`` (newest first) that can be read, with a warning for each one
    skipped; None if none can."""
    for path in paths:
        try:
            return path, load_checkpoint(path)
        except CheckpointError as error:
            logging.warning(f"{error}. Falling back to the next older checkpoint.")
    return None


def epoch_checkpoints(exp_dir: Path) -> List[Path]:
    """epoch-<N>.pt files, newest first."""
    found = [(int(m.group(1)), p) for p in Path(exp_dir).glob("epoch-*.pt")
             if (m := re.fullmatch(r"epoch-(\d+)\.pt", p.name))]
    return [p for _, p in sorted(found, reverse=True)]


def config_differences(saved: dict, current: dict, prefix: str = "") -> List[str]:
    """'name: saved there, current here' for each setting of two nested config dicts that
    differs."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} in the checkpoint, {b!r} now")
    return out


def batch_checkpoints(exp_dir: Path) -> List[Path]:
    """checkpoint-<batch>.pt files, newest (largest batch) first."""
    found = []
    for path in Path(exp_dir).glob("checkpoint-*.pt"):
        match = re.fullmatch(r"checkpoint-(\d+)\.pt", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return [p for _, p in sorted(found, reverse=True)]


def remove_old_checkpoints(exp_dir: Path, keep_last_k: int) -> None:
    if keep_last_k <= 0:
        return
    for path in batch_checkpoints(exp_dir)[keep_last_k:]:
        path.unlink(missing_ok=True)


def update_averaged_model(model_avg: Dict[str, torch.Tensor], model: Dict[str, torch.Tensor],
                          batch_idx: int, average_period: int) -> None:
    """icefall's running mean since the start: avg = cur * p/b + avg * (1 - p/b)."""
    weight = average_period / batch_idx
    for name, value in model.items():
        if value.is_floating_point():
            model_avg[name].mul_(1 - weight).add_(value.detach().to(model_avg[name].dtype),
                                                  alpha=weight)
        else:
            model_avg[name].copy_(value)


def average_state_dicts(states: List[Dict[str, torch.Tensor]]) -> Dict[str, torch.Tensor]:
    """Plain mean of parameters (integer buffers taken from the last)."""
    out = {}
    for name, value in states[-1].items():
        if value.is_floating_point():
            out[name] = sum(s[name].double() for s in states).div(len(states)).to(value.dtype)
        else:
            out[name] = value.clone()
    return out


def averaged_model_between(start: dict, end: dict) -> Dict[str, torch.Tensor]:
    """The mean of the model over the updates between two checkpoints, from their running
    averages (icefall's ``--use-averaged-model``):
    (b_end * avg_end - b_start * avg_start) / (b_end - b_start)."""
    b_start, b_end = start["batch_idx_train"], end["batch_idx_train"]
    if b_end <= b_start:
        raise ValueError(f"end checkpoint (batch {b_end}) is not after start (batch {b_start})")
    out = {}
    for name, value in end["model_avg"].items():
        if value.is_floating_point():
            out[name] = ((value.double() * b_end - start["model_avg"][name].double() * b_start)
                         / (b_end - b_start)).to(value.dtype)
        else:
            out[name] = value.clone()
    return out


TRAINING_ONLY_PREFIXES = ("kd_projections.",)


def without_training_only(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Drops weights that exist only for training (distillation projections)."""
    return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}


def model_state_for_decoding(exp_dir: Path, epoch: int, avg: int,
                             use_averaged_model: bool) -> Dict[str, torch.Tensor]:
    """The weights ``decode.py --epoch E --avg A [--use-averaged-model]`` means."""
    exp_dir = Path(exp_dir)
    if avg < 1:
        raise CheckpointError(f"--avg {avg}: average at least 1 epoch")
    if not use_averaged_model and avg > epoch:
        raise CheckpointError(f"--avg {avg} is larger than the {epoch} epoch(s) up to --epoch "
                              f"{epoch} in {exp_dir}: pass --avg {epoch} or less")
    if use_averaged_model:
        end = load_checkpoint(exp_dir / f"epoch-{epoch}.pt")
        if epoch - avg <= 0:
            # From the start of training: the running average is exactly that.
            return without_training_only(end["model_avg"])
        start = load_checkpoint(exp_dir / f"epoch-{epoch - avg}.pt")
        return without_training_only(averaged_model_between(start, end))
    paths = [exp_dir / f"epoch-{e}.pt" for e in range(epoch - avg + 1, epoch + 1)]
    return without_training_only(average_state_dicts([load_checkpoint(p)["model"] for p in paths]))


def load_transducer_and_vocabulary(exp_dir: Path, epoch: int, avg: int,
                                   use_averaged_model: bool = True
                                   ) -> Tuple[Transducer, Optional[Vocabulary], Path]:
    """The model ``decode.py --exp-dir exp_dir --epoch E --avg A`` decodes, the vocabulary
    its ``epoch-E.pt`` records (None for older checkpoints) and that file's path."""
    exp_dir = Path(exp_dir)
    path = exp_dir / f"epoch-{epoch}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train that model first, or fix the "
                                "--*-exp-dir/--*-epoch options")
    end = load_checkpoint(path)
    model = Transducer(TransducerConfig.from_dict(end["model_config"]))
    model.load_state_dict(model_state_for_decoding(exp_dir, epoch, avg, use_averaged_model))
    return model, Vocabulary.from_dict(end.get("vocabulary")), path


def load_transducer(exp_dir: Path, epoch: int, avg: int, use_averaged_model: bool = True) -> Transducer:
    """The model ``decode.py --exp-dir exp_dir --epoch E --avg A`` decodes."""
    return load_transducer_and_vocabulary(exp_dir, epoch, avg, use_averaged_model)[0]


def saved_vocabulary(path: Path) -> Optional[Vocabulary]:
    """The vocabulary a checkpoint records, None for one written before they were stored."""
    return Vocabulary.from_dict(load_checkpoint(path).get("vocabulary"))
