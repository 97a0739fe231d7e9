# Copyright (c) mmitpn contributors. All rights reserved.
"""The official checkpoints page works as written.

In a folder that holds the page's ``downloads/`` (random tensors with the
names and shapes of the official key listings, for the releases the suite
has a listing of and the base size or smaller), ``configs/``, ``tools/`` and
tiny datasets in the layouts the configs read, the page's converter commands
run as written, and each of its ``tools/train.py`` commands trains one
iteration of its shipped config at full model size (small images, learning
rate 0 so that the weights stay the ones the run started from), started
with ``--pretrained`` / ``--pretrained-neck`` as written. Every backbone and
pyramid tensor the run starts from is the converted file's, and no backbone
or pyramid key is missing but the relative position tables and ``fc_norm``
that a recipe adds to a pretraining checkpoint without them.
"""
import functools
import os
import os.path as osp
import re
import runpy
import sys

import pytest
import torch
from dataset_layouts import write_ade, write_coco, write_imagenet
from shipped_configs import load_config
from test_doc_commands import commands_of

from mmitpn.apis import fill_pretrained
from mmitpn.utils import extract_state_dict, load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = 'docs/user_guides/official_checkpoints.md'
COMMANDS = commands_of(PAGE)
CONVERSIONS = [
    c.argv[1:] for c in COMMANDS
    if c.argv[1].startswith('tools/model_converters/')
]
TRAININGS = [c.argv[1:] for c in COMMANDS if c.argv[1] == 'tools/train.py']
# The page's downloads the suite builds from an official key listing.
LISTINGS = {
    'downloads/itpn_base_pixel_1600e.pth':
    'keys_pixel_pretrain_base.txt',
    'downloads/itpn_base_pixel_in1k_ft.pth':
    'keys_pixel_ft_base.txt',
    'downloads/fast_itpn_tiny_1600e_1k.pt':
    'keys_fast_itpn_tiny_1112_patch16_224.txt',
}
# What a recipe adds to a backbone whose checkpoint lacks it (pixel
# pretraining has no relative position tables and no fc_norm).
ADDED_BY_RECIPES = re.compile(r'relative_position_bias_table$|^fc_norm\.')
ROW = re.compile(r'^\| `([\w.-]+)` \| .+? \| `([\w.-]+)` \|')
SMALL = 64


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory):
    """The folder the page's commands run in: ``configs/`` and ``tools/``
    of the repository, and the datasets the configs read."""
    root = tmp_path_factory.mktemp('official')
    for folder in ('configs', 'tools'):
        os.symlink(osp.join(REPO, folder), root / folder)
    write_imagenet(root / 'data' / 'imagenet')
    write_coco(root / 'data' / 'coco')
    write_ade(root / 'data' / 'ade' / 'ADEChallengeData2016')
    return root


@pytest.fixture
def converted(sandbox, key_listing, monkeypatch):
    """Run in ``sandbox``, after the page's downloads were made and
    converted with the page's commands (once per module)."""
    monkeypatch.chdir(sandbox)
    os.makedirs('downloads', exist_ok=True)
    for argv in CONVERSIONS:
        source, target = argv[1], argv[2]
        if source not in LISTINGS or osp.exists(target):
            continue
        torch.save(
            dict(model=key_listing(LISTINGS[source], realistic=True)), source)
        monkeypatch.setattr(sys, 'argv', argv)
        runpy.run_path(argv[0], run_name='__main__')
        assert osp.isfile(target)
    return sandbox


@functools.lru_cache(maxsize=None)
def read(path):
    return extract_state_dict(load_checkpoint_file(path))


def tensors(path, part):
    prefix = part + '.'
    return {
        key[len(prefix):]: value
        for key, value in read(path).items() if key.startswith(prefix)
    }


def test_every_release_has_the_converter_command_of_its_family():
    with open(osp.join(REPO, PAGE)) as f:
        rows = [ROW.match(line).groups() for line in f if ROW.match(line)]
    assert len(rows) == 10
    commands = {argv[1]: argv for argv in CONVERSIONS}
    for download, target in rows:
        script, _, written = commands[f'downloads/{download}']
        family = 'fast_itpn' if download.startswith('fast_itpn') else 'itpn'
        assert script == f'tools/model_converters/{family}_to_mmitpn.py'
        assert written == f'checkpoints/{target}'
    # The iTPN configs read the pretraining run's path of the page's table.
    with open(osp.join(REPO, PAGE)) as f:
        reads = re.findall(
            r'^\| `configs/\{cls,det[,seg]*\}/([\w.-]+)_\*` \| '
            r'`(work_dirs/[\w./-]+)` \|$', f.read(), re.M)
    assert len(reads) == 4
    for prefix, path in reads:
        config = [
            name for name in os.listdir(osp.join(REPO, 'configs', 'cls'))
            if name.startswith(prefix + '_')
        ][0]
        cfg = load_config(osp.join(REPO, 'configs', 'cls', config))
        assert cfg.model.backbone.init_cfg.checkpoint == path, config
    # The Fast-iTPN configs read the converted files as they are.
    for size in ('tiny', 'small', 'base', 'large'):
        config = [
            name for name in os.listdir(osp.join(REPO, 'configs', 'cls'))
            if name.startswith(f'fast-itpn-{size}_clip-l-1600e-pre_')
            and '_linear_' not in name
        ][0]
        cfg = load_config(osp.join(REPO, 'configs', 'cls', config))
        checkpoint = cfg.model.backbone.init_cfg.checkpoint
        assert checkpoint in {argv[2] for argv in CONVERSIONS}, checkpoint


