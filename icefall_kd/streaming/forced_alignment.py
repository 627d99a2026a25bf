"""Word times for corpora without exact ones (LibriSpeech): a Viterbi alignment of the
full-context teacher over the transducer lattice of the reference tokens.

The best path through the (T, S+1) lattice gives the encoder frame at which each token is
emitted; a word starts at the frame of its first piece. On the embedded corpus, whose word
times are exact, the error of this aligner is measured (``transducer_teacher/align.py``, run.sh stage 4;
``icefall_kd/recipes/align_with_teacher.py``), so
latency figures on LibriSpeech carry a known error bar.
"""

from __future__ import annotations

from typing import List

import torch

from icefall_kd.model.transducer import Transducer


def viterbi_token_frames(log_probs: torch.Tensor, symbols: List[int], blank: int = 0) -> List[int]:
    """log_probs: (T, S+1, V) log-softmax at every lattice node (node (t, s): frame t after
    s tokens). Returns the frame at which each of the S tokens is emitted on the single best
    path of T blanks and S tokens ending with a blank (regular RNN-T topology)."""
    t_max, s_plus_1, _ = log_probs.shape
    s_max = s_plus_1 - 1
    if s_max != len(symbols):
        raise ValueError(f"lattice has {s_max} symbol rows, {len(symbols)} symbols given")
    if s_max == 0:
        return []
    index = torch.tensor(symbols, dtype=torch.int64)
    emit = log_probs[:, :-1, :].gather(2, index.view(1, -1, 1).expand(t_max, -1, 1)).squeeze(2)
    blank_lp = log_probs[:, :, blank]  # (T, S+1)
    neg_inf = torch.tensor(float("-inf"), dtype=log_probs.dtype)
    # first_row[t, s]: the row k at which the best path to node (t, s) entered frame t; it
    # then emitted symbols k..s-1 at frame t. Kept as an index rather than recovered by
    # comparing scores, which float rounding of the scan below would make unreliable.
    first_row = torch.zeros((t_max, s_plus_1), dtype=torch.int64)
    arrive = torch.full((s_plus_1,), float("-inf"), dtype=log_probs.dtype)
    arrive[0] = 0.0  # arriving at frame 0 with 0 symbols
    for t in range(t_max):
        # Within a frame, symbols advance s: score[s] = max(arrive[s], score[s-1] + emit[s-1]).
        # A max-plus scan: with c[s] = sum of emit[t, :s],
        # score[s] = c[s] + max_{k <= s} (arrive[k] - c[k]).
        c = torch.cat([torch.zeros(1, dtype=log_probs.dtype), emit[t].cumsum(0)])
        best, first_row[t] = torch.cummax(arrive - c, dim=0)
        score = c + best
        arrive = score + blank_lp[t]  # the blank of frame t moves to frame t + 1
        arrive = torch.where(torch.isfinite(arrive), arrive, neg_inf)
    # Backtrack from (T-1, S): the final blank is taken there.
    frames = [0] * s_max
    s = s_max
    for t in range(t_max - 1, -1, -1):
        k = int(first_row[t, s])
        for j in range(k, s):
            frames[j] = t
        s = k
    if s != 0:
        raise RuntimeError("no complete path through the lattice (T < S?)")
    return frames


@torch.no_grad()
def lattice_log_probs(model: Transducer, encoder_out: torch.Tensor, symbols: List[int]) -> torch.Tensor:
    """(T, S+1, V) log-probabilities of one utterance; encoder_out: (T, D)."""
    decoder_in = torch.tensor([[model.config.blank_id] + list(symbols)])
    decoder_out = model.decoder(decoder_in)[0]  # (S+1, decoder_dim)
    logits = model.joiner(encoder_out.unsqueeze(1), decoder_out.unsqueeze(0))
    return logits.log_softmax(-1)


def word_start_times(pieces: List[str], frames: List[int], frame_seconds: float = 0.04) -> List[float]:
    """Start time of each word: the frame of its first piece ('▁' opens a word)."""
    starts = []
    for piece, frame in zip(pieces, frames):
        if piece.startswith("\u2581") or not starts:
            starts.append(frame * frame_seconds)
    return starts
