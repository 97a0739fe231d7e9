# Copyright (c) mmitpn contributors. All rights reserved.
"""Run an mmitpn classifier, detector or segmentor on images through the
OpenMMLab inferencers and save the pictures.

The task follows the config: mmpretrain's ``ImageClassificationInferencer``
(a config path or a model-index name, see ``mmitpn.apis``), mmdet's
``DetInferencer`` or mmseg's ``MMSegInferencer``. Class names and palette
come from the checkpoint's ``meta.dataset_meta``, which checkpoints written
by ``tools/train.py`` carry.

Examples (``make demo-det`` writes the image and the checkpoint; more in
docs/user_guides/inference.md):
    CFG=configs/det/demo/hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_\
shapes-coco-128px.py
    python demo/image_demo.py data/shapes_coco/val/00000.png $CFG \
        work_dirs/demo_det/epoch_6.pth --out-dir vis
    python demo/image_demo.py IMAGE \
        fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k CHECKPOINT
"""
import argparse
import os
import os.path as osp
from typing import List, Union

import numpy as np
from mmengine.config import Config

import mmitpn  # noqa: F401  (registers mmitpn's modules)
from mmitpn.apis import register_model_index
from mmitpn.utils import require_weights
from mmitpn.utils.cli import add_debug_argument, run_tool


def task_of(config: Config) -> str:
    scope = config.get('default_scope', 'mmpretrain')
    return dict(mmdet='det', mmseg='seg').get(scope, 'cls')


def load_config(config: Union[str, Config]) -> Config:
    if isinstance(config, Config):
        return config
    if osp.isfile(config):
        return Config.fromfile(config)
    register_model_index()
    from mmpretrain.apis import ModelHub
    return ModelHub.get(config).config


def infer(images: List[str],
          config: Union[str, Config],
          checkpoint: str,
          out_dir: str,
          device: str = 'cpu',
          allow_missing: bool = False) -> dict:
    """Predictions of every image; pictures go to ``out_dir``.

    Stops if the checkpoint lacks tensors of the model (see
    :func:`mmitpn.utils.require_weights`) unless ``allow_missing``.
    """
    cfg = load_config(config)
    task = task_of(cfg)
    os.makedirs(out_dir, exist_ok=True)
    if task == 'det':
        from mmdet.apis import DetInferencer
        inferencer = DetInferencer(
            cfg, weights=checkpoint, device=device, show_progress=False)
        require_weights(inferencer.model, checkpoint, allow_missing)
        return inferencer(images, out_dir=out_dir, no_save_pred=False)
    if task == 'seg':
        from mmseg.apis import MMSegInferencer
        inferencer = MMSegInferencer(cfg, weights=checkpoint, device=device)
        require_weights(inferencer.model, checkpoint, allow_missing)
        return inferencer(images, out_dir=out_dir, return_vis=True)
    from mmpretrain.apis import ImageClassificationInferencer
    inferencer = ImageClassificationInferencer(
        cfg, pretrained=checkpoint, device=device)
    require_weights(inferencer.model, checkpoint, allow_missing)
    return dict(predictions=inferencer(images, show_dir=out_dir))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('config', help='config file or model-index name')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out-dir', default='work_dirs/image_demo')
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--allow-missing',
        action='store_true',
        help='predict even if the checkpoint lacks tensors of the model')
    add_debug_argument(parser)
    return parser.parse_args()


def summarise(prediction) -> str:
    """One line for a prediction of any of the three inferencers."""
    if not isinstance(prediction, dict):  # a segmentation map
        classes = sorted(int(c) for c in np.unique(prediction))
        return f'segmentation map {tuple(prediction.shape)}, classes {classes}'
    if 'pred_class' in prediction:
        return (f"{prediction['pred_class']} "
                f"(score {prediction['pred_score']:.3f})")
    top = [(label, round(score, 3)) for label, score in zip(
        prediction['labels'][:5], prediction['scores'][:5])]
    return f'{len(prediction["labels"])} instances, top (label, score): {top}'


def main():
    args = parse_args()
    results = infer(args.images, args.config, args.checkpoint, args.out_dir,
                    args.device, args.allow_missing)
    predictions = results['predictions']
    if not isinstance(predictions, list):
        predictions = [predictions]
    for image, prediction in zip(args.images, predictions):
        print(f'{image}: {summarise(prediction)}')
    print(f'pictures in {args.out_dir}')


if __name__ == '__main__':
    run_tool(main)
