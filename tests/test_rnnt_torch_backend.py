"""The plain-PyTorch pruned RNN-T backend (icefall_kd/loss/rnnt_torch.py) against fast_rnnt's
compiled recursion, on random shapes with unequal lengths, delay penalties and prune ranges.

Tolerances (float32), and the largest differences measured over these cases
(``pytest tests/test_rnnt_torch_backend.py -s`` prints them):

- losses (simple, pruned, full): relative 1e-6 (measured: 0, bit-identical);
- occupation gradients px_grad, py_grad (probabilities in [0, 1]): absolute 1e-6
  (measured: 1.8e-7);
- gradients of the losses w.r.t. am, lm, the pruned and the full logits: 2e-6 of the
  largest gradient (measured: 3.6e-7 of it);
- prune ranges: identical from the same occupation gradients, and identical end to end.

For scale: both backends' float32 occupations differ from a float64 computation by up to
1.8e-5 on these cases (the float64 results of the two agree to 3e-16).
"""

import numpy as np
import pytest
import torch

from icefall_kd.loss import rnnt_backend as backend_module
from icefall_kd.loss import rnnt_torch

try:
    import fast_rnnt
except ImportError:  # e.g. a CUDA install without it: only the CPU-vs-GPU test runs
    fast_rnnt = None
needs_fast_rnnt = pytest.mark.skipif(fast_rnnt is None, reason="fast_rnnt is not installed")
# The torch backend runs on each device here, fast_rnnt (the reference) on the CPU.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

MEASURED = {}


def _note(name, value):
    MEASURED[name] = max(MEASURED.get(name, 0.0), float(value))


