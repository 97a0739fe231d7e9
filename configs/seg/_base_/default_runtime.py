# Runtime of the segmentation configs: mmseg's, with mmitpn's hooks. mmseg
# keeps the default hooks in its schedules: the atomic checkpoint hook is
# set in schedules/adamw_poly-160k.py (and by the CPU demos, which have a
# schedule of their own). The Mask2Former configs build on mmseg's complete
# Mask2Former config, which brings mmseg's runtime itself:
# mask2former_itpn-base_8xb2-160k_ade20k-512x512.py repeats these hooks
# (tests/test_configs/test_config_layout.py keeps them equal): mmengine
# refuses this file beside mmseg's Mask2Former config (both define env_cfg,
# visualizer, ...), and a hooks part of its own under this file would put
# configs four mmitpn files deep (see det/_base_/default_runtime.py).
#
# Preemption-safe by default: a SIGTERM or SIGUSR1 saves a checkpoint after
# the current iteration and exits with code 75 (PreemptionHook). Training is
# iteration-based (ResumableIterBasedTrainLoop, set by the schedules): a
# resume skips the batches already trained without loading them and
# continues exactly. The schedules checkpoint every 4000 iterations (mmseg:
# 16000, Mask2Former 5000), the newest 3 kept: at an estimated 0.3-0.5 s per
# iteration of 8 GPUs x 2 images of 512 px, a job killed without notice
# loses at most 20-33 minutes.
_base_ = 'mmseg::_base_/default_runtime.py'

custom_hooks = [
    dict(type='mmitpn.IterationSeedHook'),
    dict(type='mmitpn.NonFiniteGuardHook'),
    dict(type='mmitpn.TrainingScaleLoggerHook'),
    dict(type='mmitpn.PreemptionHook'),
]
