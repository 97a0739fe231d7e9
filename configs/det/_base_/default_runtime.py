# Runtime of the detection configs: mmdet's, with mmitpn's atomic
# checkpoints (that resume exactly under any launcher) and hooks. The DINO
# configs build on mmdet's complete DINO config, which brings mmdet's
# runtime itself: dino-5scale_itpn-base_8xb2-12e_coco.py repeats these
# hooks (tests/test_configs/test_config_layout.py keeps the two equal).
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(checkpoint=dict(type='mmitpn.SafeCheckpointHook'))
custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
