# Copyright (c) mmitpn contributors. All rights reserved.
"""Parameters and multiply-accumulates of a config's model at a given size.

Works for classifiers, detectors and segmentors (the model's ``'tensor'``
forward: backbone, neck and heads; no post-processing) and for pretraining
models (full image, no masking). MACs count matrix products, convolutions
and attention (``torch.utils.flop_counter``) of one forward with random
weights on the CPU (a detector at 1024 px takes about a minute; its proposal
count, hence the RoI heads' share, depends on the random weights, and is
printed).

mmpretrain's and mmdet's tools of this name are scripts, not importable
code; the library call they make, ``mmengine.analysis.
get_model_complexity_info``, traces the model with ``torch.jit`` and counts
no ``aten::scaled_dot_product_attention`` (it logs "Unsupported operator"),
i.e. misses the attention products of every block: on a tiny HiViT at
64 px it skips both attention calls and reports 2.92 M against the 2.82 M
MACs of ``torch.utils.flop_counter`` here. This tool is therefore a thin
call of PyTorch's counter (``mmitpn.utils.count_macs``).

Examples:
    python tools/analysis_tools/get_flops.py \
        configs/det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py \
        --shape 800 1344
    python tools/analysis_tools/get_flops.py CONFIG --shape 1024
"""
import argparse

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import mmitpn  # noqa: F401  (registers the mmitpn:: config prefix)
from mmitpn.utils import count_macs
from mmitpn.utils.cli import (add_debug_argument, add_shape_argument,
                              image_shape, run_tool)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    add_shape_argument(parser)
    add_debug_argument(parser)
    return parser.parse_args()


def data_samples(cfg: Config, shape):
    """Data samples with the metadata the tensor forward of a task needs."""
    scope = cfg.get('default_scope')
    metainfo = dict(
        img_shape=shape,
        ori_shape=shape,
        pad_shape=shape,
        batch_input_shape=shape,
        scale_factor=(1., 1.))
    if scope == 'mmdet':
        from mmdet.structures import DetDataSample
        return [DetDataSample(metainfo=metainfo)]
    if scope == 'mmseg':
        from mmseg.structures import SegDataSample
        return [SegDataSample(metainfo=metainfo)]
    return None


def main():
    args = parse_args()
    shape = image_shape(args.shape)
    cfg = Config.fromfile(args.config)
    scope = cfg.get('default_scope', 'mmitpn')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
        model.eval()
        images = torch.randn(1, 3, *shape)
        samples = data_samples(cfg, shape)
        with torch.no_grad():
            macs = count_macs(lambda: model(images, samples, mode='tensor'))
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f'config: {args.config}')
    print(f'input: 3x{shape[0]}x{shape[1]}')
    print(f'GMACs: {macs / 1e9:.1f} (matrix products, convolutions, '
          'attention)')
    print(f'parameters: {params / 1e6:.2f} M ({trainable / 1e6:.2f} M '
          'trainable)')


if __name__ == '__main__':
    run_tool(main)
