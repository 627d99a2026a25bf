"""RESULTS-optimizer.md's comparison (icefall_kd/reporting/optimizer_comparison.py) on
decode outputs written by hand: the relative WER reduction against errors counted by hand,
the verdict on both sides of zero, and the message for an arm without its decodes."""

from pathlib import Path

import pytest
import torch

from icefall_kd.reporting.optimizer_comparison import Arm, comparison_lines, recogs_path
from icefall_kd.reporting.result_key import ResultKey

WORDS = ["A", "B", "C", "D", "E"]


def write_arm(exp: Path, epochs: int, wrong_utterances: range, wer_by_epoch) -> None:
    """40 five-word utterances; one substitution in each utterance of ``wrong_utterances``."""
    (exp / "greedy_search").mkdir(parents=True)
    for epoch in range(1, epochs + 1):
        torch.save({"batch_idx_train": 100 * epoch, "args": {}}, exp / f"epoch-{epoch}.pt")
        suffix = ResultKey(epoch, 1, None, None, use_averaged_model=True).to_suffix()
        (exp / "greedy_search" / f"wer-summary-dev-clean-{suffix}.txt").write_text(
            f"settings\tWER\ngreedy_search\t{wer_by_epoch[epoch - 1]}\n")
        lines = []
        for u in range(40):
            hyp = ["X"] + WORDS[1:] if u in wrong_utterances else WORDS
            lines += [f"utt-{u}:\tref={WORDS}", f"utt-{u}:\thyp={hyp}"]
        recogs_path(exp, epoch).write_text("\n".join(lines) + "\n")


def table_rows(lines):
    return [line for line in lines if line.startswith("| ") and not line.startswith("| optimiser")]


def test_reduction_and_verdicts_follow_the_counted_errors(tmp_path):
    write_arm(tmp_path / "adamw", 2, range(0, 20), [60.0, 10.0])  # 20 errors at epoch 2
    write_arm(tmp_path / "better", 2, range(0, 10), [50.0, 5.0])  # 10 of them corrected
    write_arm(tmp_path / "same", 2, range(0, 20), [55.0, 10.0])  # control: the same errors
    write_arm(tmp_path / "worse", 2, range(0, 30), [70.0, 15.0])
    arms = [Arm("AdamW", tmp_path / "adamw"), Arm("better", tmp_path / "better"),
            Arm("same", tmp_path / "same"), Arm("worse", tmp_path / "worse")]
    lines = comparison_lines(arms, 2, plot=tmp_path / "curves.png", recipe_dir=tmp_path)
    rows = table_rows(lines)
    assert rows[0] == "| AdamW | 60.00 | 10.00 | 200 | - |"
    # 1 - 10/20 = +50%; 1 - 20/20 = 0; 1 - 30/20 = -50%, estimates exact.
    assert rows[1].startswith("| better | 50.00 | 5.00 | 200 | +50.0% [")
    assert rows[2] == "| same | 55.00 | 10.00 | 200 | +0.0% [+0.0, +0.0] |"
    assert rows[3].startswith("| worse | 70.00 | 15.00 | 200 | -50.0% [")
    text = "\n".join(lines)
    assert "- better: fewer errors than AdamW (the interval is above zero)." in text
    assert "- same: no difference from AdamW established (the interval includes zero)." in text
    assert "- worse: more errors than AdamW (the interval is below zero)." in text
    assert "40 utterances" in text and (tmp_path / "curves.png").stat().st_size > 1000


def test_an_arm_without_every_epoch_decoded_is_named(tmp_path):
    write_arm(tmp_path / "adamw", 2, range(0, 20), [60.0, 10.0])
    write_arm(tmp_path / "short", 1, range(0, 20), [60.0])
    arms = [Arm("AdamW", tmp_path / "adamw"), Arm("short", tmp_path / "short")]
    with pytest.raises(SystemExit, match=r"short: dev-clean decodes of epochs 1\.\.2 expected.*"
                       r"found epochs \[1\]"):
        comparison_lines(arms, 2, recipe_dir=tmp_path)
    comparison_lines(arms, 1, recipe_dir=tmp_path)  # control: a budget both reached
