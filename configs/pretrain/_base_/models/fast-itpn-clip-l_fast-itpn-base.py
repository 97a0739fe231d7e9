# Fast-iTPN-B CLIP pretraining with an OpenAI CLIP ViT-L/14 teacher, mmitpn's
# reading of the Fast-iTPN paper (its pretraining code is not released): the
# iTPN CLIP objective (pyramid and auxiliary branch, SmoothL1 to the
# teacher's patch tokens) on the full sequence, with a learned 128-channel
# (D/4) mask token replacing all 16 sub-tokens of every masked unit right
# after the patch embedding.
model = dict(
    type='iTPNCLIP',
    backbone=dict(type='FastiTPN', arch='fast-itpn-base', img_size=224,
                  drop_path_rate=0.1, layer_scale_init_value=0.1,
                  out_type='raw'),
    neck=dict(type='iTPNPyramid', embed_dims=512, fpn_dim=256, fpn_depth=1),
    head=dict(type='iTPNCLIPHead', embed_dims=512, fpn_dim=256,
              teacher_dims=768, num_heads=8, grid_size=(14, 14)),
    teacher=dict(
        type='CLIPTeacher',
        model_name='ViT-L-14-quickgelu',
        # A local copy of OpenAI's CLIP ViT-L/14 as a state dict (open_clip
        # or OpenAI key names); nothing is downloaded.
        ckpt='checkpoints/clip/ViT-L-14.pth'))
