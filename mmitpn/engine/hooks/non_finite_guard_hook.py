# Copyright (c) mmitpn contributors. All rights reserved.
"""Skip updates with a non-finite loss or gradient; stop a diverged run."""
import math
from typing import List, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch.utils.hooks import RemovableHandle

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


def _non_finite_loss(outputs) -> Optional[str]:
    """``'<name> is <value>'`` for the first non-finite loss term of a
    model's loss dict (the entries whose name holds ``'loss'``, as
    ``BaseModel.parse_losses`` sums them), or None."""
    if not isinstance(outputs, dict):
        return None
    for name, value in outputs.items():
        if 'loss' not in name:
            continue
        for term in value if isinstance(value, (list, tuple)) else [value]:
            if torch.is_tensor(term) and not torch.isfinite(term).all():
                return f'{name} is {term.detach().float().mean().item()}'
    return None


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Guard training against NaN / Inf losses and gradients.

    Every optimizer wrapper of the runner is watched through PyTorch's public
    hook points (nothing of the wrapper is replaced, so any
    ``OptimWrapper`` subclass works unchanged):

    - a forward hook on the model reads the loss dict of each training
      forward; a non-finite loss term marks the iteration as bad;
    - an optimizer step pre-hook (``Optimizer.register_step_pre_hook``)
      checks the gradient norm; for a bad iteration it sets every gradient
      to None, and PyTorch's optimizers skip parameters without a gradient
      altogether (no update, no momentum or weight decay, no step count),
      so the step changes nothing. Wrappers with a dynamic loss scaler
      (fp16 ``AmpOptimWrapper``) are left to it for gradients: it skips
      overflowing steps and lowers the scale, which is routine (a
      non-finite loss there also lowers the scale once);
    - the backward pass of a bad iteration still runs (a hook cannot skip
      it); its gradients, including those accumulated over earlier
      iterations with ``accumulative_counts``, are discarded after it;
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
        self._in_train_iter = False
        self._handles: List[RemovableHandle] = []

    @staticmethod
    def _wrappers(runner) -> List[OptimWrapper]:
        wrapper = runner.optim_wrapper
        if isinstance(wrapper, OptimWrapperDict):
            return list(wrapper.values())
        return [wrapper]

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self._handles.append(model.register_forward_hook(self._check_loss))
        for wrapper in self._wrappers(runner):
            self._handles.append(
                wrapper.optimizer.register_step_pre_hook(
                    self._pre_step_check(wrapper)))

    def after_train(self, runner) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _check_loss(self, module, args, outputs) -> None:
        if self._in_train_iter and self._problem is None:
            self._problem = _non_finite_loss(outputs)

    def _pre_step_check(self, wrapper: OptimWrapper):
        scaled = hasattr(wrapper, 'loss_scaler')

        def check(optimizer, args, kwargs) -> None:
            if self._problem is None and self.check_grad and not scaled:
                norm = _grad_norm(optimizer)
                if not math.isfinite(norm):
                    self._problem = f'gradient norm is {norm}'
            if self._problem is not None:
                optimizer.zero_grad(set_to_none=True)

        return check

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        self._in_train_iter = True

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        self._in_train_iter = False
        if self._problem is None:
            self.consecutive = 0
            return
        for wrapper in self._wrappers(runner):
            wrapper.zero_grad()
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
