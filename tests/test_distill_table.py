"""The distillation table compares each student with the baseline over the same seeds."""

from pathlib import Path

import pytest

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
    # No recogs- files here: the interval cells are empty, never made up.
    assert lines[3] == "| 160 | 640 | chunk conv | 30.00 | 55.00 | +50% / +25% | - | - | - | - | - |"
    assert lines[5] == "| 320 | 1280 | chunk conv | 25.00 | 50.00 | +50% / +0% | - | - | - | - | - |"
    assert "| 160 | 640 | causal | 40.00 | 60.00 | - / - |" in lines[2]


def test_intervals_are_read_from_the_recogs_files_of_each_seed_pair(tmp_path):
    """Student seed i against baseline seed i: the interval's estimate is the reduction of
    the error totals over both seeds, and the conclusions name only a row whose intervals
    exclude zero on both test sets."""
    from icefall_kd.decoding.wer import write_recogs
    from icefall_kd.reporting.distill_table import (
        TEST_SETS, interval_conclusions, paired_intervals)
    from icefall_kd.reporting.result_key import ResultKey
    from icefall_kd.reporting.results import collect_wers

    suffix = ResultKey(1, 1, 8, 32).to_suffix()
    refs = [["A", "B", "C", "D"]] * 200

    def decode(exp: str, errors_per_utt):
        res = tmp_path / exp / "greedy_search"
        res.mkdir(parents=True)
        for test_set in TEST_SETS:
            results = [(f"u{i}", ref, ref[e:]) for i, (ref, e) in enumerate(zip(refs, errors_per_utt))]
            write_recogs(res / f"recogs-{test_set}-{suffix}.txt", results)
            wer = 100 * sum(errors_per_utt) / (4 * len(refs))
            (res / f"wer-summary-{test_set}-{suffix}.txt").write_text(f"settings\tWER\n{suffix}\t{wer}\n")
        return str(tmp_path / exp)

    base = [decode("base1", [2, 1] * 100), decode("base2", [1, 1] * 100)]
    better = [decode("kd1", [1, 0] * 100), decode("kd2", [0, 1] * 100)]
    same = [decode("same1", [1, 2] * 100), decode("same2", [1, 1] * 100)]
    wers = collect_wers([Path(d) for d in base + better + same])
    iv_better = paired_intervals(better, base, list(wers), 8, 32)
    iv_same = paired_intervals(same, base, list(wers), 8, 32)
    assert iv_better["test-clean"].estimate == pytest.approx(1 - 200 / 500)
    assert iv_better["test-clean"].seeds == 2 and iv_better["test-clean"].utterances == 200
    assert iv_same["test-other"].estimate == pytest.approx(0.0)
    lines = interval_conclusions([("kd", iv_better), ("same", iv_same)], "the baseline")
    assert lines[0].startswith("- Fewer errors than the baseline") and lines[0].endswith(": kd.")
    assert lines[1].endswith(": same.")


def test_rows_read_the_last_epoch_unless_they_name_one():
    """An earlier checkpoint decoded beside the last one (the Zipformer at the Conformer's
    training time) never takes the last one's place, whatever order the results come in."""
    from icefall_kd.reporting.distill_table import Row, find_key, row_cells
    from icefall_kd.reporting.result_key import ResultKey
    from icefall_kd.reporting.results import DecodeKey

    def key(epoch, chunk=8):
        return DecodeKey("zip", "greedy_search", ResultKey(epoch, min(epoch, 2), chunk, 32),
                         chunkwise=False)

    wers = {key(2): {"test-clean": 50.0}, key(3): {"test-clean": 40.0},
            key(1, chunk=4): {"test-clean": 70.0}}
    for order in (list(wers), list(reversed(wers))):
        assert find_key(order, "zip", "greedy_search", 8, 32) == key(3)
        assert find_key(order, "zip", "greedy_search", 8, 32, epoch=2) == key(2)
        assert find_key(order, "zip", "greedy_search", 8, 32, epoch=1) is None  # other chunk
    assert row_cells(Row("last", ["zip"]), wers, 8, 32)["greedy test-clean"].values == [40.0]
    assert row_cells(Row("e2", ["zip"], epoch=2), wers, 8, 32)["greedy test-clean"].values == [50.0]


def test_dev_only_decodes_are_not_rows(tmp_path):
    """A learning-curve point (dev-clean alone) at the same epoch as run.sh's decode with
    another --avg would otherwise be a second candidate for the model's row."""
    from icefall_kd.reporting.distill_table import find_key
    from icefall_kd.reporting.result_key import ResultKey
    from icefall_kd.reporting.results import collect_wers, without_dev_only

    res = tmp_path / "exp-zipformer" / "greedy_search"
    res.mkdir(parents=True)
    recipe = ResultKey(3, 2, None, None, use_averaged_model=True).to_suffix()
    curve = ResultKey(3, 1, None, None, use_averaged_model=True).to_suffix()
    for test_set in ("dev-clean", "test-clean", "test-other"):
        (res / f"wer-summary-{test_set}-{recipe}.txt").write_text("settings\tWER\ng\t40.0\n")
    (res / f"wer-summary-dev-clean-{curve}.txt").write_text("settings\tWER\ng\t28.0\n")
    table = collect_wers([tmp_path / "exp-zipformer"])
    assert len(table) == 2  # control: both are read
    kept = without_dev_only(table)
    assert [k.result.avg for k in kept] == [2] and list(kept.values()) == [
        {"dev-clean": 40.0, "test-clean": 40.0, "test-other": 40.0}]
    key = find_key(list(kept), str(tmp_path / "exp-zipformer"), "greedy_search", None, None)
    assert key.result.avg == 2


def test_same_epoch_decodes_with_different_averaging_are_refused():
    """Two test-set decodes of one epoch that differ only in --avg: the row would be either
    model, so write_results names the folder instead of choosing."""
    import pytest

    from icefall_kd.reporting.distill_table import find_key
    from icefall_kd.reporting.result_key import ResultKey
    from icefall_kd.reporting.results import DecodeKey

    def key(avg):
        return DecodeKey("zip", "greedy_search", ResultKey(3, avg, 8, 32), chunkwise=False)

    assert find_key([key(1)], "zip", "greedy_search", 8, 32) == key(1)  # control: one is fine
    with pytest.raises(ValueError, match=r"zip/greedy_search: 2 test-set decodes of epoch 3"):
        find_key([key(1), key(2)], "zip", "greedy_search", 8, 32)
