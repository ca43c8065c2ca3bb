"""`StepHook`: what the engine does after every optimiser step of an epoch, in this order: the time
budget's plan, lookahead, progress, the user's on_step, step checkpoints, and stopping on Ctrl-C / SIGTERM."""

from __future__ import annotations

import torch

from cnnkit.training.interrupt import TrainingInterrupted
from cnnkit.training.session import Session, replan, save_last


class StepHook:
    """train_one_epoch's `on_step(step, steps, loss, acc, images)` for `epoch` of the session's run."""

    def __init__(self, s: Session, epoch: int):
        self.s, self.epoch = s, epoch

    def __call__(self, step: int, steps: int, loss: float, acc: float, images: int) -> None:
        s, epoch = self.s, self.epoch
        p, ts = s.parts, s.parts.state
        if (
            ts.budget is not None and not ts.budget.planned and p.world_size == 1
        ):  # several processes: at the epoch's end
            replan(s, ts.budget.observe, (epoch - 1) * p.steps_per_epoch + step, s.elapsed())
        if ts.lookahead is not None:
            ts.lookahead.update(p.model)
        s.progress.step(step, steps, loss, acc, images)
        if s.hooks.on_step is not None:
            s.hooks.on_step(epoch, step, loss)
        every = p.cfg.train.checkpoint_every
        if every and ((epoch - 1) * steps + step) % every == 0 and step < steps:
            save_last(s)
        if self._stop_requested():
            save_last(s)
            raise TrainingInterrupted(  # printed once, by whoever catches it (the CLI)
                f"interrupted at epoch {epoch}, step {step}; resume with: cnnkit train --resume {p.run_dir}",
                s.interrupt.exit_code,
            )

    def _stop_requested(self) -> bool:
        """Ctrl-C / SIGTERM on any process stops every process at the same step."""
        p, stop = self.s.parts, self.s.interrupt.requested
        if p.world_size > 1:
            flag = torch.tensor([1.0 if stop else 0.0], device=p.device)
            torch.distributed.all_reduce(flag)
            stop = float(flag) > 0
        return bool(stop)
