"""Learning curves: the convergence rule on known sequences, total updates along the
--init-from chain, and which decode results make a curve."""

import pytest
import torch

from icefall_kd.reporting import learning_curve as lc
from icefall_kd.reporting.result_key import ResultKey


@pytest.mark.parametrize("wers, expected", [
    ([40.0], False),                # one epoch: nothing to compare
    ([40.0, 30.0], False),          # 25% better
    ([40.0, 30.0, 29.5], True),     # 1.7% better than the best before: below 2%
    ([40.0, 30.0, 29.3], False),    # 2.3%
    ([40.0, 30.0, 31.0, 30.5], True),  # worse than the best so far
    ([100.0, 100.0, 100.0], False),  # still all blank: not converged, only not started
    ([100.0, 100.0, 99.0], False),  # 1% better, but against no real WER before it
    ([100.0, 99.0, 98.9], True),
])
def test_convergence_rule(wers, expected):
    assert lc.converged(wers) is expected


def _checkpoint(path, updates, **args):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"batch_idx_train": updates, "args": args}, path)


def test_total_updates_follow_the_init_from_chain(tmp_path):
    _checkpoint(tmp_path / "base/epoch-6.pt", 3500, init_from="scratch")
    _checkpoint(tmp_path / "stage1/epoch-1.pt", 580, init_from="base", init_epoch=6)
    _checkpoint(tmp_path / "stage2/epoch-2.pt", 1160, init_from="stage1", init_epoch=1)
    assert lc.total_updates(tmp_path / "base", 6, tmp_path) == 3500
    assert lc.total_updates(tmp_path / "stage2", 2, tmp_path) == 1160 + 580 + 3500
    # A continued training's count already includes its start's updates: not added again.
    _checkpoint(tmp_path / "cont1/epoch-1.pt", 3500 + 580, init_from="base", init_epoch=6,
                init_state="training")
    _checkpoint(tmp_path / "cont2/epoch-2.pt", 3500 + 580 + 1160, init_from="cont1",
                init_epoch=1, init_state="training")
    assert lc.total_updates(tmp_path / "cont2", 2, tmp_path) == 3500 + 580 + 1160
    _checkpoint(tmp_path / "loop/epoch-1.pt", 10, init_from="loop", init_epoch=1)
    with pytest.raises(ValueError, match="loops back"):
        lc.total_updates(tmp_path / "loop", 1, tmp_path)


def test_a_curve_takes_only_the_per_epoch_decodes_at_its_chunk(tmp_path):
    exp = tmp_path / "exp"
    res = exp / "greedy_search"
    res.mkdir(parents=True)

    def summary(key: ResultKey, wer: float):
        (res / f"wer-summary-dev-clean-{key.to_suffix()}.txt").write_text(
            f"settings\tWER\ngreedy_search\t{wer}\n")

    for epoch, wer in ((1, 60.0), (2, 41.5), (3, 38.25)):
        _checkpoint(exp / f"epoch-{epoch}.pt", 100 * epoch)
        summary(ResultKey(epoch, 1, 8, 32, use_averaged_model=True), wer)
    summary(ResultKey(3, 2, 8, 32, use_averaged_model=True), 1.0)  # avg 2: the final decode
    summary(ResultKey(2, 1, 16, 64, use_averaged_model=True), 2.0)  # another chunk
    summary(ResultKey(2, 1, 8, 32, max_sym_per_frame=3, use_averaged_model=True), 3.0)
    summary(ResultKey(4, 1, 8, 32, use_averaged_model=True), 4.0)  # checkpoint deleted
    points = lc.read_curve(exp, "dev-clean", 8, 32, tmp_path)
    assert points == [lc.CurvePoint(1, 100, 60.0), lc.CurvePoint(2, 200, 41.5),
                      lc.CurvePoint(3, 300, 38.25)]
    assert lc.best_epoch(points).epoch == 3
    assert lc.read_curve(exp, "dev-clean", None, None, tmp_path) == []
    assert lc.plot_learning_curves({"baseline": points, "empty": []}, tmp_path / "c.png",
                                   "dev-clean")
    assert (tmp_path / "c.png").stat().st_size > 1000
    assert not lc.plot_learning_curves({"empty": []}, tmp_path / "none.png", "dev-clean")
