"""The shared trainer: exact resume mid-epoch, non-finite batches, DDP with two CPU
processes, checkpoint averaging and atomic checkpoint writes."""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training import checkpoint as ckpt
from icefall_kd.training import trainer as trainer_module
from icefall_kd.training.trainer import Trainer, TrainConfig
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective


def _setup(recipe: Path, exp_dir: Path, num_epochs=2):
    sp = load_bpe(recipe / "data" / "lang_bpe_200")
    torch.manual_seed(0)
    model = build_transducer("tiny", sp.get_piece_size(), causal=True)
    objective = TransducerObjective(sp, ChunkChoice((2, 4, -1), (4, 8, -1), 4, 8), warm_step=5)
    data = AsrDataModule(DataConfig(manifest_dir=recipe / "data" / "fbank", max_duration=40,
                                    num_buckets=2, num_workers=0, drop_last=False))
    cuts = data.cuts("train-clean-100")
    config = TrainConfig(exp_dir=exp_dir, num_epochs=num_epochs, save_every_n=4,
                         keep_last_k=2, average_period=2, log_interval=1000, tensorboard=False,
                         warmup_batches=5)
    return model, objective, data, cuts, config


def _trainer(recipe, exp_dir, objective_wrapper=None):
    model, objective, data, cuts, config = _setup(recipe, exp_dir)
    return Trainer(model, objective_wrapper(objective) if objective_wrapper else objective,
                   config, lambda state: data.train_dataloader(cuts, state), None,
                   model_config=model.config.to_dict())


def test_resume_after_a_crash_continues_exactly(prepared_tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(prepared_tiny)
    straight = _trainer(prepared_tiny, tmp_path / "straight")
    straight.train()

    def crash_at_batch_11(objective):
        def wrapped(model, batch, batch_idx_train, is_training):
            if batch_idx_train == 11:
                raise KeyboardInterrupt("simulated kill")
            return objective(model, batch, batch_idx_train, is_training)
        return wrapped

    with pytest.raises(KeyboardInterrupt):
        _trainer(prepared_tiny, tmp_path / "crashed", crash_at_batch_11).train()
    saved = ckpt.batch_checkpoints(tmp_path / "crashed")
    assert saved[0].name == "checkpoint-8.pt"  # 11 batches done: last save at 8
    assert len(saved) == 2  # keep-last-k
    resumed = _trainer(prepared_tiny, tmp_path / "crashed")
    resumed.train()
    assert resumed.batch_idx_train == straight.batch_idx_train > 11
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run diverged"
    assert all(torch.equal(straight.model_avg[k], resumed.model_avg[k]) for k in a)


def test_non_finite_batches_are_skipped_then_training_stops(prepared_tiny, tmp_path,
                                                            monkeypatch, caplog):
    monkeypatch.chdir(prepared_tiny)

    def nan_on_even(objective):
        def wrapped(model, batch, batch_idx_train, is_training):
            info = objective(model, batch, batch_idx_train, is_training)
            if batch_idx_train % 2 == 0:
                info.loss = info.loss * float("nan")
            return info
        return wrapped

    caplog.set_level(logging.WARNING)
    trainer = _trainer(prepared_tiny, tmp_path / "some-nan", nan_on_even)
    trainer.train()  # alternate bad batches never reach the limit
    warnings = [r.getMessage() for r in caplog.records if "non-finite" in r.getMessage()]
    assert warnings and "Cuts: " in warnings[0] and "-" in warnings[0].split("Cuts: ")[1]
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())

    def always_nan(objective):
        def wrapped(model, batch, batch_idx_train, is_training):
            info = objective(model, batch, batch_idx_train, is_training)
            info.loss = info.loss * float("inf")
            return info
        return wrapped

    with pytest.raises(RuntimeError, match="in a row had a non-finite loss"):
        _trainer(prepared_tiny, tmp_path / "all-nan", always_nan).train()


_RECORDING_TRAIN = """
import os, sys
from icefall_kd.recipes import train_transducer
from icefall_kd.training.transducer_objective import TransducerObjective

out = sys.argv.pop(1)
rank = os.environ["RANK"]
run_trainer, objective_call = train_transducer.run_trainer, TransducerObjective.__call__

def recording_run_trainer(args, model, objective, data, train_cuts, dist):
    with open(f"{out}/epoch-cuts-rank{rank}.txt", "w") as f:
        f.writelines(c.id + "\\n" for c in train_cuts)
    run_trainer(args, model, objective, data, train_cuts, dist)

def recording_call(self, model, batch, batch_idx_train, is_training):
    if is_training:
        with open(f"{out}/seen-rank{rank}.txt", "a") as f:
            f.write(" ".join(c.id for c in batch["supervisions"]["cut"]) + "\\n")  # a batch
    return objective_call(self, model, batch, batch_idx_train, is_training)

train_transducer.run_trainer = recording_run_trainer
TransducerObjective.__call__ = recording_call
train_transducer.main(streaming=True, argv=sys.argv[1:])
"""


