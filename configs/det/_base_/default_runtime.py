# Runtime of the detection configs: mmdet's, with mmitpn's atomic
# checkpoints (that resume exactly under any launcher) and hooks.
#
# Preemption-safe by default (with the schedules' train loop,
# ResumableEpochBasedTrainLoop): a SIGTERM or SIGUSR1 saves a checkpoint after
# the current iteration and exits with code 75 (PreemptionHook), and a
# checkpoint every 1000 iterations inside epochs, the newest one kept,
# bounds what a job killed without notice loses. An epoch of COCO is 1,833
# iterations of the 32x2-image Mask R-CNN and Cascade recipes and 7,330 of
# the 8x2-image DINO one: at an estimated 0.5-1 s per iteration, 1000
# iterations are 8-17 minutes, and a write of a 1-4 GB checkpoint at most
# every such interval costs about 1 % of the time.
#
# The DINO configs build on mmdet's complete DINO config, which brings
# mmdet's runtime itself, so dino-5scale_itpn-base_8xb2-12e_coco.py repeats
# these hooks (tests/test_configs/test_config_layout.py keeps the two
# equal). Writing them once would need the DINO part to inherit this file
# beside mmdet's DINO config, which mmengine refuses (two bases defining
# default_hooks, env_cfg, ...), or to re-spell mmdet's 150-line DINO config
# from its model and dataset parts; a hooks part of its own under the task
# runtimes (and the DINO and Mask2Former parts) would put 41 of the shipped
# configs four mmitpn files deep, beyond the limit of three.
_base_ = 'mmdet::_base_/default_runtime.py'

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
