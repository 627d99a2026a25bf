"""Bad options and unfit models get a one-line message that names the option and what to do,
before any work is done (issue: nothing silently wrong)."""

import argparse
import logging
import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import sentencepiece as spm

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes import streaming_decode, train_transducer
from icefall_kd.training.checkpoint import save_checkpoint

RECIPE = Path(__file__).resolve().parent.parent / "egs" / "librispeech" / "ASR"


def test_max_duration_must_be_positive(capsys):
    parser = train_transducer.build_parser("", streaming=True)
    with pytest.raises(SystemExit) as error:
        parser.parse_args(["--exp-dir", "e", "--max-duration", "0"])
    assert error.value.code == 2
    assert "--max-duration: must be above 0, got '0'" in capsys.readouterr().err
    assert parser.parse_args(["--exp-dir", "e", "--max-duration", "0.5"]).max_duration == 0.5


def test_cuts_longer_than_the_batch_budget_are_counted_with_the_longest(prepared_tiny, caplog):
    data = AsrDataModule(DataConfig(manifest_dir=prepared_tiny / "data" / "fbank"))
    sp = spm.SentencePieceProcessor(model_file=str(prepared_tiny / "data" / "lang_bpe_200" / "bpe.model"))
    cuts = data.cuts("train-clean-100")
    longest = max(cuts, key=lambda c: c.duration)

    def run(max_duration):
        args = argparse.Namespace(train_parts="train-clean-100", min_seconds=1.0,
                                  max_seconds=20.0, max_duration=max_duration)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            train_transducer.training_cuts(args, data, sp, SimpleNamespace(is_main=True))
        return caplog.text

    budget = longest.duration - 0.5
    over = sum(1 for c in cuts if budget < c.duration <= 20.0)
    text = run(budget)
    assert f"{over} training cuts are longer than --max-duration" in text
    assert longest.id in text and f"{longest.duration:.1f} s" in text
    assert "longer than --max-duration" not in run(longest.duration + 1)  # control


def test_streaming_decode_refuses_a_full_context_model_in_one_line(tmp_path):
    model = build_transducer("tiny", 50, causal=False)
    state = model.state_dict()
    save_checkpoint(tmp_path / "exp" / "epoch-1.pt", {
        "model": state, "model_avg": state, "model_config": model.config.to_dict(),
        "batch_idx_train": 1, "epoch": 1})
    lang = tmp_path / "lang"  # the model's 50 tokens: the vocabulary check passes
    lang.mkdir()
    (lang / "tokens.txt").write_text("".join(f"t{i} {i}\n" for i in range(50)))
    argv = ["--exp-dir", str(tmp_path / "exp"), "--epoch", "1", "--manifest-dir", str(tmp_path),
            "--lang-dir", str(lang)]
    with pytest.raises(SystemExit) as error:
        streaming_decode.main(argv=argv)
    assert "a full-context model cannot decode chunk by chunk; use decode.py" in str(error.value.code)


def test_prepare_sh_checks_its_options_before_any_stage(tmp_path):
    recipe = tmp_path / "ASR"
    recipe.mkdir()
    shutil.copy(RECIPE / "prepare.sh", recipe)
    shutil.copytree(RECIPE / "local", recipe / "local")
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1")
    for option, value, message in [("--perturb-speed", "maybe", "--perturb-speed must be true or false"),
                                   ("--profile", "huge", "--profile must be tiny or default"),
                                   ("--nj", "two", "'two' is not a whole number")]:
        result = subprocess.run(["bash", "prepare.sh", option, value], cwd=recipe, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1 and message in result.stderr, result.stderr
        assert not (recipe / "data").exists() and not (recipe / "download").exists()


def test_a_recipe_script_outside_the_environment_says_what_to_run(tmp_path):
    bare = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    probe = subprocess.run([bare, "-c", "import icefall_kd"], capture_output=True, cwd=tmp_path,
                           env={"PATH": "/usr/bin:/bin"})
    if probe.returncode == 0:
        pytest.skip(f"{bare} can import icefall_kd: no interpreter outside the environment here")
    result = subprocess.run([bare, str(RECIPE / "transducer_teacher" / "decode.py"), "--help"],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "No module named" in result.stderr and "source .venv/bin/activate" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_state_training_needs_a_folder_and_one_checkpoint():
    """--init-state training with nothing to continue, or over an average of checkpoints, is
    refused by name before any data is read; --init-state weights is accepted as before."""
    from icefall_kd.recipes.train_transducer import check_init_state, init_from_checkpoint

    parser = train_transducer.build_parser("", streaming=True)
    for init_from in ([], ["--init-from", "scratch"]):
        args = parser.parse_args(["--exp-dir", "e", "--init-state", "training", *init_from])
        with pytest.raises(SystemExit, match="--init-state training continues an experiment "
                           "folder's training; --init-from .* names none"):
            check_init_state(args)
    check_init_state(parser.parse_args(["--exp-dir", "e", "--init-from", "scratch"]))
    args = parser.parse_args(["--exp-dir", "e", "--init-from", "base", "--init-epoch", "8",
                              "--init-avg", "2", "--init-state", "training"])
    with pytest.raises(SystemExit, match="--init-avg 2 averages several. Pass --init-avg 1"):
        init_from_checkpoint(args, causal=True)
