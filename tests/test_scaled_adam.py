"""ScaledAdam against values worked out by hand, its defining property (steps relative to
the tensor's size: the trajectory of c·θ is c times that of θ, which Adam's is not), a
loss it lowers, and an exact resume from its state."""

import copy

import pytest
import torch

from icefall_kd.training.scaled_adam import ScaledAdam


def test_first_step_by_hand():
    """Step 1: Adam's bias-corrected m̂/√v̂ is sign(g) (eps aside), for g and for h = Σ g θ."""
    lr, eta = 0.05, 0.1
    w = torch.nn.Parameter(torch.tensor([[0.3, -0.4], [0.1, 0.2]]))
    s = torch.nn.Parameter(torch.tensor([0.7]))
    g = torch.tensor([[1.0, -2.0], [0.5, -0.1]])
    w.grad, s.grad = g.clone(), torch.tensor([-3.0])
    w0 = w.detach().clone()
    ScaledAdam([w, s], lr=lr, scalar_lr_scale=eta, eps=0.0).step()
    rms = w0.pow(2).mean().sqrt()
    h_sign = torch.sign((g * w0).sum())  # 0.3 + 0.8 + 0.05 - 0.02 > 0
    expected = w0 - lr * rms * torch.sign(g) - lr * eta * h_sign * w0
    torch.testing.assert_close(w.detach(), expected, rtol=0, atol=1e-7)
    torch.testing.assert_close(s.detach(), torch.tensor([0.7 + lr * eta]), rtol=0, atol=1e-7)


def _trajectory(optimizer_class, scale: float, steps: int = 30, **kwargs):
    """θ minimising ||A (θ / scale) - b||² from scale · θ0: the same problem in another unit."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 8, generator=gen), torch.randn(16, generator=gen)
    theta = torch.nn.Parameter(scale * 0.1 * torch.randn(8, generator=gen))
    optimizer = optimizer_class([theta], lr=0.01, **kwargs)
    path = []
    for _ in range(steps):
        optimizer.zero_grad()
        ((a @ (theta / scale) - b) ** 2).sum().backward()
        optimizer.step()
        path.append(theta.detach().clone() / scale)
    return torch.stack(path)


def test_steps_are_relative_to_the_tensor_size():
    one, scaled = _trajectory(ScaledAdam, 1.0), _trajectory(ScaledAdam, 25.0)
    torch.testing.assert_close(scaled, one, rtol=1e-4, atol=1e-6)
    # Control: Adam's step has the same absolute size at any scale, so its path differs.
    adam_one, adam_scaled = _trajectory(torch.optim.Adam, 1.0), _trajectory(torch.optim.Adam, 25.0)
    assert (adam_one - adam_scaled).abs().max() > 1e-2


def test_lowers_a_loss():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    x = torch.randn(64, 4)
    y = x[:, :1] * 2 - x[:, 1:2]
    optimizer = ScaledAdam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(300):
        optimizer.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0], (losses[0], losses[-1])


def test_a_tensor_above_the_limit_only_shrinks():
    """The loss wants the tensor larger. All elements equal, so each step multiplies it by
    1 + lr (the size-relative Adam step), its scale held."""
    def grown(param_max_rms):
        big = torch.nn.Parameter(torch.full((4,), 5.0))  # RMS 5
        optimizer = ScaledAdam([big], lr=0.01, param_max_rms=param_max_rms, eps=0.0)
        for _ in range(20):
            optimizer.zero_grad()
            (-big.sum()).backward()
            optimizer.step()
        return big.detach()

    torch.testing.assert_close(grown(3.0), torch.full((4,), 5.0 * 1.01 ** 20))
    # Control, no limit: the scale grows too, by up to lr · 0.1 more per step (its gradient
    # h = Σ g θ changes as θ grows, so Adam's ratio is not exactly 1): about 2% over 20 steps.
    assert (grown(100.0) / grown(3.0)).min() > 1.01


def test_resume_from_state_dict_is_exact():
    torch.manual_seed(1)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randn(8, 2)

    def run(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            ((model(x) - y) ** 2).sum().backward()
            optimizer.step()

    optimizer = ScaledAdam(model.parameters())
    run(model, optimizer, 3)
    saved_model, saved_optimizer = copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())
    run(model, optimizer, 4)
    resumed = torch.nn.Linear(3, 2)
    resumed.load_state_dict(saved_model)
    resumed_optimizer = ScaledAdam(resumed.parameters())
    resumed_optimizer.load_state_dict(saved_optimizer)
    run(resumed, resumed_optimizer, 4)
    for a, b in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs", [dict(lr=0.0), dict(betas=(0.9, 1.0))])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match="ScaledAdam"):
        ScaledAdam([torch.nn.Parameter(torch.ones(2))], **kwargs)
