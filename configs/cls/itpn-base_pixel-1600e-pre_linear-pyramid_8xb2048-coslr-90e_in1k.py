# iTPN-B, pixel pretraining (1600 epochs): linear probe on the frozen
# backbone and the frozen pretrained pyramid (every level and the backbone's
# stride-16 map averaged and concatenated: 3 x 256 + 512 channels).
_base_ = './itpn-base_pixel-1600e-pre_linear_8xb2048-coslr-90e_in1k.py'

pretrained = ('work_dirs/itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k/'
              'epoch_1600.pth')
model = dict(
    backbone=dict(out_indices=(0, 1, 2), out_type='featmap'),
    neck=dict(
        _delete_=True,
        type='mmitpn.iTPNLinearProbeNeck',
        pyramid=dict(
            type='iTPNPyramid',
            embed_dims=512,
            fpn_dim=256,
            fpn_depth=2,
            init_cfg=dict(
                type='Pretrained', checkpoint=pretrained, prefix='neck.'))),
    head=dict(in_channels=3 * 256 + 512))
