"""The paired bootstrap of RESULTS.md's intervals: per-utterance errors against a brute-force
edit distance and icefall's errs- totals, the replicate distribution against exact
enumeration, seed resampling against known values, coverage on simulated data, and the
per-utterance latencies against the latency summary."""

import itertools
import json
import random

import numpy as np
import pytest

from icefall_kd.decoding.wer import write_error_stats, write_recogs
from icefall_kd.reporting import paired_bootstrap as pb
from icefall_kd.streaming.latency import write_latency_files


def _levenshtein(a, b) -> int:
    d = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return d[-1]


def _random_results(rng: random.Random, count: int):
    words = ["A", "B", "C", "D'S", "*", "E"]
    return [(f"cut-{i}", [rng.choice(words) for _ in range(rng.randint(1, 7))],
             [rng.choice(words) for _ in range(rng.randint(0, 7))]) for i in range(count)]


def test_utterance_errors_match_brute_force_and_the_errs_file_total(tmp_path):
    results = _random_results(random.Random(0), 60)
    write_recogs(tmp_path / "recogs.txt", results)
    stats = write_error_stats(tmp_path / "errs.txt", "x", results)
    errors = pb.utterance_errors(tmp_path / "recogs.txt")
    for cut, ref, hyp in results:
        assert errors[cut] == (_levenshtein(ref, hyp), len(ref))
    assert sum(e for e, _ in errors.values()) == stats.errors
    assert sum(n for _, n in errors.values()) == stats.ref_words


def test_a_malformed_recogs_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "recogs-test-clean-x.txt"
    path.write_text("cut-1:\tref=['A']\ncut-1 hyp=['A']\n")
    with pytest.raises(ValueError, match=r"recogs-test-clean-x.txt:2"):
        pb.utterance_errors(path)


def _exact_bootstrap_moments(base, model):
    """Mean and variance of 1 - sum(model)/sum(base) over every equally likely resample."""
    n = len(base)
    values = []
    for draw in itertools.product(range(n), repeat=n):
        b = sum(base[i] for i in draw)
        if b > 0:
            values.append(1 - sum(model[i] for i in draw) / b)
    return float(np.mean(values)), float(np.var(values))


def test_replicates_follow_the_exact_bootstrap_distribution():
    base, model = [3, 1, 4, 2, 5], [1, 1, 2, 3, 2]
    pairs = [({f"u{i}": (b, 9) for i, b in enumerate(base)},
              {f"u{i}": (m, 9) for i, m in enumerate(model)})]
    cuts, _ = pb._arrays(pairs)
    utt_w, seed_w = pb._replicate_weights(len(cuts), 1, 40000, np.random.default_rng(1))
    b = pb._pooled(np.array([base], float), utt_w, seed_w)
    m = pb._pooled(np.array([model], float), utt_w, seed_w)
    replicates = 1 - m / b
    mean, var = _exact_bootstrap_moments(base, model)
    assert abs(replicates.mean() - mean) < 4 * np.sqrt(var / len(replicates))
    assert abs(replicates.var() / var - 1) < 0.05
    interval = pb.relative_wer_reduction(pairs)
    assert interval.estimate == pytest.approx(1 - sum(model) / sum(base))
    assert interval.low < interval.estimate < interval.high


def test_seed_resampling_spans_the_seeds_when_utterances_do_not_vary():
    """Every utterance alike: only the seed draw varies, so the replicates are seed A's
    reduction, seed B's, or the pooled one, and the 95% interval runs from B's to A's."""
    base = {f"u{i}": (10, 20) for i in range(50)}
    seed_a = {f"u{i}": (6, 20) for i in range(50)}  # 40% fewer errors
    seed_b = {f"u{i}": (11, 20) for i in range(50)}  # 10% more
    interval = pb.relative_wer_reduction([(base, seed_a), (base, seed_b)])
    assert interval.estimate == pytest.approx(0.15)
    assert (interval.low, interval.high) == (pytest.approx(-0.1), pytest.approx(0.4))
    assert not interval.excludes_zero
    one_seed = pb.relative_wer_reduction([(base, seed_a)])
    assert (one_seed.low, one_seed.estimate, one_seed.high) == (pytest.approx(0.4),) * 3


