# Copyright (c) mmitpn contributors. All rights reserved.
"""Log the total batch and the learning rates a run actually trains with."""
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapperDict

from mmitpn.registry import HOOKS


@HOOKS.register_module()
class TrainingScaleLoggerHook(Hook):
    """One log line at the start of training: world size, batch per
    process, gradient accumulation, total batch, whether and how the
    learning rate was scaled (``auto_scale_lr``), and the smallest and
    largest learning rate of the optimizer groups after scaling (layer
    decay spreads them)."""

    priority = 'LOWEST'

    def before_train(self, runner) -> None:
        loader = runner.train_dataloader
        per_process = loader.batch_size or loader.batch_sampler.batch_size
        wrappers = runner.optim_wrapper
        wrappers = list(wrappers.values()) if isinstance(
            wrappers, OptimWrapperDict) else [wrappers]
        accumulation = max(w._accumulative_counts for w in wrappers)
        total = runner.world_size * per_process * accumulation
        scale = runner.auto_scale_lr or {}
        if scale.get('enable', False):
            ratio = runner.world_size * per_process / scale['base_batch_size']
            scaling = (f'lr scaled by {ratio:g} from the recipe\'s batch '
                       f'{scale["base_batch_size"]}')
        else:
            scaling = 'lr not scaled (auto_scale_lr disabled)'
        lrs = [
            group['lr'] for w in wrappers for group in w.optimizer.param_groups
        ]
        runner.logger.info(
            f'Training scale: {runner.world_size} process(es) x '
            f'{per_process} images x {accumulation} accumulation step(s) = '
            f'total batch {total}; {scaling}; effective lr '
            f'{min(lrs):.4g}..{max(lrs):.4g} over {len(lrs)} groups.')
