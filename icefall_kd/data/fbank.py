"""80-dim log-mel filter banks, identical in settings to sherpa-onnx's online front end.

sherpa-onnx computes features with kaldi-native-fbank using 16 kHz, 25 ms / 10 ms frames, a
povey window, pre-emphasis 0.97, dither 0, ``snip_edges=False``, ``low_freq=20``,
``high_freq=-400`` and 80 bins. lhotse's ``FbankConfig`` defaults are the same; this module
pins them explicitly so a change of lhotse defaults cannot silently break the match. The
test suite compares both on the same audio.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from lhotse import CutSet, Fbank, FbankConfig, LilcomChunkyWriter, load_manifest_lazy

from icefall_kd.utils import write_manifest

FEATURE_DIM = 80
SAMPLE_RATE = 16000


def fbank_config() -> FbankConfig:
    return FbankConfig(
        sampling_rate=SAMPLE_RATE,
        frame_length=0.025,
        frame_shift=0.01,
        round_to_power_of_two=True,
        remove_dc_offset=True,
        preemph_coeff=0.97,
        window_type="povey",
        dither=0.0,
        snip_edges=False,
        low_freq=20.0,
        high_freq=-400.0,
        num_filters=FEATURE_DIM,
    )


def make_fbank_extractor() -> Fbank:
    return Fbank(fbank_config())


def online_fbank_options():
    """kaldi-native-fbank options with the same settings (what sherpa-onnx uses)."""
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = SAMPLE_RATE
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = False
    opts.frame_opts.frame_length_ms = 25.0
    opts.frame_opts.frame_shift_ms = 10.0
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.round_to_power_of_two = True
    opts.mel_opts.num_bins = FEATURE_DIM
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = -400.0
    return opts


def online_fbank(samples: np.ndarray, chunk_samples: int = 1600) -> np.ndarray:
    """Features of ``samples`` (float32 in [-1, 1], 16 kHz) fed chunk by chunk, as a
    deployed recogniser does. Returns (num_frames, 80)."""
    import kaldi_native_fbank as knf

    fbank = knf.OnlineFbank(online_fbank_options())
    for begin in range(0, len(samples), chunk_samples):
        fbank.accept_waveform(SAMPLE_RATE, samples[begin : begin + chunk_samples].tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)])


def compute_fbank_for_part(
    recordings_path: Path,
    supervisions_path: Path,
    output_cuts_path: Path,
    storage_path: Path,
    num_jobs: int = 2,
    perturb_speed: bool = False,
) -> None:
    """Cuts with precomputed features for one part (icefall's ``compute_fbank_librispeech``).

    Features go to the lilcom archive ``storage_path`` (paths in the manifest are as given:
    relative paths, as in icefall, are relative to the recipe folder). Recordings not at 16 kHz are resampled first. With ``perturb_speed``, 0.9x and 1.1x copies
    are added (ids suffixed ``_sp0.9`` / ``_sp1.1``), tripling the training data.
    """
    cuts = CutSet.from_manifests(
        recordings=load_manifest_lazy(recordings_path),
        supervisions=load_manifest_lazy(supervisions_path),
    ).to_eager()
    cuts = CutSet.from_cuts(
        c.resample(SAMPLE_RATE) if c.sampling_rate != SAMPLE_RATE else c for c in cuts
    )
    if perturb_speed:
        cuts = cuts + cuts.perturb_speed(0.9) + cuts.perturb_speed(1.1)
    torch.set_num_threads(1)  # parallelism comes from num_jobs processes
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    # lhotse's own pool spawns workers with torch's default thread count (all cores each);
    # ours gives each one thread, so num_jobs workers do not oversubscribe the cores.
    pool = contextlib.nullcontext()
    if num_jobs > 1:
        pool = ProcessPoolExecutor(num_jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=torch.set_num_threads, initargs=(1,))
    with pool as executor:
        cuts = cuts.compute_and_store_features(
            extractor=make_fbank_extractor(),
            storage_path=storage_path,
            num_jobs=num_jobs if num_jobs > 1 else None,
            executor=executor,
            storage_type=LilcomChunkyWriter,
        )
    write_manifest(cuts, output_cuts_path)
    logging.info(f"wrote {len(cuts)} cuts with features to {output_cuts_path}")


def feature_statistics(cuts, max_cuts: int = 1000):
    """Per-bin mean and standard deviation of precomputed features over the first
    ``max_cuts`` cuts -> two float32 tensors of shape (80,)."""
    total = torch.zeros(FEATURE_DIM, dtype=torch.float64)
    total_sq = torch.zeros(FEATURE_DIM, dtype=torch.float64)
    frames = 0
    for index, cut in enumerate(cuts):
        if index == max_cuts:
            break
        feats = torch.from_numpy(cut.load_features()).double()
        total += feats.sum(0)
        total_sq += (feats**2).sum(0)
        frames += feats.shape[0]
    if frames == 0:
        raise ValueError("no cuts to compute feature statistics from")
    mean = total / frames
    std = (total_sq / frames - mean**2).clamp(min=1e-8).sqrt()
    return mean.float(), std.float()