def test_intervals_exclude_zero_only_for_a_real_difference():
    rng = np.random.default_rng(3)
    base_errors = rng.poisson(3, 400)
    base = {f"u{i}": (int(e), 20) for i, e in enumerate(base_errors)}
    same = pb.relative_wer_reduction([(base, dict(base))])
    assert (same.estimate, same.low, same.high) == (0, 0, 0) and not same.excludes_zero
    # Control: the same errors shuffled over utterances: no real difference, zero inside.
    shuffled = {f"u{i}": (int(e), 20) for i, e in enumerate(rng.permutation(base_errors))}
    assert not pb.relative_wer_reduction([(base, shuffled)]).excludes_zero
    better = {k: (max(e - 1, 0), n) for k, (e, n) in base.items()}
    assert pb.relative_wer_reduction([(base, better)]).excludes_zero


def test_coverage_on_simulated_test_sets():
    """Baseline errors ~ Poisson, the model keeps each error with probability 0.8 (a true
    20% reduction): the 95% interval covers 0.2 in about 95% of simulated test sets."""
    rng = np.random.default_rng(7)
    covered = 0
    trials = 120
    for trial in range(trials):
        rates = rng.gamma(2.0, 1.5, 250)
        base = rng.poisson(rates)
        model = rng.poisson(rates * 0.8)
        interval = pb.relative_wer_reduction(
            [({str(i): (int(b), 20) for i, b in enumerate(base)},
              {str(i): (int(m), 20) for i, m in enumerate(model)})], resamples=600, seed=trial)
        covered += interval.low <= 0.2 <= interval.high
    assert 0.88 <= covered / trials <= 0.99


def test_mean_difference_pools_values_and_skips_utterances_without_any():
    base = {"a": [0.4], "b": [0.8], "c": []}
    model = {"a": [0.2], "b": [0.6], "c": [0.1]}
    interval = pb.mean_difference([(base, model)], resamples=500)
    assert interval.estimate == pytest.approx((0.2 + 0.6 + 0.1) / 3 - (0.4 + 0.8) / 2)
    # A baseline that never emits has no mean: the interval is undefined, shown as "-".
    silent = pb.mean_difference([({"a": [], "b": []}, {"a": [0.3], "b": []})], resamples=50)
    assert silent.text() == "-" and not silent.excludes_zero
    no_errors = pb.relative_wer_reduction([({"a": (0, 3)}, {"a": (1, 3)})], resamples=50)
    assert no_errors.text(scale=100, unit="%") == "-"


def test_wer_standard_error_matches_the_delta_method():
    rng = np.random.default_rng(5)
    refs = rng.integers(5, 30, 1500)
    errs = rng.binomial(refs, 0.2)
    wer = errs.sum() / refs.sum()
    delta = 100 * np.sqrt(np.sum((errs - wer * refs) ** 2)) / refs.sum()
    se = pb.wer_standard_error({str(i): (int(e), int(n)) for i, (e, n) in enumerate(zip(errs, refs))})
    assert se == pytest.approx(delta, rel=0.08)


def test_per_utterance_latencies_agree_with_the_latency_summary(tmp_path):
    records = []
    for i in range(30):
        ref = ["A", "B", "C", "D"][: 1 + i % 4]
        starts = [0.3 + 0.4 * k for k in range(len(ref))]
        hyp = ref if i % 3 else ref[:-1] + ["X"]
        records.append({"cut_id": f"c{i}", "ref_words": ref, "ref_word_starts": starts,
                        "hyp_words": hyp, "hyp_word_starts": [s + 0.04 * (i % 5) for s in starts],
                        "first_token_seconds": None if i == 7 else 0.32 + 0.01 * i,
                        "token_times": []})
    summary = write_latency_files(tmp_path, "test-clean", "x", records)
    per_utt = pb.utterance_latencies(tmp_path / "timestamps-test-clean-x.jsonl")
    delays = [d for _, ds in per_utt.values() for d in ds]
    firsts = [f for f, _ in per_utt.values() if f is not None]
    assert 1000 * np.mean(delays) == pytest.approx(summary["symbol_delay"]["mean_ms"], abs=0.01)
    assert 1000 * np.mean(firsts) == pytest.approx(summary["first_token_latency"]["mean_ms"])
    assert len(firsts) == 29
    old = tmp_path / "timestamps-old.jsonl"  # written before the per-utterance fields
    old.write_text(json.dumps({"cut_id": "c0", "hyp": [], "token_times": []}) + "\n")
    assert pb.utterance_latencies(old) == {}
