"""Chunk-by-chunk recognition from audio, as a deployed recogniser does it.

Samples arrive in pieces; kaldi-native-fbank (sherpa-onnx's front end) turns them into
feature frames as they come; every time a stream has a full window (the chunk's 4C frames
plus the 3 frames of look-ahead the subsampling reads) the encoder runs one chunk with the
stream's cached state, and the search continues from where it stopped. Ready streams are
decoded together (states stacked and unstacked). When the input ends, the last, partial
chunk is run with its true length, so nothing is padded into the model and no final word is
lost: the result equals simulated streaming on the whole utterance.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np
import torch

from icefall_kd.data.fbank import FEATURE_DIM, SAMPLE_RATE, online_fbank_options
from icefall_kd.decoding.search import (
    Hypothesis,
    beam_search_frames,
    best_hypothesis,
    greedy_search,
    initial_beams,
)
from icefall_kd.model.encoders import stack_states, unstack_states
from icefall_kd.model.subsampling import SUBSAMPLING_FACTOR, SUBSAMPLING_LOOKAHEAD_FRAMES
from icefall_kd.model.transducer import Transducer

FRAME_SHIFT_SAMPLES = 160
# kaldi-native-fbank with snip_edges=False: frame i covers samples [160 i - 120, 160 i + 280).
FRAME_END_OFFSET_SAMPLES = 280


class BadAudio(ValueError):
    pass


@dataclass
class StreamingConfig:
    chunk_size: int  # encoder frames (40 ms each)
    left_context: int  # encoder frames
    decoding_method: str = "greedy_search"
    max_sym_per_frame: int = 1
    beam_size: int = 4

    @property
    def decode_chunk_len(self) -> int:
        """Feature frames (10 ms) consumed per chunk."""
        return self.chunk_size * SUBSAMPLING_FACTOR

    @property
    def window(self) -> int:
        """Feature frames fed per chunk: the chunk plus the subsampling's look-ahead."""
        return self.decode_chunk_len + SUBSAMPLING_LOOKAHEAD_FRAMES

    @property
    def tail_padding_samples(self) -> int:
        """Silence a recogniser that only runs full windows (sherpa-onnx) must append after
        the input so that the last real frame still gets decoded: one whole window."""
        return self.window * FRAME_SHIFT_SAMPLES


def partial_result_times(times: List[int], shown: List[int], best: List[int],
                         now: int) -> List[int]:
    """When each token of the new best hypothesis ``best`` became available, given the
    previous best ``shown`` and its times: the common prefix keeps its times (the partial
    result did not change there), every token after it is available ``now``."""
    common = 0
    while common < min(len(shown), len(best)) and shown[common] == best[common]:
        common += 1
    return times[:common] + [now] * (len(best) - common)


@dataclass
class Stream:
    """One utterance being recognised. Feed it with :meth:`accept_waveform`, close it with
    :meth:`input_finished`; the recogniser fills ``hyp`` and per-token availability."""

    stream_id: str
    fbank: object
    state: object  # the encoder's streaming state (Conformer or Zipformer)
    processed_frames: int = 0  # feature frames consumed by the encoder
    encoder_frames: int = 0  # encoder frames produced
    samples_received: int = 0
    finished: bool = False
    done: bool = False
    hyp: Hypothesis = field(default_factory=lambda: Hypothesis([]))
    beams: Optional[dict] = None
    shown_tokens: List[int] = field(default_factory=list)  # the previous best hypothesis
    # For every token: the number of samples that had to arrive before it was emitted. With
    # beam search: before it appeared in the best (partial) hypothesis with the same tokens
    # before it, and stayed there since.
    token_available_samples: List[int] = field(default_factory=list)

    def accept_waveform(self, sample_rate: int, samples: np.ndarray) -> None:
        """samples: float32 mono in [-1, 1] at 16 kHz (resample other rates first)."""
        if self.finished:
            raise BadAudio(f"stream {self.stream_id}: accept_waveform after input_finished")
        if sample_rate != SAMPLE_RATE:
            raise BadAudio(
                f"stream {self.stream_id}: audio at {sample_rate} Hz; the model takes 16000 Hz. "
                "Resample first (streaming_decode.py does this for whole recordings)."
            )
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            return
        if not np.all(np.isfinite(samples)):
            raise BadAudio(f"stream {self.stream_id}: NaN or infinite samples")
        peak = float(np.abs(samples).max())
        if peak > 1.5:
            raise BadAudio(
                f"stream {self.stream_id}: samples up to {peak:.0f}; expected floats in [-1, 1] "
                "(int16 PCM must be divided by 32768)"
            )
        if peak > 1.0:
            logging.warning(f"stream {self.stream_id}: samples above 1.0 clipped")
            samples = np.clip(samples, -1.0, 1.0)
        self.fbank.accept_waveform(SAMPLE_RATE, samples.tolist())
        self.samples_received += samples.size

    def input_finished(self) -> None:
        if not self.finished:
            self.fbank.input_finished()
            self.finished = True

    @property
    def frames_ready(self) -> int:
        return self.fbank.num_frames_ready


