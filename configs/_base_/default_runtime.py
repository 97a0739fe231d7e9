# Runtime of mmitpn's pretraining configs: the only place of their hooks.
# Classification, detection and segmentation configs inherit mmpretrain's,
# mmdet's and mmseg's runtime through configs/<task>/_base_/.
#
# Preemption-safe by default: a SIGTERM or SIGUSR1 (a cluster's notice before
# it ends or preempts the job) saves a checkpoint after the current iteration
# and exits with code 75 (PreemptionHook); the schedules' train loop
# (ResumableEpochBasedTrainLoop) resumes it exactly, inside an epoch too. No
# iteration checkpoints (SafeCheckpointHook's iter_interval): an ImageNet
# epoch is 313 iterations of 64x64 images (pixel) or 626 of 64x32 (CLIP), a
# few minutes of the cluster, and every epoch ends with a checkpoint already,
# so a job killed without notice loses at most that; checkpoints every few
# hundred iterations on top would be a storm of 1-4 GB writes.
default_scope = 'mmitpn'

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='mmitpn.SafeCheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

log_processor = dict(window_size=10)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)

# Randomness is a function of (seed, rank, iteration): resumed runs continue
# exactly as uninterrupted ones.
custom_hooks = [
    dict(type='IterationSeedHook'),
    dict(type='NonFiniteGuardHook'),
    dict(type='TrainingScaleLoggerHook'),
    dict(type='PreemptionHook'),
]
