# Runtime of the classification configs: mmpretrain's, with mmitpn's
# atomic checkpoints (that resume exactly under any launcher) and hooks.
_base_ = 'mmpretrain::_base_/default_runtime.py'

default_hooks = dict(checkpoint=dict(type='mmitpn.SafeCheckpointHook'))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
