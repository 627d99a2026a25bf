"""The distillation objective on tiny models and real batches of the tiny corpus: the
teacher gets no gradient, exported and on-the-fly targets give the same stage-1 loss,
pruned nodes give the full-lattice KD when the prune range covers every symbol, the teacher's
pruning ranges pick the nodes, Hinton mode transforms the student, and the one-stage (MSE + KL) combination adds both terms."""

import os

import pytest
import torch
from lhotse import CutSet

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.distill.objective import DistillationObjective, DistillConfig
from icefall_kd.distill.smoothing import SmoothingConfig
from icefall_kd.distill.teacher import FrozenTeacher, export_teacher_targets
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes.common import load_bpe
from icefall_kd.training.transducer_objective import ChunkChoice, TransducerObjective


@pytest.fixture(scope="module")
def setup(prepared_tiny):
    cwd = os.getcwd()
    os.chdir(prepared_tiny)  # manifests name their feature files relative to the recipe
    yield _setup(prepared_tiny)
    os.chdir(cwd)


def _setup(prepared_tiny):
    sp = load_bpe(prepared_tiny / "data" / "lang_bpe_200")
    torch.manual_seed(0)
    teacher = build_transducer("tiny", sp.get_piece_size(), causal=False)
    # eval(): no dropout, so two passes over a batch can be compared.
    student = build_transducer("tiny", sp.get_piece_size(), causal=True).eval()
    data = AsrDataModule(DataConfig(manifest_dir=prepared_tiny / "data" / "fbank",
                                    max_duration=30, num_workers=0))
    cuts = data.cuts("dev-clean").subset(first=6)
    batch = next(iter(data.eval_dataloader(cuts)))
    return sp, teacher, student, data, cuts, batch


def _objective(sp, teacher, prune_range=5, **kw):
    transducer = TransducerObjective(sp, ChunkChoice((4,), (8,), 4, 8), prune_range=prune_range,
                                     warm_step=0)
    return DistillationObjective(transducer, FrozenTeacher(teacher), DistillConfig(**kw))


def test_teacher_gets_no_gradient_and_student_does(setup):
    sp, teacher, student, *_, batch = setup
    objective = _objective(sp, teacher, hidden_kd_scale=1.0, output_kd_scale=1.0)
    info = objective(student, batch, 10, True)
    student.zero_grad()
    info.loss.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert not any(p.requires_grad for p in teacher.parameters())
    assert student.joiner.output_linear.weight.grad.abs().sum() > 0
    assert {"hidden_mse", "output_kd", "kd_alpha", "pruned_loss"} <= set(info.values)
    # One-stage = transducer + MSE + KL: the sum of the parts.
    parts = [_objective(sp, teacher, hidden_kd_scale=1.0)(student, batch, 10, False),
             _objective(sp, teacher, output_kd_scale=1.0)(student, batch, 10, False)]
    both = objective(student, batch, 10, False)
    assert both.values["hidden_mse"] == pytest.approx(parts[0].values["hidden_mse"], rel=1e-5)
    assert both.values["output_kd"] == pytest.approx(parts[1].values["output_kd"], rel=1e-5)


def test_output_kd_warms_up_linearly(setup):
    sp, teacher, *_ = setup
    objective = _objective(sp, teacher, output_kd_scale=0.6, output_kd_warm_step=100)
    assert objective.output_kd_weight(0, True) == 0
    assert objective.output_kd_weight(50, True) == pytest.approx(0.3)
    assert objective.output_kd_weight(500, True) == pytest.approx(0.6)
    assert objective.output_kd_weight(0, False) == pytest.approx(0.6)
    # A stage that continues another training from update 4000 warms up from there.
    objective.stage_start_batch = 4000
    assert objective.output_kd_weight(4050, True) == pytest.approx(0.3)
    assert objective.output_kd_weight(4100, True) == pytest.approx(0.6)


def test_exported_targets_give_the_same_stage1_loss(setup, tmp_path):
    sp, teacher, student, data, cuts, _ = setup
    exported = CutSet.from_cuts(export_teacher_targets(
        FrozenTeacher(teacher), data.eval_dataloader(cuts), [-1], tmp_path / "arrays", "float32"))
    batch = next(iter(data.eval_dataloader(exported)))
    cfg = dict(hidden_kd_scale=1.0, hidden_kd_layers="-1:-1,0:-1")
    online = _objective(sp, teacher, **cfg)(student, batch, 10, False)
    stored = _objective(sp, teacher, teacher_targets="exported", **cfg)(student, batch, 10, False)
    assert stored.values["hidden_mse"] == pytest.approx(online.values["hidden_mse"], rel=1e-5)
    assert online.values["hidden_mse"] > 0
    # Layers that were not exported: a clear error naming the cut.
    missing = _objective(sp, teacher, teacher_targets="exported", hidden_kd_scale=1.0,
                         hidden_kd_layers="-1:0")
    with pytest.raises(KeyError, match="has no teacher_hidden_0"):
        missing(student, batch, 10, False)


def test_pruned_nodes_equal_full_lattice_when_the_range_covers_every_symbol(setup):
    sp, teacher, student, *_, batch = setup
    max_tokens = max(len(t) for t in sp.encode(list(batch["supervisions"]["text"])))
    for smoothing in (SmoothingConfig(), SmoothingConfig(mode="fixed", temperature=2.0)):
        for classes, weights in (("vocab", "uniform"), ("collapsed3", "uniform"),
                                 ("nonblank", "emission")):
            pruned = _objective(sp, teacher, prune_range=max_tokens + 1, output_kd_scale=1.0,
                                output_kd="lattice", kd_classes=classes, kd_node_weights=weights, smoothing=smoothing)
            full = _objective(sp, teacher, prune_range=max_tokens + 1, output_kd_scale=1.0,
                              output_kd="lattice", kd_classes=classes, kd_node_weights=weights, kd_nodes="full",
                              smoothing=smoothing)
            a = pruned(student, batch, 10, False).values["output_kd"]
            b = full(student, batch, 10, False).values["output_kd"]
            assert a == pytest.approx(b, rel=1e-5), (classes, smoothing.mode)


