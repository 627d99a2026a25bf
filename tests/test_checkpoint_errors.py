"""Damaged, half-written and unfit checkpoints give a message naming the file and what to do
(issue: nothing silently wrong), never a traceback from torch's zip reader."""

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from icefall_kd.recipes import decode
from icefall_kd.training.checkpoint import (
    CheckpointError,
    load_checkpoint,
    model_state_for_decoding,
    newest_intact_checkpoint,
    remove_partial_writes,
    save_checkpoint,
)
from icefall_kd.training.trainer import Trainer


def _write(path: Path, batch: int) -> Path:
    weights = {"w": torch.full((3,), float(batch))}
    save_checkpoint(path, {"model": weights, "model_avg": weights, "batch_idx_train": batch,
                           "epoch": 1})
    return path


def test_a_truncated_or_empty_checkpoint_is_named_in_the_error(tmp_path):
    good = _write(tmp_path / "epoch-1.pt", 10)
    assert load_checkpoint(good)["batch_idx_train"] == 10  # control: intact loads
    truncated = tmp_path / "epoch-2.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "epoch-3.pt"
    empty.write_bytes(b"")
    for path in (truncated, empty):
        with pytest.raises(CheckpointError, match="corrupt or truncated") as error:
            load_checkpoint(path)
        assert str(path) in str(error.value)


def test_resume_falls_back_to_the_newest_intact_checkpoint(tmp_path, caplog):
    old = _write(tmp_path / "checkpoint-20.pt", 20)
    new = tmp_path / "checkpoint-40.pt"
    new.write_bytes(old.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        path, state = newest_intact_checkpoint([new, old])
    assert (path, state["batch_idx_train"]) == (old, 20)
    assert str(new) in caplog.text and "Falling back" in caplog.text
    assert newest_intact_checkpoint([old, new])[0] == old  # control: the newest if intact
    assert newest_intact_checkpoint([new]) is None


def test_files_of_killed_checkpoint_writes_are_removed(tmp_path):
    keep = [_write(tmp_path / "checkpoint-20.pt", 20), tmp_path / "notes.tmp1.pt"]
    keep[1].write_bytes(b"x")
    partial = [tmp_path / "checkpoint-40.tmp1234.pt", tmp_path / "epoch-2.tmp99.pt"]
    for path in partial:
        path.write_bytes(b"half")
    assert sorted(remove_partial_writes(tmp_path)) == sorted(partial)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in partial)


def test_resuming_with_other_model_settings_names_each_difference(tmp_path):
    saved = {"encoder": {"d_model": 96, "num_layers": 4}, "vocab_size": 100}
    owner = SimpleNamespace(model_config={"encoder": {"d_model": 144, "num_layers": 4},
                                          "vocab_size": 100}, vocabulary=None,
                            config=SimpleNamespace(optimizer="adamw"))
    path = tmp_path / "checkpoint-20.pt"
    with pytest.raises(SystemExit) as error:
        Trainer._check_model_config(owner, path, {"model_config": saved})
    message = str(error.value.code)
    assert str(path) in message and "encoder.d_model: 96 in the checkpoint, 144 now" in message
    assert "num_layers" not in message
    same = SimpleNamespace(model_config=saved, vocabulary=None,  # control: the same settings resume
                           config=SimpleNamespace(optimizer="adamw"))
    assert Trainer._check_model_config(same, path, {"model_config": saved}) == {"model_config": saved}


def test_avg_larger_than_the_epochs_says_so(tmp_path):
    for epoch in (1, 2):
        _write(tmp_path / f"epoch-{epoch}.pt", 10 * epoch)
    with pytest.raises(CheckpointError, match="--avg 3 is larger than the 2 epoch"):
        model_state_for_decoding(tmp_path, 2, 3, use_averaged_model=False)
    mean = model_state_for_decoding(tmp_path, 2, 2, use_averaged_model=False)  # control
    assert torch.allclose(mean["w"], torch.full((3,), 15.0))


def test_decoding_a_missing_epoch_prints_the_message_only(tmp_path):
    argv = ["--exp-dir", str(tmp_path / "exp"), "--epoch", "7", "--manifest-dir",
            str(tmp_path), "--test-sets", "dev-clean"]
    with pytest.raises(SystemExit) as error:
        decode.main(argv=argv)
    assert str(error.value.code).startswith("error: ") and "epoch-7.pt" in str(error.value.code)
