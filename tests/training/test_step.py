"""training/step.py: fp16's gradient-scaler path, exercised on the CPU.

fp16 autocast needs CUDA, which this machine lacks; the scaler logic around it (scale the loss,
unscale before clipping, skip a step whose gradients overflowed, halve the scale) does not, and
torch's GradScaler runs on the CPU. These tests drive backward/apply/non_finite with an enabled
CPU scaler and compare every number with the unscaled fp32 path."""

import pytest
import torch
from torch import nn

from cnnkit.training import step
from cnnkit.training.epoch_state import EpochState
from cnnkit.training.specs import PrecisionSpec, Sharding, StepPolicy

CPU = torch.device("cpu")


def _model_and_loss(seed: int = 0):
    torch.manual_seed(seed)
    model = nn.Linear(3, 2)
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 1, 0])
    return model, nn.functional.cross_entropy(model(x), y)


def _scaled(init_scale: float = 2.0**10) -> PrecisionSpec:
    return PrecisionSpec(precision="fp32", scaler=torch.amp.GradScaler("cpu", init_scale=init_scale))


@pytest.mark.parametrize("grad_clip", [None, 0.05])
def test_a_scaled_step_updates_the_weights_exactly_as_the_unscaled_one(grad_clip):
    ref, loss = _model_and_loss()
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    assert step.backward(loss, opt, list(ref.parameters()), PrecisionSpec(), grad_clip, Sharding(), CPU)
    step.apply(ref, opt, None, PrecisionSpec(), None)

    model, loss = _model_and_loss()
    amp = _scaled()
    assert amp.fp16
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    assert step.backward(loss, opt, list(model.parameters()), amp, grad_clip, Sharding(), CPU)
    if grad_clip:  # unscaled before clipping: the clipped norm is the real one, not 1024 times it
        norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
        assert float(norm) == pytest.approx(grad_clip, rel=1e-4)
    step.apply(model, opt, None, amp, None)
    for a, b in zip(ref.parameters(), model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert amp.scaler.get_scale() == 2.0**10  # no overflow: the scale is kept


class _InfGradient(torch.autograd.Function):
    """Identity forward, infinite gradient backward: fp16's overflow, with a finite loss."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("inf")


def test_an_overflowing_step_is_skipped_by_the_scaler_and_the_scale_halves():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    before = [p.detach().clone() for p in model.parameters()]
    loss = nn.functional.cross_entropy(_InfGradient.apply(model(torch.randn(4, 3))), torch.tensor([0, 1, 1, 0]))
    amp = _scaled(2.0**10)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    # the loss is finite, so the step is not "non-finite": the scaler itself must skip the update
    assert step.backward(loss, opt, list(model.parameters()), amp, None, Sharding(), CPU)
    step.apply(model, opt, None, amp, None)
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert amp.scaler.get_scale() == 2.0**9


def test_a_non_finite_loss_with_skip_halves_the_scale_and_counts_the_step():
    model, loss = _model_and_loss()
    before = [p.detach().clone() for p in model.parameters()]
    amp = _scaled(2.0**10)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    nan_loss = loss * float("nan")
    assert not step.backward(nan_loss, opt, list(model.parameters()), amp, None, Sharding(), CPU)
    state = EpochState.start(4, torch.Generator().manual_seed(0))
    value = step.non_finite(nan_loss, StepPolicy(on_nan="skip"), opt, None, amp, state, 3)
    assert value != value and state.skipped == 1 and state.step == 3
    assert amp.scaler.get_scale() == 2.0**9  # the scaler saw the overflow too
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.raises(step.NonFiniteLossError, match="at step 3"):
        step.non_finite(nan_loss, StepPolicy(on_nan="stop"), opt, None, amp, state, 3)
