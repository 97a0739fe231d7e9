# Copyright (c) mmitpn contributors. All rights reserved.
"""Skip updates with a non-finite loss or gradient; stop a diverged run."""
import math
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper, OptimWrapperDict

from mmitpn.registry import HOOKS


class DivergenceError(RuntimeError):
    """Raised after too many consecutive non-finite training steps."""


def _grad_norm(optimizer: torch.optim.Optimizer) -> float:
    grads = [
        p.grad.detach() for group in optimizer.param_groups
        for p in group['params'] if p.grad is not None
    ]
    if not grads:
        return 0.
    norms = torch.stack([torch.linalg.vector_norm(g.float()) for g in grads])
    return torch.linalg.vector_norm(norms).item()


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Guard training against NaN / Inf losses and gradients.

    Every optimizer wrapper of the runner is watched:

    - a non-finite loss skips its backward pass and optimizer step;
    - a non-finite gradient norm skips the optimizer step. Wrappers with a
      dynamic loss scaler (fp16 ``AmpOptimWrapper``) are left to it: it
      skips overflowing steps and lowers the scale, which is routine;
    - each skipped iteration is logged with its number; after
      ``max_consecutive`` bad iterations in a row the run stops with
      :class:`DivergenceError` (a non-zero exit) instead of training on;
    - a checkpoint whose weights hold a non-finite value is never written:
      the run stops with the offending parameter named.

    Args:
        max_consecutive (int): Consecutive skipped iterations after which
            training stops. Defaults to 20.
        check_grad (bool): Also check the gradient norm before each step
            (one reduction over the gradients). Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_consecutive: int = 20, check_grad: bool = True):
        if max_consecutive < 1:
            raise ValueError(
                f'max_consecutive must be >= 1, got {max_consecutive}.')
        self.max_consecutive = max_consecutive
        self.check_grad = check_grad
        self.consecutive = 0
        self.skipped_total = 0
        self._problem: Optional[str] = None

    @staticmethod
    def _wrappers(runner) -> List[OptimWrapper]:
        wrapper = runner.optim_wrapper
        if isinstance(wrapper, OptimWrapperDict):
            return list(wrapper.values())
        return [wrapper]

    def before_train(self, runner) -> None:
        for wrapper in self._wrappers(runner):
            self._guard(wrapper)

    def _guard(self, wrapper: OptimWrapper) -> None:
        if getattr(wrapper, '_non_finite_guarded', False):
            return
        update_params, step = wrapper.update_params, wrapper.step

        def guarded_update(loss, *args, **kwargs):
            if not torch.isfinite(loss).all():
                self._problem = f'loss is {loss.detach().float().item()}'
                wrapper.zero_grad()
                return
            update_params(loss, *args, **kwargs)

        def guarded_step(*args, **kwargs):
            if self.check_grad and not hasattr(wrapper, 'loss_scaler'):
                norm = _grad_norm(wrapper.optimizer)
                if not math.isfinite(norm):
                    self._problem = f'gradient norm is {norm}'
                    return
            step(*args, **kwargs)

        wrapper.update_params = guarded_update
        wrapper.step = guarded_step
        wrapper._non_finite_guarded = True

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if self._problem is None:
            self.consecutive = 0
            return
        self.consecutive += 1
        self.skipped_total += 1
        runner.logger.warning(
            f'NonFiniteGuardHook: iteration {runner.iter + 1} skipped, '
            f'{self._problem} ({self.consecutive} in a row, '
            f'{self.skipped_total} in this run).')
        self._problem = None
        if self.consecutive >= self.max_consecutive:
            raise DivergenceError(
                f'Training diverged: {self.consecutive} consecutive '
                f'iterations (up to iteration {runner.iter + 1}) had a '
                'non-finite loss or gradient, and their updates were '
                'skipped. Lower the learning rate, enable gradient clipping '
                '(optim_wrapper.clip_grad) or use bf16 instead of fp16, then '
                'resume from the last checkpoint of the work dir (written '
                'before the divergence).')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for name, value in checkpoint.get('state_dict', {}).items():
            if torch.is_tensor(value) and value.is_floating_point() and \
                    not torch.isfinite(value).all():
                raise DivergenceError(
                    f'Refusing to write a checkpoint at iteration '
                    f'{runner.iter}: {name} holds non-finite values. The '
                    'last finite checkpoint of the work dir is kept.')