def test_ddp_two_cpu_processes_see_disjoint_shards_that_make_the_epoch(prepared_tiny, tmp_path):
    """torchrun with 2 processes (gloo): each rank trains on its own cuts, no cut twice, and
    together they cover the epoch. lhotse's sampler gives every rank the same number of
    batches by skipping at most world_size - 1 = 1 batch at the end of an epoch; the tiny
    corpus's epoch has an even number of batches here, so nothing may be missing."""
    script = tmp_path / "recording_train.py"
    script.write_text(_RECORDING_TRAIN)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", "29517", str(script), str(tmp_path), "--exp-dir", str(tmp_path / "ddp"),
         "--num-epochs", "1", "--model-preset", "tiny", "--lang-dir", "data/lang_bpe_200",
         "--max-duration", "40", "--num-buckets", "2", "--num-workers", "0",
         "--tensorboard", "false", "--drop-last", "false"],
        cwd=prepared_tiny, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "epoch 1 done" in result.stderr and "(gloo)" in result.stderr
    state = ckpt.load_checkpoint(tmp_path / "ddp" / "epoch-1.pt")
    epoch = (tmp_path / "epoch-cuts-rank0.txt").read_text().split()
    assert epoch == (tmp_path / "epoch-cuts-rank1.txt").read_text().split()
    batches = [(tmp_path / f"seen-rank{r}.txt").read_text().splitlines() for r in (0, 1)]
    seen = [" ".join(b).split() for b in batches]
    assert all(seen) and len(set(epoch)) == len(epoch) > 0
    assert all(len(set(s)) == len(s) for s in seen), "a rank saw a cut twice"
    assert not set(seen[0]) & set(seen[1]), "the ranks' shards overlap"
    assert set(seen[0]) | set(seen[1]) == set(epoch), (
        f"{len(set(epoch) - set(seen[0]) - set(seen[1]))} cuts of the epoch were not trained on")
    # Both ranks took the same number of steps (DDP needs it), the one rank 0 saved.
    assert state["batch_idx_train"] == len(batches[0]) == len(batches[1])


def test_running_average_equals_the_mean_over_updates():
    torch.manual_seed(0)
    states = [{"w": torch.randn(3, dtype=torch.float64)} for _ in range(12)]
    avg = {"w": states[0]["w"].clone()}
    snapshots = {}
    period = 2
    for batch in range(1, 13):
        if batch % period == 0:
            ckpt.update_averaged_model(avg, states[batch - 1], batch, period)
        if batch in (4, 12):
            snapshots[batch] = {"model_avg": {"w": avg["w"].clone()}, "batch_idx_train": batch}
    between = ckpt.averaged_model_between(snapshots[4], snapshots[12])
    expected = torch.stack([states[b - 1]["w"] for b in (6, 8, 10, 12)]).mean(0)
    assert torch.allclose(between["w"], expected)


def test_interrupted_checkpoint_write_leaves_no_file(tmp_path, monkeypatch):
    real_save = torch.save

    def dying_save(obj, path):
        real_save(obj, path)
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(tmp_path / "epoch-1.pt", {"x": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_recipe_builds_the_same_model_for_the_same_seed(prepared_tiny, tmp_path, monkeypatch):
    """The random initialisation follows --seed: two runs of one training command start
    from the same weights (they used to differ, so no from-scratch run was reproducible)."""
    from icefall_kd.recipes import train_transducer

    monkeypatch.chdir(prepared_tiny)
    built = []
    monkeypatch.setattr(train_transducer, "run_trainer",
                        lambda args, model, *rest: built.append(model.state_dict()))

    def build(seed: int, exp: str):
        train_transducer.main(streaming=True, argv=[
            "--exp-dir", str(tmp_path / exp), "--lang-dir", "data/lang_bpe_200",
            "--model-preset", "tiny", "--seed", str(seed)])
        return built[-1]

    first, again, other = build(3, "a"), build(3, "b"), build(4, "c")
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)


def _record_precision(seen):
    def wrap(objective):
        def wrapped(model, batch, batch_idx_train, is_training):
            info = objective(model, batch, batch_idx_train, is_training)
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"),
                         info.loss.dtype, bool(torch.isfinite(info.loss))))
            if len(seen) == 3:
                raise KeyboardInterrupt("enough batches")
            return info
        return wrapped
    return wrap


