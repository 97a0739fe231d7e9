# The recommended fast setting of the segmentation backbones, written once
# for every *-win16-gather8-wmig0.5_* config, which lists this part beside
# its family's config and takes `fast_backbone[arch]` and `fast_with_cp`.
#
# At 512x512 crops (32x32 units of 16 px) every main block attends within
# windows of 16x16 units (2x2 windows of the grid; 14 would pad the grid to
# 42x42 and cost more than global attention), 8 gathering tokens carry
# information across the windows, and from a quarter of the main blocks on
# (../../_base_/token_reduction_start.py) each window keeps half of its slots
# (window migration); the pyramid still gets the full grid. Windows and
# gathering change the attention pattern, so these configs fine-tune with the
# setting on.
_base_ = '../../_base_/token_reduction_start.py'

# Activation checkpointing of backbone and pyramid: off, as in the segmentation
# recipes; the estimated training peaks without it stay at most 17.7 GB
# (tools/analysis_tools/estimate_train_memory.py, the table in
# docs/benchmarks/downstream.md).
fast_with_cp = False
fast_backbone = {
    arch:
    dict(
        window_size=16,
        gathering_tokens=8,
        token_reduction=dict(
            type='window_migration', start_block=start, keep_ratio=0.5),
        with_cp=fast_with_cp)
    for arch, start in _base_.token_reduction_start.items()
}
