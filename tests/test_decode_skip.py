"""--skip-existing (decode.py, streaming_decode.py) redoes results older than the model or
the test cuts."""

import os
from argparse import Namespace
from pathlib import Path

from icefall_kd.recipes.common import results_up_to_date


class _Data:
    def __init__(self, root: Path):
        self.root = root

    def cuts_path(self, part: str) -> Path:
        return self.root / f"librispeech_cuts_{part}.jsonl.gz"


def _touch(path: Path, mtime: float) -> None:
    path.write_text("x")
    os.utime(path, (mtime, mtime))


def test_results_are_redone_when_older_than_the_model_or_the_cuts(tmp_path):
    args = Namespace(exp_dir=tmp_path, epoch=3, test_sets="test-clean test-other")
    data = _Data(tmp_path)
    res = tmp_path / "greedy_search"
    res.mkdir()
    _touch(tmp_path / "epoch-3.pt", 100)
    _touch(data.cuts_path("test-clean"), 100)
    _touch(data.cuts_path("test-other"), 100)
    assert not results_up_to_date(args, data, res, "s")  # nothing decoded yet
    _touch(res / "wer-summary-test-clean-s.txt", 200)
    assert not results_up_to_date(args, data, res, "s")  # test-other missing
    _touch(res / "wer-summary-test-other-s.txt", 200)
    assert results_up_to_date(args, data, res, "s")
    _touch(data.cuts_path("test-other"), 300)  # test-other regenerated
    assert not results_up_to_date(args, data, res, "s")
    _touch(data.cuts_path("test-other"), 100)
    _touch(tmp_path / "epoch-3.pt", 300)  # model retrained
    assert not results_up_to_date(args, data, res, "s")
