# Fast-iTPN-B, CLIP-L distilled pretraining: linear probe on the frozen
# backbone (MAE's recipe, as for iTPN).
_base_ = ['./_base_/itpn-base_linear_in1k.py']

model = dict(
    backbone=dict(
        _delete_=True,
        type='mmitpn.FastiTPN',
        arch='fast-itpn-base',
        img_size=224,
        out_type='avg_featmap',
        final_norm=False,
        frozen_stages=3,
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/fast-itpn-base_clip-l-1600e-pre.pth',
            prefix='backbone.')))
