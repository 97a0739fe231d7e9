_base_ = './itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py'

# OpenAI CLIP ViT-L/14 teacher (768-d), fed 196 px so that its 14x14 tokens
# match the student's units.
model = dict(
    head=dict(teacher_dims=768),
    teacher=dict(
        model_name='ViT-L-14-quickgelu',
        ckpt='checkpoints/clip/ViT-L-14.pth'))