def _relative(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def _case(seed):
    """A random batch: B utterances padded to (T, S), lengths T_b >= S_b >= 1 unequal,
    one utterance at the full lengths."""
    g = torch.Generator().manual_seed(seed)
    B = int(torch.randint(1, 5, (1,), generator=g))
    T = int(torch.randint(4, 70, (1,), generator=g))
    S = int(torch.randint(1, min(T, 20) + 1, (1,), generator=g))
    C = int(torch.randint(4, 40, (1,), generator=g))
    s_lens = torch.randint(1, S + 1, (B,), generator=g)
    t_lens = torch.maximum(torch.randint(1, T + 1, (B,), generator=g), s_lens)
    s_lens[0], t_lens[0] = S, T
    boundary = torch.zeros(B, 4, dtype=torch.int64)
    boundary[:, 2], boundary[:, 3] = s_lens, t_lens
    return dict(
        am=torch.randn(B, T, C, generator=g) * 2, lm=torch.randn(B, S + 1, C, generator=g) * 2,
        symbols=torch.randint(1, C, (B, S), generator=g), boundary=boundary,
        lm_scale=float(torch.rand(1, generator=g)) * 0.5,
        am_scale=[0.0, 0.1][seed % 2], delay_penalty=[0.0, 0.0, 0.05, 0.3][seed % 4],
        s_range=int(torch.randint(2, 7, (1,), generator=g)), C=C)


def _simple(module, case, device="cpu"):
    """Simple loss per utterance, occupation gradients, ranges, gradients w.r.t. am, lm
    (computed on ``device``, returned on the CPU)."""
    am = case["am"].detach().clone().to(device).requires_grad_()
    lm = case["lm"].detach().clone().to(device).requires_grad_()
    boundary = case["boundary"].to(device)
    loss, (px_grad, py_grad) = module.rnnt_loss_smoothed(
        lm=lm, am=am, symbols=case["symbols"].to(device), termination_symbol=0,
        lm_only_scale=case["lm_scale"], am_only_scale=case["am_scale"],
        boundary=boundary, delay_penalty=case["delay_penalty"], reduction="none",
        return_grad=True)
    # fast_rnnt scales its returned gradients in place in the backward: copy them first.
    px_grad, py_grad = px_grad.clone(), py_grad.clone()
    ranges = module.get_rnnt_prune_ranges(px_grad=px_grad, py_grad=py_grad,
                                          boundary=boundary, s_range=case["s_range"])
    weights = torch.linspace(0.5, 1.5, len(loss), device=device)  # unequal weights per row
    (loss * weights).sum().backward()
    return tuple(x.detach().cpu() for x in (loss, px_grad, py_grad, ranges, am.grad, lm.grad))


CASES = range(24)


@needs_fast_rnnt
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", CASES)
def test_simple_loss_occupations_ranges_and_gradients_match_fast_rnnt(seed, device):
    case = _case(seed)
    ref = _simple(fast_rnnt, case)
    got = _simple(rnnt_torch, case, device)
    _note("simple loss, relative", _relative(got[0], ref[0]))
    _note("px_grad, py_grad, absolute", max((got[1] - ref[1]).abs().max(),
                                            (got[2] - ref[2]).abs().max()))
    _note("d simple loss / d am, lm, relative to max", max(_relative(got[4], ref[4]),
                                                          _relative(got[5], ref[5])))
    torch.testing.assert_close(got[0], ref[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(got[1], ref[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[2], ref[2], rtol=0, atol=1e-6)
    assert _relative(got[4], ref[4]) < 2e-6 and _relative(got[5], ref[5]) < 2e-6
    assert torch.isfinite(got[4]).all() and torch.isfinite(got[5]).all()
    # Ranges are a discrete choice (the best window per frame): from the same occupations
    # both backends must pick the same windows. From each backend's own occupations (equal
    # to 1e-6 above) a near-tie between two windows may go either way, so that is not exact.
    same_input = rnnt_torch.get_rnnt_prune_ranges(
        px_grad=ref[1].to(device), py_grad=ref[2].to(device),
        boundary=case["boundary"].to(device), s_range=case["s_range"]).cpu()
    assert torch.equal(same_input, ref[3]), "prune ranges differ on the same occupations"
    # Each utterance's occupations are probabilities: one symbol arc per symbol, one blank
    # arc per frame (independent of fast_rnnt).
    s_lens, t_lens = case["boundary"][:, 2], case["boundary"][:, 3]
    torch.testing.assert_close(got[1].sum((1, 2)), s_lens.float(), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got[2].sum((1, 2)), t_lens.float(), rtol=1e-5, atol=1e-4)


@needs_fast_rnnt
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", CASES)
def test_pruned_and_full_losses_and_their_gradients_match_fast_rnnt(seed, device):
    case = _case(seed)
    g = torch.Generator().manual_seed(1000 + seed)
    B, T, _ = case["am"].shape
    S = case["symbols"].shape[1]
    ranges = _simple(fast_rnnt, case)[3]
    R = ranges.shape[2]
    pruned_logits = torch.randn(B, T, R, case["C"], generator=g) * 3
    full_logits = torch.randn(B, T, S + 1, case["C"], generator=g) * 3
    on = {"cpu": {k: case[k] for k in ("symbols", "boundary")}}
    on[device] = {k: v.to(device) for k, v in on["cpu"].items()}
    ranges_on = {"cpu": ranges, device: ranges.to(device)}
    for name, call, logits in [
        ("pruned", lambda m, x, d: m.rnnt_loss_pruned(
            logits=x, symbols=on[d]["symbols"], ranges=ranges_on[d], termination_symbol=0,
            boundary=on[d]["boundary"], delay_penalty=case["delay_penalty"], reduction="none"),
         pruned_logits),
        ("full", lambda m, x, d: m.rnnt_loss(
            x, on[d]["symbols"], termination_symbol=0, boundary=on[d]["boundary"],
            delay_penalty=case["delay_penalty"], reduction="sum"), full_logits),
    ]:
        out = {}
        for module, d in ((fast_rnnt, "cpu"), (rnnt_torch, device)):
            x = logits.detach().clone().to(d).requires_grad_()
            loss = call(module, x, d)
            loss.sum().backward()
            out[module] = loss.detach().cpu(), x.grad.cpu()
        (got, got_grad), (ref, ref_grad) = out[rnnt_torch], out[fast_rnnt]
        assert torch.isfinite(ref).all(), "the case must have a path through the ranges"
        _note(f"{name} loss, relative", _relative(got, ref))
        _note(f"d {name} loss / d logits, relative to max", _relative(got_grad, ref_grad))
        torch.testing.assert_close(got, ref, rtol=1e-6, atol=0)
        assert _relative(got_grad, ref_grad) < 2e-6
        assert torch.isfinite(got_grad).all()


@needs_fast_rnnt
def test_prune_ranges_and_pruning_equal_fast_rnnt_for_the_same_occupations():
    torch.manual_seed(5)
    for _ in range(20):
        B, T, S = 3, int(torch.randint(5, 40, (1,))), int(torch.randint(2, 12, (1,)))
        boundary = torch.tensor([[0, 0, S, T], [0, 0, max(1, S - 2), T - 3],
                                 [0, 0, 1, max(1, T // 2)]])
        px_grad, py_grad = torch.rand(B, S, T + 1), torch.rand(B, S + 1, T)
        for s_range in (2, 3, 5, S + 3):
            ref = fast_rnnt.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
            got = rnnt_torch.get_rnnt_prune_ranges(px_grad, py_grad, boundary, s_range)
            assert torch.equal(got, ref)
            am, lm = torch.randn(B, T, 7), torch.randn(B, S + 1, 7)
            for a, b in zip(rnnt_torch.do_rnnt_pruning(am, lm, got),
                            fast_rnnt.do_rnnt_pruning(am, lm, ref)):
                assert torch.equal(a, b)


def test_a_perturbed_input_changes_only_its_own_utterance_and_not_padding():
    """Negative control: the comparisons above could fail. Changing the blank score of one
    am frame inside utterance 1 changes its loss (by far more than the tolerance) and no other; changing a
    frame past its length changes nothing."""
    case = _case(3)
    B, T, _ = case["am"].shape
    assert B >= 2 and case["boundary"][1, 3] < T, "case 3 must have a shorter second utterance"
    base = _simple(rnnt_torch, case)[0]
    inside = dict(case, am=case["am"].clone())
    inside["am"][1, 0, 0] += 1.0  # one class: a shift of every class would cancel out
    changed = _simple(rnnt_torch, inside)[0]
    assert abs(float(changed[1] - base[1])) > 1e-3 * abs(float(base[1]))
    assert torch.equal(torch.cat([changed[:1], changed[2:]]), torch.cat([base[:1], base[2:]]))
    with pytest.raises(AssertionError):  # the tolerance used against fast_rnnt above
        torch.testing.assert_close(changed, base, rtol=1e-6, atol=0)
    padding = dict(case, am=case["am"].clone())
    padding["am"][1, int(case["boundary"][1, 3]):, 0] += 1.0
    assert torch.equal(_simple(rnnt_torch, padding)[0][1], base[1])


def test_brute_force_enumeration_of_every_alignment():
    """Independent of fast_rnnt: the total score of a tiny lattice is the log-sum over all
    C(S + T - 1, S) alignments (a blank last), each the sum of its arcs."""
    from itertools import combinations

    torch.manual_seed(2)
    S, T = 3, 4
    px = torch.randn(1, S, T + 1, dtype=torch.float64)
    px[:, :, T] = float("-inf")
    py = torch.randn(1, S + 1, T, dtype=torch.float64)
    paths = []
    steps = S + T - 1  # the last step is always the final blank out of (S, T - 1)
    for symbol_steps in combinations(range(steps), S):
        s = t = 0
        score = 0.0
        for step in range(steps):
            if step in symbol_steps:
                score += float(px[0, s, t]); s += 1
            else:
                score += float(py[0, s, t]); t += 1
        paths.append(score + float(py[0, S, T - 1]))
    expected = np.logaddexp.reduce(paths)
    got, (px_grad, _) = rnnt_torch.mutual_information_recursion(px, py, return_grad=True)
    assert abs(float(got) - expected) < 1e-10
    # Control: the occupation of the first symbol arc is the share of paths through it.
    first = [p for p, c in zip(paths, combinations(range(steps), S)) if 0 in c]
    assert abs(float(px_grad[0, 0, 0]) - np.exp(np.logaddexp.reduce(first) - expected)) < 1e-10


def test_half_precision_inputs_are_computed_in_float32():
    torch.manual_seed(0)
    px, py = torch.randn(2, 5, 9), torch.randn(2, 6, 8)
    px[:, :, -1] = float("-inf")
    half = rnnt_torch.mutual_information_recursion(px.bfloat16(), py.bfloat16())
    full = rnnt_torch.mutual_information_recursion(px.bfloat16().float(), py.bfloat16().float())
    assert half.dtype == torch.bfloat16
    assert torch.equal(half, full.bfloat16())


@pytest.fixture
def fresh_choice(monkeypatch):
    monkeypatch.setattr(backend_module, "_chosen", {})
    return monkeypatch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("seed", CASES if torch.cuda.is_available() else [0])
def test_cuda_results_equal_the_cpu_results_of_the_torch_backend(seed):
    """On a GPU (benchmarks/gpu_check.sh), also without fast_rnnt: the same tolerances."""
    case = _case(seed)
    cpu, cuda = _simple(rnnt_torch, case), _simple(rnnt_torch, case, "cuda")
    torch.testing.assert_close(cuda[0], cpu[0], rtol=1e-6, atol=0)
    torch.testing.assert_close(cuda[1], cpu[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(cuda[2], cpu[2], rtol=0, atol=1e-6)
    assert torch.equal(cuda[3], cpu[3])
    assert _relative(cuda[4], cpu[4]) < 2e-6 and _relative(cuda[5], cpu[5]) < 2e-6


@needs_fast_rnnt
def test_backend_is_chosen_per_device_and_a_forced_one_must_fit_it(fresh_choice, caplog):
    fresh_choice.delenv("ICEFALL_KD_RNNT_BACKEND", raising=False)
    caplog.set_level("INFO")
    cpu = backend_module.backend_for(torch.device("cpu"))
    assert cpu.__name__ in ("k2", "fast_rnnt")  # unchanged CPU default
    if not fast_rnnt.with_cuda():
        assert backend_module.backend_for(torch.device("cuda", 0)) is rnnt_torch
    backend_module.backend_for(torch.device("cpu"))
    assert sum("pruned RNN-T loss on cpu" in r.getMessage() for r in caplog.records) == 1

    fresh_choice.setattr(backend_module, "_chosen", {})
    fresh_choice.setenv("ICEFALL_KD_RNNT_BACKEND", "torch")
    assert backend_module.backend_for(torch.device("cpu")) is rnnt_torch
    x = torch.randn(1, 3, 6)
    assert backend_module.rnnt_backend().do_rnnt_pruning(
        am=x, lm=torch.randn(1, 3, 6), ranges=torch.zeros(1, 3, 2, dtype=torch.int64))[0].shape \
        == (1, 3, 2, 6)

    fresh_choice.setattr(backend_module, "_chosen", {})
    fresh_choice.setenv("ICEFALL_KD_RNNT_BACKEND", "fast_rnnt")
    if not fast_rnnt.with_cuda():
        with pytest.raises(RuntimeError, match="ICEFALL_KD_RNNT_BACKEND=torch"):
            backend_module.backend_for(torch.device("cuda", 0))
    fresh_choice.setenv("ICEFALL_KD_RNNT_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="choose one of"):
        backend_module.backend_for(torch.device("cpu"))


def test_report_measured_differences():
    """Prints the largest differences measured by the tests above (run with -s)."""
    for name, value in sorted(MEASURED.items()):
        print(f"max {name}: {value:.2e}")