class StreamingRecognizer:
    """Chunk-wise recognition with a streaming (causal) :class:`Transducer`."""

    def __init__(self, model: Transducer, config: StreamingConfig) -> None:
        if not model.causal:
            raise ValueError("chunk-wise recognition needs a streaming (causal) model")
        if config.decoding_method not in ("greedy_search", "modified_beam_search"):
            raise ValueError(f"unknown decoding method {config.decoding_method!r}")
        self.model = model.eval()
        self.config = config

    def create_stream(self, stream_id: str = "") -> Stream:
        import kaldi_native_fbank as knf

        stream = Stream(
            stream_id=stream_id,
            fbank=knf.OnlineFbank(online_fbank_options()),
            state=self.model.encoder.init_state(1, self.config.left_context),
        )
        if self.config.decoding_method == "modified_beam_search":
            stream.beams = initial_beams()
        return stream

    def is_ready(self, stream: Stream) -> bool:
        if stream.done:
            return False
        available = stream.frames_ready - stream.processed_frames
        return available >= self.config.window or stream.finished

    def _window(self, stream: Stream):
        """(window, valid frames) of features for the stream's next chunk."""
        start = stream.processed_frames
        end = min(start + self.config.window, stream.frames_ready)
        frames = np.zeros((self.config.window, FEATURE_DIM), dtype=np.float32)
        for i in range(start, end):
            frames[i - start] = stream.fbank.get_frame(i)
        return frames, end - start

    @torch.no_grad()
    def decode_streams(self, streams: List[Stream]) -> None:
        """Runs one chunk for every ready stream in ``streams``, all in one batch."""
        ready = [s for s in streams if self.is_ready(s)]
        if not ready:
            return
        windows, lengths = zip(*(self._window(s) for s in ready))
        features = torch.from_numpy(np.stack(windows))
        feature_lens = torch.tensor(lengths, dtype=torch.int64)
        state = stack_states([s.state for s in ready])
        encoder_out, encoder_lens, new_state = self.model.encoder.streaming_forward(
            features, feature_lens, state
        )
        offsets = [s.encoder_frames for s in ready]
        before = [len(s.hyp.tokens) for s in ready]
        if self.config.decoding_method == "greedy_search":
            greedy_search(self.model, encoder_out, encoder_lens, self.config.max_sym_per_frame,
                          hyps=[s.hyp for s in ready], frame_offset=offsets)
        else:
            enc_proj = self.model.joiner.encoder_proj(encoder_out)
            for i, stream in enumerate(ready):
                stream.beams = beam_search_frames(self.model, enc_proj[i, : int(encoder_lens[i])],
                                                  stream.beams, self.config.beam_size, offsets[i])
                stream.hyp = best_hypothesis(stream.beams)
        for stream, single, n_out, n_before, n_in in zip(
            ready, unstack_states(new_state), encoder_lens.tolist(), before, lengths
        ):
            stream.state = single
            stream.encoder_frames += n_out
            last_frame = stream.processed_frames + n_in - 1
            needed = min(last_frame * FRAME_SHIFT_SAMPLES + FRAME_END_OFFSET_SAMPLES,
                         stream.samples_received)
            if self.config.decoding_method == "greedy_search":
                stream.token_available_samples += [needed] * (len(stream.hyp.tokens) - n_before)
            else:
                stream.token_available_samples = partial_result_times(
                    stream.token_available_samples, stream.shown_tokens, stream.hyp.tokens, needed)
                stream.shown_tokens = list(stream.hyp.tokens)
            if n_in < self.config.window:  # the final, partial chunk
                stream.processed_frames = stream.frames_ready
                stream.done = True
            else:
                stream.processed_frames += self.config.decode_chunk_len
            if stream.finished and stream.processed_frames + SUBSAMPLING_LOOKAHEAD_FRAMES >= stream.frames_ready:
                stream.done = True

    def decode_until_done(self, streams: List[Stream]) -> None:
        """For streams whose input is complete: decode until every one is done."""
        while any(self.is_ready(s) for s in streams):
            self.decode_streams(streams)

    def recognize(self, audios: List[np.ndarray], stream_ids: Optional[List[str]] = None,
                  piece_samples: int = 1600) -> List[Stream]:
        """Recognises whole recordings as if they arrived live: every stream gets its next
        ``piece_samples`` samples in turn, and ready streams are decoded after each round."""
        stream_ids = stream_ids or [str(i) for i in range(len(audios))]
        streams = [self.create_stream(i) for i in stream_ids]
        longest = max((len(a) for a in audios), default=0)
        for begin in range(0, longest, piece_samples):
            for stream, audio in zip(streams, audios):
                if begin < len(audio):
                    stream.accept_waveform(SAMPLE_RATE, audio[begin : begin + piece_samples])
                if begin + piece_samples >= len(audio):
                    stream.input_finished()
            self.decode_streams(streams)
        for stream in streams:
            stream.input_finished()  # empty recordings
        self.decode_until_done(streams)
        return streams