def shrink(cfg):
    """Small images, one iteration, learning rate 0; the model stays."""
    scope = cfg.default_scope
    if scope == 'mmdet':
        # Few proposals and RoIs: the heads' cost, not the model's, shrinks.
        cfg.model.train_cfg.rpn_proposal.max_per_img = 16
        cfg.model.train_cfg.rcnn.sampler.num = 16
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
            dict(type='PackDetInputs')
        ]
    elif scope == 'mmseg':
        cfg.model.data_preprocessor.size = (SMALL, SMALL)
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs')
        ]
    else:
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(SMALL, SMALL)),
            dict(type='PackInputs')
        ]
    cfg.train_dataloader.update(
        batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.pipeline = pipeline
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=1)
    cfg.param_scheduler = []
    cfg.optim_wrapper.optimizer.lr = 0.
    return cfg


def check_started_from(model, part, path):
    """``model.<part>`` starts from every tensor of ``path``'s part (the
    position embedding and relative position tables resized to the
    config's grid) and misses only what recipes add; returns the missing
    keys."""
    theirs = tensors(path, part)
    ours = getattr(model, part).state_dict()
    missing = set(ours) - set(theirs)
    assert all(ADDED_BY_RECIPES.search(key) for key in missing), missing
    unused = set(theirs) - set(ours)
    assert all(key.startswith('fc_norm.') for key in unused), unused
    for key in set(ours) & set(theirs):
        if ours[key].shape == theirs[key].shape:
            assert torch.equal(ours[key], theirs[key]), key
        else:
            assert re.search(r'pos_embed|relative_position', key), key
    return missing


def holds(path, part):
    return bool(tensors(path, part))


@pytest.mark.parametrize(
    'argv',
    TRAININGS,
    ids=[
        f'{osp.basename(argv[1])[:-3]}<-{osp.basename(argv[3])}'
        f'{"+neck" * ("--pretrained-neck" in argv)}' for argv in TRAININGS
    ])
def test_training_starts_from_the_converted_files(argv, converted, monkeypatch,
                                                  train_one_iteration):
    train = runpy.run_path(osp.join(REPO, 'tools', 'train.py'))
    monkeypatch.setattr(sys, 'argv', argv)
    args = train['parse_args']()
    cfg = train['merge_args'](load_config(osp.join(REPO, args.config)), args)
    runner = train_one_iteration(shrink(cfg))
    missing = check_started_from(runner.model, 'backbone', args.pretrained)
    if 'fc.weight' in tensors(args.pretrained, 'head'):
        assert not missing  # a classifier: nothing to add
    if cfg.default_scope != 'mmpretrain':
        assert not any(key.startswith('fc_norm.') for key in missing)
    neck = args.pretrained_neck or args.pretrained
    if cfg.model.get('neck') is None:
        return
    if holds(neck, 'neck'):
        assert not check_started_from(runner.model, 'neck', neck)
    else:
        assert cfg.model.neck.init_cfg is None


def text_blocks(path):
    with open(osp.join(REPO, path)) as f:
        return re.findall(r'```text\n(.*?)```', f.read(), re.S)


def test_the_lines_the_page_shows_are_what_the_switch_says(converted):
    shown = [
        block.splitlines() for block in text_blocks(PAGE)
        if block.startswith('backbone: ')
    ]
    assert len(shown) == 2
    said = []
    for argv in TRAININGS:
        files = dict(zip(argv[2::2], argv[3::2]))
        cfg = load_config(osp.join(REPO, argv[1]))
        said.append(
            fill_pretrained(
                cfg,
                files['--pretrained'],
                files.get('--pretrained-neck'),
                verbose=False))
    for lines in shown:
        assert lines in said


def test_an_official_file_is_refused_as_the_page_shows(converted, capsys,
                                                       monkeypatch):
    refusal = [
        block.strip().lstrip() for block in text_blocks(PAGE)
        if 'train.py: error:' in block
    ]
    assert len(refusal) == 1
    monkeypatch.setattr(sys, 'argv', [
        'tools/train.py',
        'configs/cls/fast-itpn-tiny_clip-l-1600e-pre_16xb64-amp-coslr-100e_'
        'in1k.py', '--pretrained', 'downloads/fast_itpn_tiny_1600e_1k.pt'
    ])
    with pytest.raises(SystemExit) as exit:
        runpy.run_path('tools/train.py', run_name='__main__')
    assert exit.value.code == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == refusal[0]
