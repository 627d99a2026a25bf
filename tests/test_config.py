"""Flags generated from the config dataclasses: one default and one help per setting, each
script offering only the flags it reads."""

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from icefall_kd.config import add_config_arguments, config_from_args, option
from icefall_kd.data.datamodule import DataConfig
from icefall_kd.distill.objective import DistillConfig
from icefall_kd.recipes import decode, export_teacher_targets, streaming_decode, train_transducer
from icefall_kd.training.trainer import TrainConfig


@dataclass
class _Example:
    rate: float = option(0.5, "a rate")
    name_of_thing: str = option("a", "a choice", choices=("a", "b"))
    enabled: bool = option(False, "a switch")
    where: Path = option(Path("x"), "a folder")
    hidden: int = option(7, "set by the caller", flag=False)


def _flags(parser: argparse.ArgumentParser):
    return {s for a in parser._actions for s in a.option_strings}


def test_flags_follow_the_fields_names_types_defaults_and_choices():
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, _Example)
    assert _flags(parser) >= {"--rate", "--name-of-thing", "--enabled", "--where"}
    assert "--hidden" not in _flags(parser)
    config = config_from_args(_Example, parser.parse_args([]))
    assert config == _Example()  # the defaults are the fields'
    args = parser.parse_args(["--rate", "2", "--name-of-thing", "b", "--enabled", "yes",
                              "--where", "y"])
    assert config_from_args(_Example, args, hidden=3) == _Example(2.0, "b", True, Path("y"), 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["--name-of-thing", "c"])


def test_a_field_without_a_flag_is_never_filled_from_another_groups_flag():
    args = argparse.Namespace(hidden=99, rate=1.0)
    assert config_from_args(_Example, args).hidden == 7
    # The training recipe passes the sampler's seed on purpose:
    assert DataConfig.from_args(argparse.Namespace(seed=5, max_duration=10.0)).seed == 42
    assert DataConfig.from_args(argparse.Namespace(max_duration=10.0), seed=5).seed == 5


def test_a_bad_boolean_says_what_it_accepts(capsys):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, _Example)
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--enabled", "maybe"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--enabled" in err and "expected a boolean (true/false" in err and "'maybe'" in err


def test_every_training_setting_has_a_flag_with_its_fields_default():
    parser = train_transducer.build_parser("", streaming=True)
    args = parser.parse_args(["--exp-dir", "e"])
    assert "--weight-decay" in _flags(parser)
    assert TrainConfig.from_args(args) == TrainConfig(exp_dir=Path("e"))
    assert DataConfig.from_args(args) == DataConfig()


def test_decoding_scripts_offer_only_the_data_flags_they_read():
    training_only = {"--num-buckets", "--shuffle", "--drop-last", "--enable-spec-aug",
                     "--spec-aug-time-warp-factor"}
    for module in (decode, export_teacher_targets):
        flags = _flags(module.build_parser(""))
        assert not flags & training_only, module.__name__
        assert {"--manifest-dir", "--max-duration", "--num-workers"} <= flags
    streaming = _flags(streaming_decode.build_parser(""))
    assert "--manifest-dir" in streaming
    assert not streaming & (training_only | {"--max-duration", "--num-workers",
                                             "--on-the-fly-feats"})
    # Control: the training parser does have them.
    assert training_only <= _flags(train_transducer.build_parser("", streaming=True))


def test_the_stage_scripts_defaults_are_the_method():
    from icefall_kd.recipes.train_distill import build_distill_parser

    stage2 = build_distill_parser("", "stage2")
    args = stage2.parse_args(["--exp-dir", "e", "--teacher-epoch", "1"])
    config = DistillConfig.from_args(args)
    assert (config.output_kd, config.kd_hinton, config.output_kd_scale) == ("token", True, 0.1)
    assert (config.smoothing.mode, config.smoothing.entropy_floor) == ("entropy_floor", 0.5)
    assert config.hidden_kd_scale == 0 and args.init_from == "kd_stage1_hidden/exp"
    stage1 = build_distill_parser("", "stage1")
    args = stage1.parse_args(["--exp-dir", "e", "--teacher-epoch", "1"])
    config = DistillConfig.from_args(args)
    assert (config.hidden_kd_scale, args.hidden_kd_projection) == (0.3, "fitted")
    assert config.output_kd_scale == 0 and args.init_from == "transducer_streaming/exp"


def test_the_old_spelling_of_per_token_kd_in_results_commands_still_parses():
    from icefall_kd.recipes.train_distill import build_distill_parser, with_current_flags

    argv = with_current_flags(["--exp-dir", "e", "--teacher-epoch", "1", "--kd-nodes", "token"])
    config = DistillConfig.from_args(build_distill_parser("", "stage2").parse_args(argv))
    assert config.output_kd == "token" and config.kd_nodes == "pruned"
    assert with_current_flags(["--kd-nodes", "full"]) == ["--kd-nodes", "full"]  # control
