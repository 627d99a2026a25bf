"""The Viterbi aligner against brute-force enumeration of every path."""

import itertools

import pytest
import torch

from icefall_kd.streaming.forced_alignment import viterbi_token_frames, word_start_times


def brute_force_best_frames(log_probs, symbols, blank=0):
    t_max, s_max = log_probs.shape[0], len(symbols)
    best, best_frames = float("-inf"), None
    for steps in itertools.combinations(range(t_max + s_max - 1), s_max):
        t = s = 0
        score, frames = 0.0, []
        for step in range(t_max + s_max):
            if step in steps:
                score += float(log_probs[t, s, symbols[s]])
                frames.append(t)
                s += 1
            else:
                score += float(log_probs[t, s, blank])
                t += 1
        if score > best:
            best, best_frames = score, frames
    return best_frames


@pytest.mark.parametrize("t,symbols,seed", [(4, [1, 2], 0), (6, [3, 1, 3], 1), (5, [2, 2, 2, 2], 2),
                                            (7, [1], 3), (3, [1, 2, 3], 4), (8, [4, 3, 2, 1, 4], 5)])
def test_viterbi_equals_brute_force(t, symbols, seed):
    torch.manual_seed(seed)
    log_probs = torch.randn(t, len(symbols) + 1, 5, dtype=torch.float64).mul(3).log_softmax(-1)
    assert viterbi_token_frames(log_probs, symbols) == brute_force_best_frames(log_probs, symbols)


def test_word_starts_use_the_first_piece_of_each_word():
    pieces = ["\u2581THE", "\u2581LO", "RD", "\u2581SAID"]
    assert word_start_times(pieces, [2, 5, 6, 9]) == [0.08, 0.2, 0.36]