def test_teacher_ranges_pick_the_nodes_and_hinton_mode_transforms_the_student(setup):
    import copy

    sp, teacher, student, *_, batch = setup
    max_tokens = max(len(t) for t in sp.encode(list(batch["supervisions"]["text"])))

    def output_kd(model, objective_kw, prune_range=3, transducer=None):
        objective = _objective(sp, teacher, prune_range=prune_range, output_kd_scale=1.0,
                               output_kd="lattice", **objective_kw)
        if transducer is not None:
            objective.transducer = transducer
        return objective(model, batch, 10, False).values["output_kd"]

    # Teacher ranges: the student read at the teacher's nodes. With a range that covers every
    # symbol those are all nodes (the full lattice); with a narrow one, other nodes than the
    # student's own.
    wide = dict(prune_range=max_tokens + 1)
    full = output_kd(student, dict(kd_nodes="full"), **wide)
    assert output_kd(student, dict(kd_ranges_from="teacher"), **wide) == pytest.approx(full, rel=1e-5)
    narrow_teacher = output_kd(student, dict(kd_ranges_from="teacher"))
    narrow_student = output_kd(student, dict(kd_ranges_from="student"))
    assert abs(narrow_teacher - narrow_student) > 1e-3 * narrow_student
    # Hinton mode transforms the student with the teacher's exponent: a copy of the teacher
    # (full context, so the same logits) then has nothing to learn, while without Hinton
    # mode it is pulled towards the softened teacher.
    same = copy.deepcopy(teacher).eval()
    full_context = TransducerObjective(sp, ChunkChoice(), prune_range=3, warm_step=0)
    softened = dict(kd_ranges_from="teacher", smoothing=SmoothingConfig(mode="fixed", temperature=2.0))
    assert output_kd(same, dict(kd_hinton=True, **softened), transducer=full_context) == \
        pytest.approx(0.0, abs=1e-4)
    assert output_kd(same, dict(kd_hinton=False, **softened), transducer=full_context) > 0.1


def test_bad_distillation_settings_are_refused():
    with pytest.raises(ValueError, match="nothing to distil"):
        DistillConfig()
    with pytest.raises(ValueError, match="kd_nodes|kd-nodes"):
        DistillConfig(output_kd_scale=1.0, kd_nodes="everything")
    with pytest.raises(ValueError, match="--kd-nodes 'token'"):  # per-token KD is --output-kd
        DistillConfig(output_kd_scale=1.0, output_kd="lattice", kd_nodes="token")
    with pytest.raises(ValueError, match="--kd-teacher-shift apply to --output-kd lattice only"):
        DistillConfig(output_kd_scale=1.0, output_kd="token", kd_teacher_shift=2)
    DistillConfig(output_kd_scale=1.0, output_kd="lattice", kd_teacher_shift=2)  # control
    with pytest.raises(ValueError, match="bad layer pair"):
        from icefall_kd.distill.objective import parse_layer_pairs
        parse_layer_pairs("3-3")


def test_teacher_shift_compares_frame_t_with_the_teachers_frame_t_minus_shift(setup):
    sp, teacher, student, *_, batch = setup
    shifted = _objective(sp, teacher, output_kd_scale=1.0, output_kd="lattice", kd_teacher_shift=2)
    a = shifted(student, batch, 10, False).values["output_kd"]
    plain = _objective(sp, teacher, output_kd_scale=1.0, output_kd="lattice")
    encode = plain.teacher.encode

    def delayed(features, lens):  # the teacher's output moved 2 frames later by hand
        out, out_lens, layers = encode(features, lens)
        out = torch.cat([out[:, :1], out[:, :1], out[:, :-2]], dim=1)
        return out, out_lens, layers

    plain.teacher.encode = delayed
    b = plain(student, batch, 10, False).values["output_kd"]
    assert a == pytest.approx(b, rel=1e-6)
    unshifted = _objective(sp, teacher, output_kd_scale=1.0, output_kd="lattice")(student, batch, 10, False)
    assert abs(a - unshifted.values["output_kd"]) > 1e-5 * abs(a)  # the shift did something


def test_token_kd_is_zero_for_the_teacher_itself_and_trains_the_student(setup):
    import copy

    sp, teacher, student, *_, batch = setup
    cfg = DistillConfig(output_kd_scale=1.0, output_kd="token", kd_hinton=True,
                        smoothing=SmoothingConfig(mode="fixed", temperature=1.0))
    # A copy of the teacher as the student, run with full context: same alignment and the
    # same tokens, so nothing to learn.
    full_context = TransducerObjective(sp, ChunkChoice(), warm_step=0)
    same = copy.deepcopy(teacher).eval()
    info = DistillationObjective(full_context, FrozenTeacher(teacher), cfg)(same, batch, 10, False)
    assert info.values["output_kd"] == pytest.approx(0.0, abs=1e-4)
    info = _objective(sp, teacher, output_kd_scale=1.0, output_kd="token", kd_hinton=True,
                      smoothing=cfg.smoothing)(student, batch, 10, True)
    assert info.values["output_kd"] > 0
    student.zero_grad()
    info.loss.backward()
    assert student.joiner.output_linear.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
