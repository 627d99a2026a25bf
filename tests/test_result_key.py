"""Result-file names: the decoders write them through ResultKey and the reports read them
back with it; the two round-trip, and a name no decoder writes is refused."""

import argparse
from pathlib import Path

import pytest

from icefall_kd.recipes.decode import result_suffix
from icefall_kd.recipes.streaming_decode import streaming_suffix
from icefall_kd.reporting.result_key import ResultKey
from icefall_kd.reporting.results import parse_result_name

# Every form decode.py, streaming_decode.py and sherpa_decode.py write (the first ones are
# those of `./run.sh --profile tiny --ablations true --seeds 2`).
SUFFIXES = {
    "epoch-2_avg-1_use-averaged-model": ResultKey(2, 1, use_averaged_model=True),
    "epoch-2_avg-1_max-sym-per-frame-3_use-averaged-model":
        ResultKey(2, 1, max_sym_per_frame=3, use_averaged_model=True),
    "epoch-2_avg-1_beam-4_use-averaged-model":
        ResultKey(2, 1, beam_size=4, use_averaged_model=True),
    "epoch-1_avg-1_chunk-4_left-context-16_use-averaged-model":
        ResultKey(1, 1, chunk_size=4, left_context=16, use_averaged_model=True),
    "epoch-2_avg-1_chunk-4_left-context-16_max-sym-per-frame-3_use-averaged-model":
        ResultKey(2, 1, 4, 16, max_sym_per_frame=3, use_averaged_model=True),
    "epoch-2_avg-1_chunk-4_left-context-16_beam-4_use-averaged-model":
        ResultKey(2, 1, 4, 16, beam_size=4, use_averaged_model=True),
    "epoch-1_avg-1_chunk-4_left-context-16_fp32_use-averaged-model":
        ResultKey(1, 1, 4, 16, precision="fp32", use_averaged_model=True),
    "epoch-2_avg-1_int8_use-averaged-model":
        ResultKey(2, 1, precision="int8", use_averaged_model=True),
    "epoch-30_avg-9": ResultKey(30, 9),
    "epoch-30_avg-9_chunk-16_left-context-128_beam-10": ResultKey(30, 9, 16, 128, beam_size=10),
    "epoch-30_avg-9_chunk-0_left-context-0": ResultKey(30, 9, 0, 0),  # streaming_decode.py
}


@pytest.mark.parametrize("suffix", sorted(SUFFIXES))
def test_every_suffix_form_round_trips_through_the_key(suffix):
    key = ResultKey.parse(suffix)
    assert key == SUFFIXES[suffix]
    assert key.to_suffix() == suffix


@pytest.mark.parametrize("suffix", [
    "epoch-2_avg-1_chunk-4",  # no left context
    "epoch-2_avg-1_max-sym-per-frame-1",  # the writers leave one symbol per frame out
    "epoch-02_avg-1",
    "epoch-2_avg-1_beam-4_max-sym-per-frame-3",
    "epoch-2_avg-1_use-averaged-model_beam-4",  # out of order
    "epoch-2_avg-1_greedy",
    "",
])
def test_a_malformed_suffix_is_refused_with_the_expected_form(suffix):
    with pytest.raises(ValueError, match="is not a result-file suffix"):
        ResultKey.parse(suffix)


def test_a_malformed_file_name_is_refused_naming_the_file():
    assert parse_result_name(Path("x/wer-summary-test-clean-epoch-2_avg-1.txt"),
                             "wer-summary") == ("test-clean", ResultKey(2, 1))
    with pytest.raises(ValueError, match="x/wer-summary-test-clean-epoch-2_avg-1_x.txt"):
        parse_result_name(Path("x/wer-summary-test-clean-epoch-2_avg-1_x.txt"), "wer-summary")


def _args(**overrides):
    args = dict(epoch=30, avg=9, chunk_size=0, left_context=64, decoding_method="greedy_search",
                beam_size=4, max_sym_per_frame=1, use_averaged_model=False)
    return argparse.Namespace(**{**args, **overrides})


def test_decoders_write_the_names_they_always_wrote():
    """Literal names, so that a change to the key cannot silently rename result files."""
    assert result_suffix(_args()) == "epoch-30_avg-9"
    assert result_suffix(_args(max_sym_per_frame=3, use_averaged_model=True)) == \
        "epoch-30_avg-9_max-sym-per-frame-3_use-averaged-model"
    assert result_suffix(_args(decoding_method="modified_beam_search", max_sym_per_frame=3)) == \
        "epoch-30_avg-9_beam-4"
    assert result_suffix(_args(chunk_size=8, decoding_method="modified_beam_search")) == \
        "epoch-30_avg-9_chunk-8_left-context-64_beam-4"
    assert streaming_suffix(_args(chunk_size=8)) == "epoch-30_avg-9_chunk-8_left-context-64"
    assert streaming_suffix(_args(chunk_size=8, max_sym_per_frame=3, use_averaged_model=True)) \
        == "epoch-30_avg-9_chunk-8_left-context-64_use-averaged-model"
    assert streaming_suffix(_args(chunk_size=8, decoding_method="modified_beam_search")) == \
        "epoch-30_avg-9_chunk-8_left-context-64_beam-4"
