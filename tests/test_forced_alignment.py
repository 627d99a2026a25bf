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


def path_score(log_probs, symbols, frames, blank=0):
    """Log-probability (float64) of the path emitting symbol i at frame frames[i]."""
    lp = log_probs.double()
    score, s = 0.0, 0
    for t in range(lp.shape[0]):
        while s < len(symbols) and frames[s] == t:
            score += float(lp[t, s, symbols[s]])
            s += 1
        score += float(lp[t, s, blank])
    assert s == len(symbols), "path does not emit every symbol"
    return score


def best_score_by_dynamic_programming(log_probs, symbols, blank=0):
    """The plain O(T * S) recursion, in float64: the best path score, independently."""
    lp = log_probs.double().tolist()
    t_max, s_max = len(lp), len(symbols)
    neg = float("-inf")
    alpha = [[neg] * (s_max + 1) for _ in range(t_max)]
    for t in range(t_max):
        for s in range(s_max + 1):
            best = 0.0 if t == 0 and s == 0 else neg
            if t > 0:
                best = max(best, alpha[t - 1][s] + lp[t - 1][s][blank])
            if s > 0:
                best = max(best, alpha[t][s - 1] + lp[t][s - 1][symbols[s - 1]])
            alpha[t][s] = best
    return alpha[-1][-1] + lp[-1][s_max][blank]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_viterbi_finds_the_best_path_on_long_float32_lattices(seed):
    # Long utterances in float32: large partial sums make score comparisons round, which
    # once moved tokens to late frames (the aligner was off by ~1 s on real data).
    torch.manual_seed(seed)
    t_max, vocab = 120, 50
    symbols = torch.randint(1, vocab, (40,)).tolist()
    log_probs = torch.randn(t_max, len(symbols) + 1, vocab).mul(4).log_softmax(-1)
    frames = viterbi_token_frames(log_probs, symbols)
    assert frames == sorted(frames) and 0 <= frames[0] and frames[-1] < t_max
    best = best_score_by_dynamic_programming(log_probs, symbols)
    assert path_score(log_probs, symbols, frames) == pytest.approx(best, abs=1e-3)
