# The recommended fast setting of the detection backbones, written once for
# every *-win14-gather8-wmig0.5_* config, which lists this part beside its
# family's config and takes `fast_backbone[arch]` and `fast_with_cp`.
#
# At 1344x800 inputs (about 50x84 units of 16 px) every main block attends
# within windows of 14x14 units, 8 gathering tokens carry information across
# the windows, and from a quarter of the main blocks on (block 6 of iTPN-B's
# 24; ../../_base_/token_reduction_start.py) each window keeps half of its
# slots (window migration); the pyramid still gets the full grid. For iTPN-B
# that is 415.9 GMACs of backbone and pyramid instead of 939.8 with global
# attention (docs/user_guides/detection.md). Windows and gathering change the
# attention pattern, so these configs fine-tune with the setting on.
_base_ = '../../_base_/token_reduction_start.py'

# Activation checkpointing of backbone and pyramid (the rule and the table
# in docs/benchmarks/downstream.md, made with
# tools/analysis_tools/estimate_train_memory.py): off where the estimated
# training peak without it leaves a quarter of an 80 GB GPU free, as
# recomputation costs about 1.15x a step. Mask R-CNN and Cascade (2 images
# of 1344x800 per GPU, fp16 AMP) stay at most 25.1 GB.
fast_with_cp = False
# DINO trains in fp32 and its deformable encoder keeps more than the whole
# backbone. Its estimate (counted through mmcv's CPU path of deformable
# attention, which keeps at least what the CUDA kernel keeps: an upper
# bound) exceeds 60 GB without checkpointing for the base and large sizes.
fast_dino_with_cp = {
    'itpn-base': True,
    'itpn-large': True,
    'fast-itpn-tiny': False,
    'fast-itpn-small': False,
    'fast-itpn-base': True,
    'fast-itpn-large': True,
}
fast_backbone = {
    arch:
    dict(
        window_size=14,
        gathering_tokens=8,
        token_reduction=dict(
            type='window_migration', start_block=start, keep_ratio=0.5),
        with_cp=fast_with_cp)
    for arch, start in _base_.token_reduction_start.items()
}
