# Copyright (c) mmitpn contributors. All rights reserved.
"""Write the model-zoo metadata: ``configs/<task>/metafile.yml`` for every
shipped config and ``model-index.yml`` importing them (OpenMMLab format,
read by ``mim search``, ``mmpretrain.get_model`` and the inferencers).

Parameters and FLOPs (multiply-accumulates, OpenMMLab's convention) are
computed from the configs at full size on the meta device
(``mmitpn.utils.complexity.zoo_complexity`` says what each task counts).

Results are the published ones (the iTPN paper's tables, the Fast-iTPN
repository's), marked ``Source`` in each entry: mmitpn has not reproduced
them (no ImageNet, COCO or ADE20K training was run here). Run it after
adding or changing a config: the test suite recomputes every number and
fails on a difference above 1 % (``tests/test_model_index.py``).

Example:
    python .dev_scripts/model_index.py         # rewrite the metafiles
"""
import argparse
import glob
import os.path as osp
import re
from typing import Dict, List, Optional

import yaml
from mmengine.config import Config

import mmitpn  # noqa: F401  (registers mmitpn's modules)
from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.complexity import zoo_complexity

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TASKS = ('pretrain', 'cls', 'det', 'seg')
PAPER = 'https://arxiv.org/abs/2211.12735'
CODE = 'https://github.com/sunsmarterjie/iTPN'
FAST_WEIGHTS = 'https://github.com/sunsmarterjie/iTPN/tree/main/fast_itpn'

PAPER_TABLE_1 = 'iTPN paper (CVPR 2023), Table 1; not reproduced by mmitpn'
PAPER_TABLE_2 = 'iTPN paper (CVPR 2023), Table 2; not reproduced by mmitpn'
FAST_README = ('official Fast-iTPN repository README; not reproduced by '
               'mmitpn')
FAST_PAPER_DINO = ('Fast-iTPN paper (TPAMI 2024, arXiv 2211.12735 v2+), '
                   'DINO 1x; not reproduced by mmitpn')
FAST_PAPER_MASKDINO = (
    'Fast-iTPN paper (TPAMI 2024, arXiv 2211.12735 v2+), MaskDINO (not in '
    'mmdet or mmseg; this Mask2Former config is its nearest available '
    'counterpart); not reproduced by mmitpn')


def _cls(top1: float, source: str) -> List[dict]:
    return [
        dict(
            Task='Image Classification',
            Dataset='ImageNet-1k',
            Metrics={'Top 1 Accuracy': top1},
            Source=source)
    ]


def _det(box: float, mask: float) -> List[dict]:
    return [
        dict(
            Task='Object Detection',
            Dataset='COCO',
            Metrics={'box AP': box},
            Source=PAPER_TABLE_2),
        dict(
            Task='Instance Segmentation',
            Dataset='COCO',
            Metrics={'mask AP': mask},
            Source=PAPER_TABLE_2)
    ]


def _det_box(box: float, source: str) -> List[dict]:
    return [
        dict(
            Task='Object Detection',
            Dataset='COCO',
            Metrics={'box AP': box},
            Source=source)
    ]


def _seg(miou: float, source: str = PAPER_TABLE_2) -> List[dict]:
    return [
        dict(
            Task='Semantic Segmentation',
            Dataset='ADE20K',
            Metrics={'mIoU': miou},
            Source=source)
    ]


