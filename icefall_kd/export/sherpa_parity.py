"""sherpa-onnx's greedy search on exported files against PyTorch greedy search.

References (token ids per utterance):

- streaming, :func:`pytorch_sherpa_schedule`: the PyTorch chunk-wise recogniser
  (:class:`~icefall_kd.streaming.recognizer.StreamingRecognizer`) run on exactly what
  sherpa-onnx runs: the audio plus ``tail_padding_samples`` of zeros, full windows of ``T``
  frames only, while ``processed + T < frames_ready``. fp32 files must give identical
  tokens; any difference is an export bug (or an argmax tie).
- streaming, :func:`pytorch_streaming_decode`: the recogniser as streaming_decode.py runs
  it (no padding, the last partial chunk run with its true length). It differs from
  sherpa-onnx only at the end of an utterance.
- offline, :func:`pytorch_offline`: full-context greedy search (at most one symbol per
  frame, as sherpa-onnx's) on kaldi-native-fbank features of the whole recording.

sherpa-onnx treats ``<unk>`` as blank; PyTorch search emits it. A model that predicts
``<unk>`` therefore differs from PyTorch there (rare for a trained BPE model).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from icefall_kd.data.fbank import SAMPLE_RATE, online_fbank
from icefall_kd.decoding.search import greedy_search
from icefall_kd.export.onnx_export import TransducerFiles
from icefall_kd.export.sherpa_runtime import run_in_subprocess
from icefall_kd.model.transducer import Transducer
from icefall_kd.streaming.recognizer import StreamingConfig, StreamingRecognizer


def tail_padding_samples(config: StreamingConfig) -> int:
    """Zeros appended for sherpa-onnx: one whole window, so that the window holding the last
    real frame is full (sherpa-onnx never runs a partial window)."""
    return config.tail_padding_samples


@torch.no_grad()
def pytorch_sherpa_schedule(model: Transducer, config: StreamingConfig,
                            audios: Sequence[np.ndarray], num_streams: int = 16
                            ) -> List[List[int]]:
    """Token ids of PyTorch chunk-wise greedy search, scheduled as sherpa-onnx schedules it."""
    recognizer = StreamingRecognizer(model, config)
    tail = np.zeros(tail_padding_samples(config), dtype=np.float32)
    hyps: List[List[int]] = []
    for begin in range(0, len(audios), num_streams):
        streams = []
        for audio in audios[begin : begin + num_streams]:
            stream = recognizer.create_stream()
            stream.accept_waveform(SAMPLE_RATE, np.concatenate([audio, tail]))
            stream.input_finished()
            streams.append(stream)
        while True:
            # sherpa-onnx's IsReady: processed + T < frames_ready (full windows only).
            ready = [s for s in streams if s.processed_frames + config.window < s.frames_ready]
            if not ready:
                break
            recognizer.decode_streams(ready)
        hyps += [list(s.hyp.tokens) for s in streams]
    return hyps


@torch.no_grad()
def pytorch_streaming_decode(model: Transducer, config: StreamingConfig,
                             audios: Sequence[np.ndarray], num_streams: int = 16
                             ) -> List[List[int]]:
    """Token ids of the PyTorch recogniser as streaming_decode.py runs it."""
    recognizer = StreamingRecognizer(model, config)
    hyps: List[List[int]] = []
    for begin in range(0, len(audios), num_streams):
        streams = recognizer.recognize(list(audios[begin : begin + num_streams]))
        hyps += [list(s.hyp.tokens) for s in streams]
    return hyps


@torch.no_grad()
def pytorch_offline(model: Transducer, audios: Sequence[np.ndarray]) -> List[List[int]]:
    """Token ids of full-context greedy search, one utterance at a time."""
    model = model.eval()
    hyps = []
    for audio in audios:
        features = torch.from_numpy(online_fbank(audio)).unsqueeze(0)
        encoder_out, encoder_lens = model.encoder(features, torch.tensor([features.shape[1]]))
        hyps.append(greedy_search(model, encoder_out, encoder_lens, 1)[0].tokens)
    return hyps


def sherpa_decode_cuts(files: TransducerFiles, cuts_path: str, mode: str,
                       num_threads: int = 1, tail_padding: int = 0, num_streams: int = 16,
                       blank_penalty: float = 0.0, timeout: Optional[float] = None) -> dict:
    """Decodes a cut manifest with sherpa-onnx in a child process (see
    :mod:`~icefall_kd.export.sherpa_runtime` for the result)."""
    return run_in_subprocess({
        "mode": mode, "files": files.as_dict(), "cuts": str(cuts_path),
        "num_threads": num_threads, "tail_padding_samples": tail_padding,
        "num_streams": num_streams, "blank_penalty": blank_penalty,
    }, timeout=timeout)


def identical_share(hyps: Mapping[str, List[int]], reference: Mapping[str, List[int]]) -> float:
    """Share of the reference's utterances whose token sequences are identical."""
    if not reference:
        return float("nan")
    return sum(hyps.get(k) == list(v) for k, v in reference.items()) / len(reference)


def by_id(ids: Sequence[str], hyps: Sequence[List[int]]) -> Dict[str, List[int]]:
    return {i: list(h) for i, h in zip(ids, hyps)}
