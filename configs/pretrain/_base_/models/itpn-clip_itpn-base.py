# iTPN-B CLIP pretraining (official clip_tpn_base_3324): relative position
# bias, layer scale 0.1, learnable position embedding, fpn_depth 1, the
# CLIP head with its auxiliary branch, an OpenAI CLIP ViT-B/16 teacher.
model = dict(
    type='iTPNCLIP',
    backbone=dict(type='HiViT', arch='itpn-base', img_size=224,
                  drop_path_rate=0.1, pos_embed_init='trunc_normal',
                  rel_pos_type='bias_table', layer_scale_init_value=0.1),
    neck=dict(type='iTPNPyramid', embed_dims=512, fpn_dim=256, fpn_depth=1),
    head=dict(type='iTPNCLIPHead', embed_dims=512, fpn_dim=256,
              teacher_dims=512, num_heads=8, grid_size=(14, 14)),
    teacher=dict(
        type='CLIPTeacher',
        model_name='ViT-B-16-quickgelu',
        # A local copy of OpenAI's CLIP ViT-B/16 as a state dict (open_clip
        # or OpenAI key names); nothing is downloaded.
        ckpt='checkpoints/clip/ViT-B-16.pth'))