# Published results of the setting each config reproduces.
RESULTS: Dict[str, List[dict]] = {
    'itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k':
    _cls(85.5, PAPER_TABLE_1),
    'itpn-base_clip-b-800e-pre_32xb32-amp-coslr-100e_in1k':
    _cls(86.2, PAPER_TABLE_1),
    'itpn-large_pixel-1600e-pre_32xb32-amp-coslr-50e_in1k':
    _cls(86.7, PAPER_TABLE_1),
    'itpn-large_clip-l-300e-pre_64xb16-amp-coslr-50e_in1k':
    _cls(87.8, PAPER_TABLE_1),
    'fast-itpn-tiny_clip-l-1600e-pre_16xb64-amp-coslr-100e_in1k':
    _cls(85.1, FAST_README),
    'fast-itpn-small_clip-l-1600e-pre_16xb64-amp-coslr-100e_in1k':
    _cls(86.4, FAST_README),
    'fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k':
    _cls(87.4, FAST_README),
    'fast-itpn-large_clip-l-1600e-pre_32xb4-accum4-amp-coslr-20e_in1k-640px':
    _cls(89.5, FAST_README),
    'itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco':
    _det(53.0, 46.5),
    'itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-3x_coco':
    _det(54.0, 47.4),
    'itpn-base_pixel-1600e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco':
    _det(56.0, 48.5),
    'itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-1x_coco':
    _det(53.2, 46.6),
    'itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-3x_coco':
    _det(54.1, 47.5),
    'itpn-base_clip-b-800e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco':
    _det(56.1, 48.6),
    'itpn-large_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco':
    _det(55.6, 48.6),
    'itpn-large_clip-l-300e-pre_mask-rcnn_32xb2-amp-1x_coco':
    _det(55.2, 48.2),
    # The official segmentation recipe (lr 3e-5) is the one with an
    # ImageNet-fine-tuned backbone.
    'itpn-base_pixel-1600e-in1k-ft-pre_upernet_8xb2-amp-160k_ade20k-512x512':
    _seg(53.5),
    'itpn-base_clip-b-800e-in1k-ft-pre_upernet_8xb2-amp-160k_ade20k-512x512':
    _seg(54.7),
    'itpn-large_pixel-1600e-in1k-ft-pre_upernet_8xb2-amp-160k_ade20k-512x512':
    _seg(56.1),
    'fast-itpn-base_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco':
    _det_box(58.4, FAST_PAPER_DINO),
    'fast-itpn-large_clip-l-1600e-pre_dino-5scale_8xb2-12e_coco':
    _det_box(58.8, FAST_PAPER_DINO),
    'fast-itpn-base_clip-l-1600e-pre_mask2former_8xb2-160k_ade20k-512x512':
    _seg(57.5, FAST_PAPER_MASKDINO),
    'fast-itpn-large_clip-l-1600e-pre_mask2former_8xb2-160k_ade20k-512x512':
    _seg(58.7, FAST_PAPER_MASKDINO),
}

# The official release files (docs/user_guides/official_checkpoints.md
# gives each one's converter command): the name of the converted file, which
# is the name stem of the configs that start from it, -> (release file,
# download address).
RELEASES = {
    'itpn-base_pixel-1600e-pre':
    ('itpn_base_pixel_1600e.pth', 'https://drive.google.com/file/d/'
     '1HxW37BOEhIE9UNgHq0zblK0fTy2-IyzM/view?usp=sharing'),
    'itpn-base_clip-b-800e-pre':
    ('itpn_base_clip_800e.pth', 'https://drive.google.com/file/d/'
     '1H51Zusrvlj8RjcWA7yuUyeqaVhmndSeN/view?usp=share_link'),
    'itpn-large_pixel-1600e-pre':
    ('itpn_large_pixel_1600e.pth', 'https://drive.google.com/file/d/'
     '1TYCaepVflm0xMrQefG5Sj4ityXYbJLFt/view?usp=share_link'),
    'itpn-large_clip-l-300e-pre':
    ('itpn_large_clip_300e.pth', 'https://drive.google.com/file/d/'
     '1gyyjcdMvAQsz2xC7ei-rEd7G4po2spy4/view?usp=share_link'),
    'fast-itpn-tiny_clip-l-1600e-pre':
    ('fast_itpn_tiny_1600e_1k.pt', 'https://drive.google.com/file/d/'
     '1Ze9RkJggxxi58Dl7sqWrf2TNOSnRK4Wi/view?usp=sharing'),
    'fast-itpn-small_clip-l-1600e-pre':
    ('fast_itpn_small_1600e_1k.pt', 'https://drive.google.com/file/d/'
     '1Wvk5kQSh8fWQCUwzAp7eaVpmOi3D5_H4/view?usp=sharing'),
    'fast-itpn-base_clip-l-1600e-pre':
    ('fast_itpn_base_clipl_e1600.pt', 'https://drive.google.com/file/d/'
     '1ADXPV95XpWb1ROMCih1n3AD52fGdr8C_/view?usp=sharing'),
    'fast-itpn-large_clip-l-1600e-pre':
    ('fast_itpn_large_1600e_1k.pt', 'https://drive.google.com/file/d/'
     '16uybbJ23Fp7lnGNYL5I198glHGhwn_y2/view?usp=sharing'),
}
# A backbone setting in a config's name (``itpn-base-migration-keep0.5``,
# ``fast-itpn-base-win14-gather8-wmig0.5``): windows, gathering tokens, token
# migration over the grid or within windows. The weights are the backbone's.
BACKBONE_SETTING = re.compile(r'(-(migration-keep|win|gather|wmig)[\d.]+)+$')
# Pretraining configs whose recipe made a release.
PRETRAINING_RELEASES = {
    'itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k':
    'itpn-base_pixel-1600e-pre',
    'itpn-clip-b_itpn-base_64xb32-amp-coslr-800e_in1k':
    'itpn-base_clip-b-800e-pre',
    'itpn-pixel_itpn-large_64xb64-amp-coslr-1600e_in1k':
    'itpn-large_pixel-1600e-pre',
    'itpn-clip-l_itpn-large_64xb32-amp-coslr-300e_in1k':
    'itpn-large_clip-l-300e-pre',
}


