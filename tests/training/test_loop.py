import math
from functools import partial

import pytest
import torch

from cnnkit.data.augment import BatchAugment
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training.loop import LossSpec, NonFiniteLossError, PrecisionSpec, StepPolicy, train_one_epoch


def _epoch(data, batch_size=5, **kw):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    return train_one_epoch(
        model,
        data,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        scheduler=None,
        normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


def _data(n=40):
    return Split(images=torch.randint(0, 255, (n, 1, 4, 4), dtype=torch.uint8), labels=torch.randint(0, 2, (n,)))


def test_stop_at_ends_an_epoch_early():
    seen = []
    out = _epoch(_data(), on_step=lambda step, *a: seen.append(step), stop_at=lambda: 3)
    assert seen == [1, 2, 3] and out["images"] == 15


def test_augment_gets_each_batch_index_and_the_epoch():
    calls = []

    class Spy(BatchAugment):
        def __call__(self, x, generator, *, index=None, epoch=1):
            calls.append((index.clone(), epoch))
            return super().__call__(x, generator, index=index, epoch=epoch)

    data = _data()
    _epoch(data, augment=Spy(hflip=True, alternate_flip=True), epoch=4)
    index = torch.cat([i for i, _ in calls])
    assert sorted(index.tolist()) == list(range(40)) and {e for _, e in calls} == {
        4
    }  # one epoch: every image once, by its index


def _nan_at_step(bad_step):
    calls = []

    def loss_fn(logits, y):
        calls.append(1)
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss * float("nan") if len(calls) == bad_step else loss

    return loss_fn


def test_on_nan_skip_drops_the_step_and_counts_it():
    seen = []
    out = _epoch(
        _data(), loss_fn=_nan_at_step(2), on_nan="skip", on_step=lambda step, steps, loss, *a: seen.append((step, loss))
    )
    assert out["skipped_steps"] == 1 and out["images"] == 35  # 8 steps of 5, the second left out of the sums
    assert (
        [s for s, _ in seen] == list(range(1, 9))
        and math.isnan(seen[1][1])
        and all(math.isfinite(v) for s, v in seen if s != 2)
    )


def test_on_nan_stop_raises_with_the_step_and_the_last_finite_loss():
    losses = []
    with pytest.raises(NonFiniteLossError) as e:
        _epoch(_data(), loss_fn=_nan_at_step(3), on_step=lambda step, steps, loss, *a: losses.append(loss))
    assert e.value.step == 3 and math.isnan(e.value.value) and e.value.last_finite == losses[-1] and len(losses) == 2


def test_grad_clip_bounds_the_update():
    def step_size(**kw):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
        train_one_epoch(
            model,
            _data(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            scheduler=None,
            normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
            batch_size=40,
            generator=torch.Generator().manual_seed(0),
            **kw,
        )
        return float((torch.cat([p.detach().flatten() for p in model.parameters()]) - before).norm())

    free, clipped = step_size(), step_size(policy=StepPolicy(grad_clip=1e-3))
    assert free > 1e-3 and clipped == pytest.approx(0.1 * 1e-3, rel=1e-4)  # one SGD step of lr * max_norm


def test_l1_penalty_is_added_to_the_loss_and_reported():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    w0 = model[1].weight.detach().abs().sum()
    kw = {
        "optimizer": torch.optim.SGD(model.parameters(), lr=0.0),
        "scheduler": None,
        "normalize": Normalize((0.5,), (0.5,), torch.device("cpu")),
        "batch_size": 40,
        "generator": torch.Generator().manual_seed(0),
    }
    data = _data()
    plain = train_one_epoch(model, data, **kw)
    out = train_one_epoch(model, data, **kw, loss=LossSpec(l1=0.5, l1_params=[model[1].weight]))
    assert out["l1"] == pytest.approx(0.5 * float(w0), rel=1e-5) and "l1" not in plain
    assert out["loss"] == pytest.approx(
        plain["loss"] + out["l1"], rel=1e-5
    )  # lr 0: the same weights, the penalty on top


def test_grouped_and_flat_arguments_agree_and_do_not_mix():
    data = _data()
    flat = _epoch(data, label_smoothing=0.1, grad_clip=0.5, precision="fp32")
    grouped = _epoch(
        data, loss=LossSpec(label_smoothing=0.1), policy=StepPolicy(grad_clip=0.5), amp=PrecisionSpec("fp32")
    )
    assert flat == pytest.approx({**grouped, "seconds": flat["seconds"]})
    with pytest.raises(TypeError, match="label_smoothing inside loss="):
        _epoch(data, loss=LossSpec(), label_smoothing=0.1)
    with pytest.raises(TypeError, match="'lr'"):
        _epoch(data, lr=0.1)


def test_perturb_batch_gets_unit_pixels_and_its_output_is_trained_on():
    data = _data()
    seen = []

    def to_black(model, normalize, x01, y, generator, epoch):
        seen.append((float(x01.min()), float(x01.max()), x01.dtype, tuple(x01.shape), y.dtype, epoch))
        assert torch.allclose(normalize(x01), (x01 - 0.5) / 0.5, atol=1e-5)  # [0, 1] -> the model's input
        return torch.zeros_like(x01)

    out = _epoch(data, perturb_batch=to_black, epoch=3)
    black = _epoch(Split(images=torch.zeros_like(data.images), labels=data.labels))
    assert len(seen) == 8 and all(
        lo >= 0.0 and hi <= 1.0 and dt == torch.float32 and s == (5, 1, 4, 4) and yd == torch.long and e == 3
        for lo, hi, dt, s, yd, e in seen
    )
    assert max(hi for _, hi, *_ in seen) > 0.9  # really the pixels / 255, not 0-255 values
    assert out == pytest.approx({**black, "seconds": out["seconds"]})  # trained on what the hook returned


def _linear_epoch(data, optimizer_cls=torch.optim.SGD, batch_size=5, **kw):
    """One epoch of a linear model, recording its weights after every step; returns (result, weights, model)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    weights = [torch.cat([p.detach().flatten().clone() for p in model.parameters()])]

    def record(step, *a):
        weights.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))

    out = train_one_epoch(
        model,
        data,
        optimizer=optimizer_cls(model.parameters(), lr=0.1),
        scheduler=None,
        normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(0),
        on_step=record,
        **kw,
    )
    return out, weights, model


def test_a_skipped_step_leaves_the_weights_unchanged_and_is_counted():
    out, w, _ = _linear_epoch(_data(), loss_fn=_nan_at_step(3), policy=StepPolicy(on_nan="skip"))
    assert out["skipped_steps"] == 1 and len(w) == 9  # the start + 8 steps, the third skipped
    assert torch.equal(w[3], w[2])  # step 3: no update (and no NaN reached the weights)
    assert all(not torch.equal(w[i], w[i - 1]) for i in (1, 2, 4, 5, 6, 7, 8))  # every other step moved them
    assert all(bool(torch.isfinite(v).all()) for v in w)


class _NormSpy(torch.optim.SGD):
    """SGD that appends the global gradient norm it is asked to step with to `norms`."""

    def __init__(self, params, lr, norms: list):
        super().__init__(params, lr=lr)
        self.norms = norms

    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        self.norms.append(float(torch.nn.utils.get_total_norm(grads)))
        return super().step(closure)


def test_grad_clip_keeps_every_steps_global_norm_at_or_below_the_value():
    free, clipped = [], []
    _linear_epoch(_data(), optimizer_cls=partial(_NormSpy, norms=free))
    _linear_epoch(_data(), optimizer_cls=partial(_NormSpy, norms=clipped), policy=StepPolicy(grad_clip=0.05))
    assert len(free) == len(clipped) == 8 and free[0] > 0.05  # the first step really needed clipping
    assert max(clipped) <= 0.05 * (1 + 1e-5) and clipped[0] == pytest.approx(0.05, rel=1e-5)


def test_l1_term_and_its_gradient_equal_the_hand_computation():
    data, coef, lr = _data(), 0.01, 0.1
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))  # the same start as the model trained below
    # by hand: one full-batch SGD step on cross-entropy + coef * sum |W| (the weight only, not the bias)
    w = ref[1].weight
    x = Normalize((0.5,), (0.5,), torch.device("cpu"))(data.images)
    ce = torch.nn.functional.cross_entropy(ref(x), data.labels)
    penalty = coef * w.abs().sum()
    (ce + penalty).backward()
    expected = w.detach() - lr * w.grad
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    out = train_one_epoch(
        model,
        data,
        optimizer=torch.optim.SGD(model.parameters(), lr=lr),
        scheduler=None,
        normalize=Normalize((0.5,), (0.5,), torch.device("cpu")),
        batch_size=40,
        generator=torch.Generator().manual_seed(0),
        loss=LossSpec(l1=coef, l1_params=[model[1].weight]),
    )
    assert out["l1"] == pytest.approx(float(penalty.detach()), rel=1e-6)  # reported: coef * sum |W| before the step
    assert out["loss"] == pytest.approx(float((ce + penalty).detach()), rel=1e-5)  # the loss includes it
    assert torch.allclose(model[1].weight, expected, atol=1e-6)  # and its gradient, coef * sign(W), is trained on
