"""Data loading for training and decoding (icefall's ``LibriSpeechAsrDataModule``).

A batch, as lhotse's ``K2SpeechRecognitionDataset`` returns it::

    {
      "inputs": float tensor (B, T, F)          # B cuts, T frames (10 ms), F = 80 fbank bins
      "supervisions": {
          "text": list of B str,
          "sequence_idx": int (B,), "start_frame": int (B,), "num_frames": int (B,),
          "cut": list of B Cut,                 # with return_cuts=True
      }
    }
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Optional

from lhotse import CutSet, load_manifest_lazy
from lhotse.dataset import (
    DynamicBucketingSampler,
    K2SpeechRecognitionDataset,
    OnTheFlyFeatures,
    PrecomputedFeatures,
    SpecAugment,
)
from torch.utils.data import DataLoader

from icefall_kd.config import add_config_arguments, config_from_args, option, positive_float
from icefall_kd.data.fbank import make_fbank_extractor


@dataclass
class DataConfig:
    """Where cuts come from and how they are batched (the ``data`` flags)."""

    manifest_dir: Path = option(Path("data/fbank"),
                                "Folder with librispeech_cuts_<part>.jsonl.gz")
    max_duration: float = option(200.0, "Seconds of audio per batch (the bucketing "
                                 "sampler's budget)", parse=positive_float)
    num_buckets: int = option(30, "Duration buckets of the DynamicBucketingSampler")
    shuffle: bool = option(True, "Shuffle training cuts every epoch")
    drop_last: bool = option(True, "Drop the last, incomplete training batch")
    num_workers: int = option(2, "DataLoader worker processes")
    on_the_fly_feats: bool = option(False, "Compute fbank from audio during training instead "
                                    "of reading precomputed features (slower; needed for "
                                    "waveform augmentation)")
    enable_spec_aug: bool = option(True, "SpecAugment on training batches")
    spec_aug_time_warp_factor: int = option(80, "Time warp of SpecAugment; below 1 disables "
                                            "warping")
    # The training sampler's shuffling seed: the training recipes pass --seed.
    seed: int = option(42, "", flag=False)

    # Flags that only training uses; decoding scripts add the others (EVAL_FIELDS).
    EVAL_FIELDS: ClassVar[tuple] = ("manifest_dir", "max_duration", "num_workers", "on_the_fly_feats")

    @staticmethod
    def add_arguments(parser: argparse.ArgumentParser,
                      only: Optional[Iterable[str]] = None) -> None:
        add_config_arguments(parser, DataConfig, title="data",
                             description="Where cuts come from and how they are batched",
                             only=only)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **explicit) -> "DataConfig":
        return config_from_args(cls, args, **explicit)


class AsrDataModule:
    """Builds samplers and loaders; the training sampler's state can be saved and restored
    so a job resumes mid-epoch on exactly the next batch."""

    def __init__(self, config: DataConfig) -> None:
        self.config = config

    def cuts_path(self, part: str) -> Path:
        return self.config.manifest_dir / f"librispeech_cuts_{part}.jsonl.gz"

    def cuts(self, part: str) -> CutSet:
        path = self.cuts_path(part)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found; run prepare.sh (its fbank stage writes it) or pass "
                "--manifest-dir"
            )
        return load_manifest_lazy(path)

    def _input_strategy(self):
        if self.config.on_the_fly_feats:
            return OnTheFlyFeatures(make_fbank_extractor())
        return PrecomputedFeatures()

    def train_sampler(self, cuts: CutSet, world_size: Optional[int] = None,
                      rank: Optional[int] = None) -> DynamicBucketingSampler:
        return DynamicBucketingSampler(
            cuts,
            max_duration=self.config.max_duration,
            num_buckets=self.config.num_buckets,
            shuffle=self.config.shuffle,
            drop_last=self.config.drop_last,
            buffer_size=self.config.num_buckets * 2000,
            seed=self.config.seed,
            world_size=world_size,
            rank=rank,
        )

    def train_dataloader(
        self,
        cuts: CutSet,
        sampler_state_dict: Optional[dict] = None,
        world_size: Optional[int] = None,
        rank: Optional[int] = None,
    ) -> DataLoader:
        """``sampler_state_dict`` (from ``loader.sampler.state_dict()``) resumes mid-epoch."""
        input_transforms = []
        if self.config.enable_spec_aug:
            input_transforms.append(
                SpecAugment(
                    time_warp_factor=self.config.spec_aug_time_warp_factor,
                    num_frame_masks=10,
                    features_mask_size=27,
                    num_feature_masks=2,
                    frames_mask_size=100,
                )
            )
        dataset = K2SpeechRecognitionDataset(
            return_cuts=True,
            input_transforms=input_transforms,
            input_strategy=self._input_strategy(),
        )
        sampler = self.train_sampler(cuts, world_size, rank)
        if sampler_state_dict is not None:
            logging.info("resuming the training sampler from its saved state")
            sampler.load_state_dict(sampler_state_dict)
        return DataLoader(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=self.config.num_workers,
            persistent_workers=False,
        )

    def eval_dataloader(self, cuts: CutSet) -> DataLoader:
        """No augmentation, no shuffling: for validation and decoding."""
        dataset = K2SpeechRecognitionDataset(return_cuts=True, input_strategy=self._input_strategy())
        sampler = DynamicBucketingSampler(
            cuts, max_duration=self.config.max_duration, shuffle=False, num_buckets=5
        )
        return DataLoader(dataset, sampler=sampler, batch_size=None,
                          num_workers=self.config.num_workers)