def release_of(task: str, name: str) -> Optional[dict]:
    """The official release a config reproduces (pretraining) or starts
    from (the others: the backbone, and the pyramid where the release holds
    one; an ``in1k-ft`` recipe's pyramid), as ``Converted From``."""
    if task == 'pretrain':
        stem = PRETRAINING_RELEASES.get(name)
    else:
        arch, pretraining = name.split('_')[:2]
        arch = BACKBONE_SETTING.sub('', arch)
        stem = f'{arch}_{pretraining.replace("-in1k-ft-pre", "-pre")}'
    if stem not in RELEASES:
        return None
    file, url = RELEASES[stem]
    return dict(Weights=url, Code=CODE, File=file)


def configs(task: str) -> List[str]:
    """The task's configs (demos included), relative to the repository."""
    paths = sorted(
        glob.glob(osp.join(REPO, 'configs', task, '*.py')) +
        glob.glob(osp.join(REPO, 'configs', task, 'demo', '*.py')))
    return [osp.relpath(p, REPO) for p in paths]


def training_metadata(config: str) -> dict:
    cfg = Config.fromfile(osp.join(REPO, config))
    metadata = {}
    train_cfg = cfg.get('train_cfg') or {}
    if train_cfg.get('max_epochs'):
        metadata['Epochs'] = train_cfg['max_epochs']
    elif train_cfg.get('max_iters'):
        metadata['Iterations'] = train_cfg['max_iters']
    scale = cfg.get('auto_scale_lr') or {}
    accumulation = (cfg.get('optim_wrapper')
                    or {}).get('accumulative_counts', 1)
    if scale.get('base_batch_size'):
        metadata['Batch Size'] = scale['base_batch_size'] * accumulation
    return metadata


def collection_of(config: str) -> str:
    name = osp.basename(config)
    if name.startswith('fast-itpn'):
        return 'Fast-iTPN'
    if name.startswith('hivit-demo'):
        return 'iTPN CPU demos'
    return 'iTPN'


def training_data(task: str, config: str) -> List[str]:
    if '/demo/' in config:
        return ['generated demo data']
    return {
        'pretrain': ['ImageNet-1k'],
        'cls': ['ImageNet-1k'],
        'det': ['COCO'],
        'seg': ['ADE20K']
    }[task]


def model_entry(task: str, config: str) -> dict:
    name = osp.splitext(osp.basename(config))[0]
    params, flops = zoo_complexity(
        Config.fromfile(osp.join(REPO, config)), task)
    metadata = dict(Parameters=params, FLOPs=flops)
    metadata.update(training_metadata(config))
    metadata['Training Data'] = training_data(task, config)
    entry = {
        'Name': name,
        'In Collection': collection_of(config),
        'Config': config,
        'Metadata': metadata,
        'Results': RESULTS.get(name),
        'Weights': None,
    }
    release = release_of(task, name)
    if release:
        entry['Converted From'] = release
    return entry


COLLECTIONS = [
    dict(
        Name='iTPN',
        Metadata=dict(Architecture=['HiViT', 'iTPN pyramid']),
        Paper=dict(
            Title='Integrally Pre-Trained Transformer Pyramid Networks',
            URL=PAPER),
        README='README.md',
        Code=dict(URL=CODE)),
    dict(
        Name='Fast-iTPN',
        Metadata=dict(Architecture=['Fast-iTPN', 'iTPN pyramid']),
        Paper=dict(
            Title='Fast-iTPN: Integrally Pre-Trained Transformer Pyramid '
            'Network with Token Migration',
            URL=PAPER),
        README='README.md',
        Code=dict(URL=FAST_WEIGHTS)),
    dict(
        Name='iTPN CPU demos',
        Metadata=dict(Architecture=['HiViT', 'iTPN pyramid']),
        Paper=dict(
            Title='Integrally Pre-Trained Transformer Pyramid Networks',
            URL=PAPER),
        README='README.md'),
]


def write() -> None:
    for task in TASKS:
        entries = [model_entry(task, config) for config in configs(task)]
        path = osp.join(REPO, 'configs', task, 'metafile.yml')
        with open(path, 'w') as f:
            f.write('# Written by .dev_scripts/model_index.py; Results are '
                    'published numbers (see Source).\n')
            # Collections are defined once, in the first metafile.
            content = dict(Models=entries)
            if task == TASKS[0]:
                content = dict(Collections=COLLECTIONS, Models=entries)
            yaml.safe_dump(content, f, sort_keys=False, width=100)
        print(f'{path}: {len(entries)} models')
    with open(osp.join(REPO, 'model-index.yml'), 'w') as f:
        yaml.safe_dump(
            dict(Import=[f'configs/{task}/metafile.yml' for task in TASKS]),
            f,
            sort_keys=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_debug_argument(parser)
    parser.parse_args()
    write()


if __name__ == '__main__':
    run_tool(main)
