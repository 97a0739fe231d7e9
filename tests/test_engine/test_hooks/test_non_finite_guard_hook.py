# Copyright (c) mmitpn contributors. All rights reserved.
import glob
import os.path as osp

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from mmitpn.engine.hooks import DivergenceError, NonFiniteGuardHook


class ToyModel(BaseModel):
    """Loss ``(w x)^2``, made non-finite by the sample's ``bad`` flag:
    ``'loss'`` poisons the loss, ``'grad'`` only the gradient."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, bad=None, mode='tensor'):
        out = self.linear(inputs)
        loss = out.square().mean()
        if bad is not None and 'loss' in bad:
            loss = loss * float('nan')
        if bad is not None and 'grad' in bad:
            loss = loss + InfiniteGradient.apply(out)
        return dict(loss=loss)


class InfiniteGradient(torch.autograd.Function):
    """Adds 0 to the loss and an infinite gradient to its input."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.sum() * 0.

    @staticmethod
    def backward(ctx, grad):
        return torch.full(ctx.shape, float('inf'))


def collate(batch):
    inputs = torch.stack([item[0] for item in batch])
    return dict(inputs=inputs, bad=batch[0][1])


def make_runner(tmp_path,
                schedule,
                max_consecutive=3,
                lr=0.1,
                optimizer=None,
                check_grad=True,
                **wrapper):
    data = [(torch.ones(2), flag) for flag in schedule]
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=data,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=collate,
            batch_size=1,
            num_workers=0),
        optim_wrapper=dict(
            optimizer=optimizer or dict(type='SGD', lr=lr), **wrapper),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        custom_hooks=[
            dict(
                type=NonFiniteGuardHook,
                max_consecutive=max_consecutive,
                check_grad=check_grad)
        ],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
        default_scope='mmitpn')


def weights(runner):
    return torch.cat([p.detach().flatten()
                      for p in runner.model.parameters()]).clone()


@pytest.mark.parametrize(
    'optimizer', [
        None,
        dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.1),
        dict(type='AdamW', lr=0.1, weight_decay=0.1)
    ],
    ids=['sgd', 'sgd-momentum-decay', 'adamw'])
def test_bad_steps_are_skipped_and_logged(tmp_path, optimizer):
    schedule = [None, 'loss', 'grad', None]
    runner = make_runner(tmp_path, schedule, optimizer=optimizer)
    seen = []

    def record(module, args, kwargs, output):
        seen.append(weights(runner))

    runner.model.register_forward_hook(record, with_kwargs=True)
    runner.train()
    # Weights before iterations 2, 3, 4: the two bad iterations changed
    # nothing, the good ones did.
    assert torch.equal(seen[1], seen[2]) and torch.equal(seen[2], seen[3])
    assert not torch.equal(seen[0], seen[1])
    assert torch.isfinite(weights(runner)).all()
    hook = [h for h in runner.hooks if isinstance(h, NonFiniteGuardHook)][0]
    assert hook.skipped_total == 2 and hook.consecutive == 0
    log = open(glob.glob(osp.join(tmp_path, '*', '*.log'))[0]).read()
    assert 'iteration 2 skipped, loss is nan' in log
    assert 'iteration 3 skipped, gradient norm is inf' in log
    assert glob.glob(osp.join(tmp_path, 'epoch_1.pth'))
    # Nothing of the guard stays on the model or the optimizer.
    assert list(runner.model._forward_hooks.values()) == [record]
    assert not runner.optim_wrapper.optimizer._optimizer_step_pre_hooks


def test_loss_check_alone_discards_accumulated_gradients(tmp_path):
    # Gradients accumulate over two iterations. Iteration 3's loss is NaN
    # (check_grad=False: only the loss guard); its gradients are discarded
    # after it, so the update at the end of iteration 4 uses iteration 4's
    # finite gradients instead of NaN.
    runner = make_runner(
        tmp_path, [None, None, 'loss', None],
        check_grad=False,
        accumulative_counts=2)
    seen = []
    runner.model.register_forward_hook(
        lambda *args: seen.append(weights(runner)))
    runner.train()
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[2], seen[3])
    assert not torch.equal(seen[1], seen[2])
    assert not torch.equal(seen[3], weights(runner))
    assert torch.isfinite(weights(runner)).all()


def test_divergence_stops_the_run_without_a_checkpoint(tmp_path):
    runner = make_runner(tmp_path, [None] + ['loss'] * 5, max_consecutive=3)
    with pytest.raises(DivergenceError, match='3 consecutive'):
        runner.train()
    assert not glob.glob(osp.join(tmp_path, '*.pth'))


def test_non_finite_weights_are_never_saved(tmp_path):
    runner = make_runner(tmp_path, [None, None])
    hook = NonFiniteGuardHook()
    state = dict(
        state_dict={'linear.weight': torch.tensor([1., float('nan')])})
    with pytest.raises(DivergenceError, match='linear.weight'):
        hook.before_save_checkpoint(runner, state)
    with pytest.raises(ValueError, match='max_consecutive'):
        NonFiniteGuardHook(max_consecutive=0)
