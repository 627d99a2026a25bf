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


def test_chunk_sweep_table_compares_each_model_with_the_causal_baseline_at_its_chunk():
    from icefall_kd.reporting.distill_table import chunk_sweep_table
    from icefall_kd.reporting.result_key import ResultKey
    from icefall_kd.reporting.results import DecodeKey

    def key(exp_dir, chunk=None):
        return DecodeKey(exp_dir, "greedy_search", ResultKey(
            1, 1, chunk, None if chunk is None else 4 * chunk), chunkwise=False)

    wers = {key("teacher"): {"test-clean": 20.0, "test-other": 40.0},
            key("base", 4): {"test-clean": 40.0, "test-other": 60.0},
            key("base", 8): {"test-clean": 30.0, "test-other": 50.0},
            key("chunk", 4): {"test-clean": 30.0, "test-other": 55.0},
            key("chunk", 8): {"test-clean": 25.0, "test-other": 50.0}}
    lines = chunk_sweep_table(wers, {"causal": "base", "chunk conv": "chunk"}, "base", "teacher")
    assert len(lines) == 2 + 4  # header, two chunks x two models
    assert lines[3] == "| 160 | 640 | chunk conv | 30.00 | 55.00 | +50% / +25% | - | - |"
    assert lines[5] == "| 320 | 1280 | chunk conv | 25.00 | 50.00 | +50% / +0% | - | - |"
    assert "| 160 | 640 | causal | 40.00 | 60.00 | - / - |" in lines[2]