@pytest.mark.skipif(not trainer_module.cpu_has_native_bf16(), reason="CPU without native bf16")
def test_bf16_on_a_cpu_with_native_bf16_trains_under_autocast(prepared_tiny, tmp_path,
                                                              monkeypatch):
    monkeypatch.chdir(prepared_tiny)
    seen = {}
    for precision in ("bf16", "fp32"):  # fp32: the control, no autocast
        seen[precision] = []
        model, objective, data, cuts, config = _setup(prepared_tiny, tmp_path / precision)
        config.precision = precision
        trainer = Trainer(model, _record_precision(seen[precision])(objective), config,
                          lambda state: data.train_dataloader(cuts, state), None,
                          model_config=model.config.to_dict())
        assert trainer.precision == precision
        with pytest.raises(KeyboardInterrupt):
            trainer.train()
        assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
    assert [s[:2] for s in seen["bf16"]] == [(True, torch.bfloat16)] * 3
    assert [s[0] for s in seen["fp32"]] == [False] * 3
    # The lattice recursions run in float32 under autocast, and the losses stay finite.
    assert all(s[2] == torch.float32 and s[3] for s in seen["bf16"] + seen["fp32"])


def test_bf16_on_a_cpu_without_native_bf16_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: False)
    model = build_transducer("tiny", 50, causal=True)
    config = TrainConfig(exp_dir=tmp_path, tensorboard=False, precision="bf16")
    with pytest.raises(RuntimeError, match="--precision bf16.*AVX512-BF16 nor AMX"):
        Trainer(model, None, config, None, None, model_config=model.config.to_dict())
    config.precision = "fp32"  # control: the same set-up trains in fp32
    assert Trainer(model, None, config, None, None,
                   model_config=model.config.to_dict()).precision == "fp32"


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_on_a_cpu_is_bf16_only_where_bf16_is_native(tmp_path, monkeypatch,
                                                                   native):
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: native)
    model = build_transducer("tiny", 50, causal=True)
    config = TrainConfig(exp_dir=tmp_path, tensorboard=False)
    assert config.precision == "auto"
    trainer = Trainer(model, None, config, None, None, model_config=model.config.to_dict())
    assert trainer.precision == ("bf16" if native else "fp32")


def test_auto_precision_trains_the_zipformer_in_fp32_even_where_bf16_is_native(tmp_path,
                                                                               monkeypatch):
    """--precision auto on a bf16 CPU: fp32 for a Zipformer (bf16 measured slower for it),
    bf16 for the Conformer (the control); an explicit --precision bf16 is still obeyed."""
    monkeypatch.setattr(trainer_module, "cpu_has_native_bf16", lambda: True)

    def precision(preset: str, wanted: str = "auto") -> str:
        model = build_transducer(preset, 50, causal=True)
        config = TrainConfig(exp_dir=tmp_path, tensorboard=False, precision=wanted)
        return Trainer(model, None, config, None, None,
                       model_config=model.config.to_dict()).precision

    assert precision("zipformer-tiny") == "fp32"
    assert precision("tiny") == "bf16"
    assert precision("zipformer-tiny", "bf16") == "bf16"


def test_optimizer_choice_and_its_default_learning_rate(tmp_path):
    from icefall_kd.training.scaled_adam import ScaledAdam

    model = build_transducer("tiny", 50, causal=True)

    def trainer(**options):
        config = TrainConfig(exp_dir=tmp_path, tensorboard=False, **options)
        return Trainer(model, None, config, None, None, model_config=model.config.to_dict())

    adamw, scaled = trainer(), trainer(optimizer="scaled-adam")
    assert type(adamw.optimizer) is torch.optim.AdamW and isinstance(scaled.optimizer, ScaledAdam)
    assert adamw.scheduler.base_lrs == [0.003] and scaled.scheduler.base_lrs == [0.045]
    assert trainer(optimizer="scaled-adam", base_lr=0.01).scheduler.base_lrs == [0.01]


def test_resuming_with_another_optimizer_is_refused_by_name(tmp_path):
    model = build_transducer("tiny", 50, causal=True)

    def trainer(optimizer):
        config = TrainConfig(exp_dir=tmp_path, tensorboard=False, optimizer=optimizer)
        return Trainer(model, None, config, None, None, model_config=model.config.to_dict())

    state = trainer("scaled-adam")._state(None)
    assert trainer("scaled-adam")._check_model_config(tmp_path / "epoch-1.pt", state) is state
    with pytest.raises(SystemExit, match="epoch-1.pt was trained with --optimizer scaled-adam"
                       ".*Resume with --optimizer scaled-adam"):
        trainer("adamw")._check_model_config(tmp_path / "epoch-1.pt", state)
    del state["optimizer_name"]  # a checkpoint from before the option: AdamW
    assert trainer("adamw")._check_model_config(tmp_path / "epoch-1.pt", state) is state


