# Runtime of the classification configs: mmpretrain's, with mmitpn's
# atomic checkpoints (that resume exactly under any launcher) and hooks.
#
# Preemption-safe by default (with the schedules' train loop,
# ResumableEpochBasedTrainLoop): a SIGTERM or SIGUSR1 saves a checkpoint after
# the current iteration and exits with code 75 (PreemptionHook), and a
# checkpoint every 1000 iterations inside epochs, the newest one kept,
# bounds what a job killed without notice loses. An epoch of the ImageNet
# recipes is 1,251 iterations (batch 1024), of the 640 px Fast-iTPN-L one
# 10,009 (batch 128): at an estimated 0.2-1 s per iteration on A100s (224 px
# base to 640 px large), 1000 iterations are 3-17 minutes, and a write of
# 1-4 GB every such interval costs about 1 % of the time. 1000 is a multiple
# of every shipped gradient accumulation (1 and 4).
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_hooks = dict(
    checkpoint=dict(
        type='mmitpn.SafeCheckpointHook',
        iter_interval=1000,
        max_keep_iter_ckpts=1))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
    dict(type='mmitpn.PreemptionHook'),
]
