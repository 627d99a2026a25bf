"""study.sh alone (no run.sh outputs) writes only its section into RESULTS.md
(icefall_kd/reporting/study.py with_study_section): run.sh's lines stay byte for byte, a
second study write replaces the first, and the section sits where write_results.py puts it."""

from pathlib import Path

from icefall_kd.reporting.study import STUDY_HEADING, with_study_section

RESULTS = Path(__file__).parents[1] / "egs" / "librispeech" / "ASR" / "RESULTS.md"


def section(tag: str) -> list:
    return ["", STUDY_HEADING, "", f"the study's table {tag}", "", "| a | b |", "|---|---|"]


def test_the_section_goes_before_sherpa_onnx_and_nothing_else_changes():
    original = RESULTS.read_text()
    assert STUDY_HEADING not in original and "\n## sherpa-onnx\n" in original
    written = with_study_section(original, section("A"))
    assert written != original  # control: the section is there
    before, after = written.split("\n".join(section("A")) + "\n")
    assert before + after == original
    assert after.startswith("\n## sherpa-onnx\n")


def test_a_second_write_replaces_the_first():
    original = RESULTS.read_text()
    once = with_study_section(original, section("A"))
    twice = with_study_section(once, section("B"))
    assert "table A" not in twice and "table B" in twice
    assert twice == with_study_section(original, section("B"))
    assert with_study_section(twice, []) == original  # an empty section removes it


def test_a_section_at_the_end_is_replaced_and_one_is_added_where_no_later_heading_is():
    text = "# Results\n\n## WER\n\nrows\n"
    added = with_study_section(text, section("A"))
    assert added == "# Results\n\n## WER\n\nrows\n" + "\n".join(section("A")) + "\n"
    replaced = with_study_section(added, section("B"))
    assert replaced == "# Results\n\n## WER\n\nrows\n" + "\n".join(section("B")) + "\n"
    assert with_study_section(replaced, []) == text
