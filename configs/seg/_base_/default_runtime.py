# Runtime of the segmentation configs: mmseg's, with mmitpn's hooks. mmseg
# keeps the default hooks in its schedules: the atomic checkpoint hook is
# set in schedules/adamw_poly-160k.py (and by the CPU demos, which have a
# schedule of their own). The Mask2Former configs build on mmseg's complete
# Mask2Former config, which brings mmseg's runtime itself:
# mask2former_itpn-base_8xb2-160k_ade20k-512x512.py repeats these hooks
# (tests/test_configs/test_config_layout.py keeps them equal).
_base_ = 'mmseg::_base_/default_runtime.py'

custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
]
