_base_ = './itpn-pixel_itpn-base_64xb64-amp-coslr-400e_in1k.py'

# mmpretrain 1.2.0's iTPN pixel network (HiViT 4+4+24, 6 decoder blocks,
# PyTorch-default epsilon in decoder_embed): its loss equals mmpretrain's
# for the same weights, and tools/benchmarks/benchmark_pretrain.py
# compares the two implementations with it.
model = dict(backbone=dict(arch='mmpretrain-base'),
             head=dict(decoder_depth=6, embed_norm_eps=1e-5))
