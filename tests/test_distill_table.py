"""The distillation table compares each student with the baseline over the same seeds."""

from icefall_kd.reporting.distill_table import Cell, paired_baseline


def test_a_one_seed_row_is_compared_with_the_first_seed_of_the_baseline():
    baseline = {"greedy test-clean": Cell([36.0, 38.0, 30.0])}
    one_seed = {"greedy test-clean": Cell([35.0])}
    two_seeds = {"greedy test-clean": Cell([35.0, 37.0])}
    three_seeds = {"greedy test-clean": Cell([35.0, 37.0, 29.0])}
    assert paired_baseline(baseline, one_seed, "greedy test-clean") == 36.0
    assert paired_baseline(baseline, two_seeds, "greedy test-clean") == 37.0
    assert abs(paired_baseline(baseline, three_seeds, "greedy test-clean") - 104.0 / 3) < 1e-12
    assert paired_baseline(None, one_seed, "greedy test-clean") is None
