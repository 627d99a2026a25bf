"""The Zipformer through the project's training and distillation code, unchanged: the
shared trainer trains a streaming zipformer-tiny on a few cuts of the tiny corpus and its
checkpoint reloads as a Zipformer; distillation reads the Zipformer's hidden layers (zero
for the teacher distilled into itself, positive for another student)."""

import os
import time

import pytest
import torch

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.distill.objective import DistillationObjective, DistillConfig
from icefall_kd.distill.teacher import FrozenTeacher
from icefall_kd.model.transducer import build_transducer
from icefall_kd.model.zipformer import ZipformerEncoder
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training import checkpoint as ckpt
from icefall_kd.training.trainer import Trainer, TrainConfig
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective


@pytest.fixture()
def in_recipe(prepared_tiny):
    cwd = os.getcwd()
    os.chdir(prepared_tiny)  # manifests name their feature files relative to the recipe
    yield prepared_tiny
    os.chdir(cwd)


def test_trainer_trains_a_streaming_zipformer_and_its_checkpoint_reloads(in_recipe, tmp_path):
    recipe = in_recipe
    sp = load_bpe(recipe / "data" / "lang_bpe_200")
    torch.manual_seed(0)
    model = build_transducer("zipformer-tiny", sp.get_piece_size(), causal=True)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    # Chunk draws as the streaming recipes make them (25 Hz frames), full context included.
    objective = TransducerObjective(sp, ChunkChoice((4, 8, -1), (8, 16, -1), 4, 8), warm_step=2)
    data = AsrDataModule(DataConfig(manifest_dir=recipe / "data" / "fbank", max_duration=20,
                                    num_buckets=2, num_workers=0, drop_last=False))
    cuts = data.cuts("train-clean-100").subset(first=8)
    config = TrainConfig(exp_dir=tmp_path / "exp", num_epochs=1, save_every_n=1000,
                         log_interval=1000, tensorboard=False, warmup_batches=2)
    start = time.time()
    Trainer(model, objective, config, lambda state: data.train_dataloader(cuts, state), None,
            model_config=model.config.to_dict()).train()
    print(f"one epoch of 8 cuts: {time.time() - start:.1f} s")
    reloaded = ckpt.load_transducer(tmp_path / "exp", 1, 1, use_averaged_model=False)
    assert isinstance(reloaded.encoder, ZipformerEncoder)
    assert reloaded.config == model.config
    trained = model.state_dict()
    for name, value in reloaded.state_dict().items():
        torch.testing.assert_close(value, trained[name])
    # Control: training changed the weights (the reload check would pass on an untrained copy
    # only if nothing had been trained).
    changed = [n for n, v in trained.items() if v.is_floating_point() and not torch.equal(v, initial[n])]
    assert any(n.startswith("encoder.stacks.") for n in changed)
    assert any(n.startswith("encoder.embed.") for n in changed)


def test_distillation_reads_the_zipformer_hidden_layers(in_recipe):
    recipe = in_recipe
    sp = load_bpe(recipe / "data" / "lang_bpe_200")
    data = AsrDataModule(DataConfig(manifest_dir=recipe / "data" / "fbank", max_duration=30,
                                    num_workers=0))
    batch = next(iter(data.eval_dataloader(data.cuts("dev-clean").subset(first=6))))
    torch.manual_seed(0)
    teacher = build_transducer("zipformer-tiny", sp.get_piece_size(), causal=False).eval()
    itself = build_transducer("zipformer-tiny", sp.get_piece_size(), causal=False).eval()
    itself.load_state_dict(teacher.state_dict())
    other = build_transducer("zipformer-tiny", sp.get_piece_size(), causal=True).eval()
    transducer = TransducerObjective(sp, ChunkChoice((-1,), (-1,), -1, -1), warm_step=0)
    objective = DistillationObjective(transducer, FrozenTeacher(teacher), DistillConfig(
        hidden_kd_scale=1.0, hidden_kd_layers="1:1,-1:-1", output_kd_scale=1.0))
    same = objective(itself, batch, 10, False).values
    assert same["hidden_mse"] == pytest.approx(0.0, abs=1e-8)
    assert same["output_kd"] == pytest.approx(0.0, abs=1e-5)
    info = objective(other, batch, 10, True)  # control: another student is penalised
    assert info.values["hidden_mse"] > 1e-3 and info.values["output_kd"] > 1e-3
    info.loss.backward()
    assert other.encoder.stacks[0].layers[0].ff1.in_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
