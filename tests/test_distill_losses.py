"""Invariants of the distillation losses, checked against direct formulas: the power
transform is a temperature, a = 1 is plain KL, `fixed` is temperature KD (and Hinton's KD),
KL >= 0 and 0 for identical models, masked nodes are inert, the adaptive rules meet their
targets (and are the largest exponent that does), the 3-class collapse by enumeration,
the blank-free variant against renormalised distributions."""

import math

import pytest
import torch

from icefall_kd.distill.losses import (
    collapse_to_three,
    hidden_mse,
    lattice_kd,
    token_kd,
    token_log_probs,
    without_class,
)
from icefall_kd.distill.smoothing import (
    SmoothingConfig,
    choose_alpha,
    entropy,
    pool_alpha,
    power_log_softmax,
)


def _logits(*shape, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def _kl(log_q, log_r):
    return (log_q.exp() * (log_q - log_r)).sum(-1)


def test_power_transform_is_a_temperature():
    z = _logits(4, 7)
    for a in (0.1, 0.5, 1.0, 2.0):
        got = power_log_softmax(z.log_softmax(-1), torch.full((4,), a, dtype=z.dtype))
        assert torch.allclose(got, (a * z).log_softmax(-1), atol=1e-12)


def _all_valid(b, t, u):
    return torch.ones(b, t, u, dtype=torch.bool)


def test_alpha_one_is_plain_kl_and_fixed_is_temperature_kd():
    zs, zt = _logits(2, 3, 4, 9, seed=1), _logits(2, 3, 4, 9, seed=2)
    mask = _all_valid(2, 3, 4)
    loss, _ = lattice_kd(zs, zt, mask, SmoothingConfig(mode="fixed", temperature=1.0))
    direct = _kl(zt.log_softmax(-1), zs.log_softmax(-1)).mean(-1).sum()
    assert torch.allclose(loss, direct, rtol=1e-6)

    T = 3.0
    loss, stats = lattice_kd(zs, zt, mask, SmoothingConfig(mode="fixed", temperature=T))
    direct = _kl((zt / T).log_softmax(-1), zs.log_softmax(-1)).mean(-1).sum()
    assert torch.allclose(loss, direct, rtol=1e-6)
    assert stats["kd_alpha"] == pytest.approx(1 / T)

    hinton, _ = lattice_kd(zs, zt, mask, SmoothingConfig(mode="fixed", temperature=T), hinton=True)
    textbook = T * T * _kl((zt / T).log_softmax(-1), (zs / T).log_softmax(-1)).mean(-1).sum()
    assert torch.allclose(hinton, textbook, rtol=1e-6)


@pytest.mark.parametrize("mode", ["entropy_floor", "maxprob_cap", "confidence_temperature", "fixed"])
def test_kl_is_non_negative_and_zero_for_identical_models(mode):
    zs, zt = _logits(3, 5, 2, 11, seed=3), _logits(3, 5, 2, 11, seed=4)
    mask = _all_valid(3, 5, 2)
    cfg = SmoothingConfig(mode=mode, entropy_floor=1.0)
    loss, _ = lattice_kd(zs, zt, mask, cfg)
    assert loss > 0
    kl_nodes = []
    for seed in range(5):
        l, _ = lattice_kd(_logits(1, 1, 1, 11, seed=10 + seed), _logits(1, 1, 1, 11, seed=20 + seed),
                          _all_valid(1, 1, 1), cfg)
        kl_nodes.append(float(l))
    assert min(kl_nodes) >= 0
    same, _ = lattice_kd(zt, zt, mask, SmoothingConfig(mode="fixed", temperature=1.0))
    assert abs(float(same)) < 1e-10
    # Hinton mode transforms both sides alike, so identical models give 0 for any rule.
    same, _ = lattice_kd(zt, zt, mask, cfg, hinton=True)
    assert abs(float(same)) < 1e-9


def test_masked_nodes_contribute_nothing_and_get_no_gradient():
    zs, zt = _logits(2, 4, 3, 6, seed=5), _logits(2, 4, 3, 6, seed=6)
    mask = _all_valid(2, 4, 3)
    mask[1, 2:] = False  # frames past T_b
    mask[0, :, 2] = False  # symbol positions past U_b
    cfg = SmoothingConfig()
    zs = zs.clone().requires_grad_(True)
    loss, _ = lattice_kd(zs, zt, mask, cfg)
    loss.backward()
    assert torch.all(zs.grad[~mask] == 0)
    assert torch.any(zs.grad[mask] != 0)
    changed_s, changed_t = zs.detach().clone(), zt.clone()
    changed_s[~mask] = 1e3 * torch.randn_like(changed_s[~mask])
    changed_t[~mask] = -1e3
    again, _ = lattice_kd(changed_s, changed_t, mask, cfg)
    assert torch.allclose(loss.detach(), again, rtol=1e-9)


def test_entropy_floor_smooths_just_enough_where_needed():
    lp = _logits(400, 20, scale=4.0, seed=7).log_softmax(-1)
    floor = 0.8
    cfg = SmoothingConfig(mode="entropy_floor", entropy_floor=floor, alpha_min=0.05)
    alpha = choose_alpha(lp, cfg)
    h = entropy(lp)
    assert torch.all(alpha[h >= floor] == 1.0)
    smoothed = alpha < 1
    assert smoothed.any() and (~smoothed).any()
    h_q = entropy(power_log_softmax(lp, alpha))
    assert torch.all(h_q[smoothed] >= floor - 1e-9)
    # Largest such exponent: a little more than a (the bisection's step) falls below the floor.
    step = 2.0 ** -cfg.iterations
    inner = smoothed & (alpha > cfg.alpha_min)
    h_more = entropy(power_log_softmax(lp, (alpha + 2 * step).clamp(max=1.0)))
    assert torch.all(h_more[inner] < floor)


def test_maxprob_cap_and_confidence_temperature():
    lp = _logits(300, 15, scale=4.0, seed=8).log_softmax(-1)
    cap = 0.7
    alpha = choose_alpha(lp, SmoothingConfig(mode="maxprob_cap", maxprob_cap=cap))
    top = power_log_softmax(lp, alpha).max(-1).values.exp()
    assert torch.all(top <= cap + 1e-9)
    assert torch.all(alpha[lp.max(-1).values.exp() <= cap] == 1.0)
    alpha = choose_alpha(lp, SmoothingConfig(mode="confidence_temperature", kappa=2.0))
    expected = 1 / (1 + 2.0 * lp.max(-1).values.exp())
    assert torch.allclose(alpha.double(), expected)


def test_frame_and_utterance_granularity_take_the_smallest_valid_alpha():
    alpha = torch.tensor([[[0.5, 0.9], [1.0, 0.2]], [[0.3, 0.8], [0.7, 0.6]]])
    mask = torch.tensor([[[True, True], [True, False]], [[True, True], [True, True]]])
    frame = pool_alpha(alpha, mask, "frame")
    assert frame[0, 0].tolist() == [0.5, 0.5] and frame[0, 1].tolist() == [1.0, 1.0]
    utt = pool_alpha(alpha, mask, "utterance")
    assert torch.all(utt[0] == 0.5) and torch.allclose(utt[1], torch.tensor(0.3))


def test_collapsed3_by_enumeration():
    z = _logits(1, 1, 3, 5, seed=9)
    lp = z.log_softmax(-1)
    next_symbol = torch.tensor([[[3, 1, 0]]])
    has_next = torch.tensor([[[True, True, False]]])
    got = collapse_to_three(lp, next_symbol, has_next, blank_id=0).exp()
    p = lp.exp()[0, 0]
    for u, (y, has) in enumerate([(3, True), (1, True), (0, False)]):
        p_y = float(p[u, y]) if has else 0.0
        p_blank = float(p[u, 0])
        expected = [p_y, p_blank, 1 - p_y - p_blank]
        assert got[0, 0, u].tolist() == pytest.approx(expected, abs=1e-4)


def test_hidden_mse_masks_padding_and_matches_the_formula():
    hs, ht = _logits(2, 5, 4, seed=10), _logits(2, 5, 4, seed=11)
    lens = torch.tensor([5, 3])
    got = hidden_mse([hs], [ht], lens)
    direct = sum(((hs[b, : lens[b]] - ht[b, : lens[b]]) ** 2).mean(-1).sum() for b in range(2))
    assert torch.allclose(got.double(), direct, rtol=1e-6)
    hs2 = hs.clone()
    hs2[1, 3:] = 99.0
    assert torch.allclose(hidden_mse([hs2], [ht], lens), got)
    with pytest.raises(ValueError, match="projection"):
        hidden_mse([hs], [ht[..., :3]], lens)
    assert math.isclose(float(hidden_mse([ht], [ht], lens)), 0.0)


def test_fitted_projection_recovers_a_linear_map_and_stays_bounded():
    from icefall_kd.distill.teacher import fit_projections, projections_for

    g = torch.Generator().manual_seed(12)
    h_s = torch.randn(500, 6, generator=g)
    true_w, true_b = torch.randn(4, 6, generator=g), torch.randn(4, generator=g)
    h_t = h_s @ true_w.T + true_b
    projections = projections_for([6], [4])
    errors = fit_projections(projections, [h_s], [h_t])
    assert errors[0] < 1e-3
    assert torch.allclose(projections[0].weight, true_w, atol=2e-2)
    # Collinear inputs (a constant direction, as after LayerNorm): the ridge keeps the
    # weights finite and the fit still good.
    collinear = torch.cat([h_s, h_s[:, :1] * 0 + 1.0], dim=1)
    projections = projections_for([7], [4], always=True)
    errors = fit_projections(projections, [collinear], [h_t])
    assert errors[0] < 1e-2 and projections[0].weight.abs().max() < 100
    # Same dimensions: a projection only when asked for.
    assert projections_for([6], [6]) is None and projections_for([6], [6], always=True) is not None


def _small_lattice_posteriors():
    """The pruned loss of a tiny random model on 2 utterances: T_b = 12 and 9 frames,
    S_b = 4 and 2 tokens."""
    from icefall_kd.loss.transducer_loss import pruned_transducer_loss
    from icefall_kd.model.transducer import build_transducer

    torch.manual_seed(0)
    model = build_transducer("tiny", vocab_size=20, causal=False)
    encoder_out = torch.randn(2, 12, model.encoder.output_dim)
    return pruned_transducer_loss(model, encoder_out, torch.tensor([12, 9]), [[3, 4, 5, 6], [7, 8]])


def test_node_occupancy_counts_every_arc_of_every_alignment_once():
    """Each alignment crosses T_b blank arcs and S_b symbol arcs: the occupancy of a
    batch element sums to T_b + S_b, and at least 1 per valid frame."""
    occ = _small_lattice_posteriors().node_occupancy
    assert occ.shape == (2, 12, 5)
    for b, (t_b, s_b) in enumerate([(12, 4), (9, 2)]):
        assert float(occ[b].sum()) == pytest.approx(t_b + s_b, rel=1e-4)
        assert torch.all(occ[b, :t_b].sum(-1) >= 1 - 1e-4)
        assert float(occ[b, t_b:].abs().sum()) == pytest.approx(0.0, abs=1e-6)


def test_node_weights_give_a_weighted_mean_per_frame():
    zs, zt = _logits(2, 3, 4, 6, seed=13), _logits(2, 3, 4, 6, seed=14)
    mask = _all_valid(2, 3, 4)
    cfg = SmoothingConfig(mode="fixed", temperature=1.0)
    uniform, _ = lattice_kd(zs, zt, mask, cfg)
    ones, _ = lattice_kd(zs, zt, mask, cfg, node_weights=torch.full((2, 3, 4), 0.3))
    assert torch.allclose(uniform, ones, rtol=1e-9)
    only_first = torch.zeros(2, 3, 4)
    only_first[..., 0] = 1.0
    weighted, _ = lattice_kd(zs, zt, mask, cfg, node_weights=only_first)
    direct = _kl(zt[..., 0, :].log_softmax(-1), zs[..., 0, :].log_softmax(-1)).sum()
    assert torch.allclose(weighted, direct, rtol=1e-6)


def test_nonblank_is_the_kl_of_the_renormalised_token_distributions():
    zs, zt = _logits(2, 3, 4, 6, seed=21), _logits(2, 3, 4, 6, seed=22)
    mask = _all_valid(2, 3, 4)
    cfg = SmoothingConfig(mode="fixed", temperature=1.0)
    got, _ = lattice_kd(zs, zt, mask, cfg, drop_class=0)
    # by hand: p(k | not blank) = p(k) / (1 - p(blank)) over k = 1..V-1
    p_s, p_t = zs.softmax(-1), zt.softmax(-1)
    r = p_s[..., 1:] / (1 - p_s[..., :1])
    q = p_t[..., 1:] / (1 - p_t[..., :1])
    direct = (q * (q.log() - r.log())).sum(-1).mean(-1).sum()
    assert torch.allclose(got, direct, rtol=1e-9)
    assert without_class(zt.log_softmax(-1), 2).exp().sum(-1).allclose(torch.ones(2, 3, 4, dtype=zt.dtype))


def test_nonblank_ignores_blank_entirely():
    """Moving either model's blank logit changes nothing, and the student's blank logit
    gets no gradient: this loss says what to emit, never when."""
    zs, zt = _logits(2, 3, 4, 6, seed=23), _logits(2, 3, 4, 6, seed=24)
    mask = _all_valid(2, 3, 4)
    cfg = SmoothingConfig(mode="entropy_floor", entropy_floor=0.8)
    base, _ = lattice_kd(zs, zt, mask, cfg, hinton=True, drop_class=0)
    zs2, zt2 = zs.clone(), zt.clone()
    zs2[..., 0] += 5.0
    zt2[..., 0] -= 7.0
    moved, _ = lattice_kd(zs2, zt2, mask, cfg, hinton=True, drop_class=0)
    assert torch.allclose(base, moved, rtol=1e-9)
    zs.requires_grad_(True)
    lattice_kd(zs, zt, mask, cfg, drop_class=0)[0].backward()
    assert float(zs.grad[..., 0].abs().max()) == 0.0 and float(zs.grad[..., 1:].abs().max()) > 0


def test_weighted_sum_instead_of_a_per_frame_mean():
    zs, zt = _logits(2, 3, 4, 6, seed=25), _logits(2, 3, 4, 6, seed=26)
    mask = _all_valid(2, 3, 4)
    cfg = SmoothingConfig(mode="fixed", temperature=1.0)
    w = torch.rand(2, 3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got, _ = lattice_kd(zs, zt, mask, cfg, node_weights=w, per_frame_mean=False)
    direct = (w * _kl(zt.log_softmax(-1), zs.log_softmax(-1))).sum()
    assert torch.allclose(got, direct, rtol=1e-9)
    with pytest.raises(ValueError, match="needs node_weights"):
        lattice_kd(zs, zt, mask, cfg, per_frame_mean=False)


def test_emission_occupancy_counts_each_token_once():
    """Every alignment emits each of the S_b tokens exactly once: the emission posteriors of
    a batch element sum to S_b, each symbol row s < S_b to 1, and row S_b is 0."""
    emission = _small_lattice_posteriors().emission_occupancy
    assert emission.shape == (2, 12, 5)
    for b, (t_b, s_b) in enumerate([(12, 4), (9, 2)]):
        per_symbol = emission[b].sum(0)  # (S + 1,)
        assert per_symbol[:s_b].tolist() == pytest.approx([1.0] * s_b, abs=1e-4)
        assert float(per_symbol[s_b:].abs().sum()) == pytest.approx(0.0, abs=1e-6)
        assert float(emission[b, t_b:].abs().sum()) == pytest.approx(0.0, abs=1e-6)


def test_token_distributions_by_hand():
    """Position s's distribution is the emission-weighted mean, over the nodes (t, s), of
    the token distribution given an emission."""
    z = _logits(1, 3, 2, 4, seed=31)
    rows = torch.tensor([[[0, 1], [0, 1], [1, 2]]])
    w = torch.tensor([[[0.7, 0.1], [0.3, 0.4], [0.5, 0.0]]], dtype=torch.float64)
    got, mass = token_log_probs(z, rows, w, num_rows=3, blank_id=0)
    p = z[..., 1:].softmax(-1)[0]  # (T, R, 3): blank left out, renormalised
    for s in range(3):
        num = sum(float(w[0, t, r]) * p[t, r] for t in range(3) for r in range(2) if rows[0, t, r] == s)
        den = sum(float(w[0, t, r]) for t in range(3) for r in range(2) if rows[0, t, r] == s)
        assert float(mass[0, s]) == pytest.approx(den)
        if den > 0:
            assert got[0, s].exp().tolist() == pytest.approx((num / den).tolist(), rel=1e-9)


def test_token_kd_ignores_when_the_teacher_emits():
    """The same model emitting every token one frame earlier costs nothing (the per-node
    KL does), and a teacher preferring other tokens does cost."""
    torch.manual_seed(0)
    t_max, r, v = 6, 2, 5
    z = _logits(1, t_max, r, v, seed=32)
    rows = torch.tensor([[0, 1], [0, 1], [1, 2], [1, 2], [2, 3], [2, 3]]).unsqueeze(0)
    w = torch.rand(1, t_max, r, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w[:, :, 1] *= rows[:, :, 1] < 3  # no emission from the last row
    w[:, 0] = 0.0  # frame 0 moves out of the teacher's utterance below
    earlier = (z.roll(-1, dims=1), rows.roll(-1, dims=1), w.roll(-1, dims=1))
    cfg = SmoothingConfig(mode="fixed", temperature=1.0)
    num_tokens = torch.tensor([3])
    loss, _ = token_kd((z, rows, w), earlier, num_tokens, cfg, min_mass=0.0)
    assert float(loss) == pytest.approx(0.0, abs=1e-9)
    node_kl, _ = lattice_kd(z, earlier[0], torch.ones(1, t_max, r, dtype=torch.bool), cfg)
    assert float(node_kl) > 0.1
    other = _logits(1, t_max, r, v, seed=33)
    loss_other, _ = token_kd((z, rows, w), (other, rows, w), num_tokens, cfg, min_mass=0.0)
    assert float(loss_other) > 0.01
    # positions whose emission mass is too small (the band missed them) are left out
    skipped, _ = token_kd((z, rows, w), (other, rows, w * 1e-3), num_tokens, cfg, min_mass=0.5)
    assert float(skipped) == 0.0