def test_continuing_a_training_in_another_folder_equals_training_on(prepared_tiny, tmp_path,
                                                                   monkeypatch):
    """--init-state training: one epoch in folder A, then one in folder B that continues A's
    training, ends exactly where A trained on to its second epoch ends (weights, average,
    update count): the resume that every epoch-by-epoch training (train_until_converged)
    does. Both equal one run of two epochs. The control: B started from A's weights with a
    fresh optimizer, schedule and average."""
    import dataclasses
    import shutil

    monkeypatch.chdir(prepared_tiny)

    def trainer(exp: str, num_epochs: int, weights=None, continued_from=None):
        model, objective, data, cuts, config = _setup(prepared_tiny, tmp_path / exp, num_epochs)
        if weights is not None:
            model.load_state_dict(weights)
        return Trainer(model, objective, dataclasses.replace(config, optimizer="scaled-adam"),
                       lambda state: data.train_dataloader(cuts, state), None,
                       model_config=model.config.to_dict(), continued_from=continued_from)

    straight = trainer("straight", 2)
    straight.train()
    trainer("first", 1).train()
    shutil.copytree(tmp_path / "first", tmp_path / "trained-on")
    for batch_checkpoint in ckpt.batch_checkpoints(tmp_path / "trained-on"):
        batch_checkpoint.unlink()  # resume from epoch-1.pt, as the next epoch's run does
    trained_on = trainer("trained-on", 2)
    trained_on.train()
    path = tmp_path / "first" / "epoch-1.pt"
    state = ckpt.load_checkpoint(path)
    continued = trainer("continued", 1, state["model"], (path, state))
    continued.train()
    assert continued.batch_idx_train == trained_on.batch_idx_train > state["batch_idx_train"] > 0
    a, b = trained_on.model.state_dict(), continued.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a), "the continued training diverged"
    assert all(torch.equal(trained_on.model_avg[k], continued.model_avg[k]) for k in a)
    s = straight.model.state_dict()
    assert straight.batch_idx_train == trained_on.batch_idx_train
    assert all(torch.equal(a[k], s[k]) for k in a), "epoch-by-epoch differs from one run"
    saved = ckpt.load_checkpoint(tmp_path / "continued" / "epoch-1.pt")
    assert saved["epoch"] == 1 and saved["epoch_offset"] == 1
    assert saved["stage_start_batch"] == state["batch_idx_train"]

    fresh = trainer("fresh", 1, state["model"])
    fresh.train()
    c = fresh.model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a if a[k].is_floating_point())


def test_continued_optimizer_state_is_matched_by_name():
    """A stage that adds a tensor (a projection) continues the others' moments; the new one
    starts fresh; a tensor of another shape under the same name is refused by name."""
    from icefall_kd.training.continuation import continued_optimizer_state, parameter_names
    from icefall_kd.training.scaled_adam import ScaledAdam

    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    optimizer = ScaledAdam(base.parameters())
    for _ in range(3):
        optimizer.zero_grad()
        base(torch.randn(5, 3)).pow(2).sum().backward()
        optimizer.step()
    state = {"model": base.state_dict(), "optimizer": optimizer.state_dict()}  # no names: old

    student = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    student.add_module("projection", torch.nn.Linear(2, 6))
    new_optimizer = ScaledAdam(student.parameters(), lr=0.01)
    counts = continued_optimizer_state(Path("base/epoch-1.pt"), state, new_optimizer,
                                       parameter_names(student, new_optimizer))
    assert counts == {"continued": 4, "fresh": 2, "dropped": 0}
    old = list(optimizer.state.values())
    new = [new_optimizer.state[p] for p in student.parameters()]
    for before, after in zip(old, new[:4]):
        assert after["step"] == before["step"] == 3
        assert torch.equal(after["exp_avg_sq"], before["exp_avg_sq"])
    assert new[4] == {} and new[5] == {}
    assert new_optimizer.param_groups[0]["lr"] == 0.01  # this run's settings stay

    other = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.Linear(5, 2))
    with pytest.raises(SystemExit, match=r"base/epoch-1.pt's optimizer state for 0.weight has "
                       r"shape \(4, 3\), this model's tensor \(5, 3\)"):
        other_optimizer = ScaledAdam(other.parameters())
        continued_optimizer_state(Path("base/epoch-1.pt"), state, other_optimizer,
                                  parameter_names(other, other_optimizer))


def test_continuing_with_another_optimizer_is_refused_by_name(tmp_path):
    model = build_transducer("tiny", 50, causal=True)
    config = TrainConfig(exp_dir=tmp_path, tensorboard=False, optimizer="scaled-adam")
    state = Trainer(model, None, config, None, None)._state(None)
    config = TrainConfig(exp_dir=tmp_path, tensorboard=False, optimizer="adamw")
    with pytest.raises(SystemExit, match="continues base/epoch-8.pt, trained with --optimizer "
                       "scaled-adam; this command asks for --optimizer adamw"):
        Trainer(model, None, config, None, None)._continue(Path("base/epoch-8.pt"), state)
