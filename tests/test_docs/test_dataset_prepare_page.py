# Copyright (c) mmitpn contributors. All rights reserved.
"""The dataset preparation page works as written.

In a folder that holds ``configs/``, ``tools/``, ``.venv`` and tiny datasets
in the page's layouts (ImageNet, COCO, ADE20K, a folder of images and one of
classes), its config files are saved where it says and its commands run:
``tools/misc/check_dataset.py`` reports every stage of every config, prints
what the page shows, and names what is missing in one line each; mmdet's
``browse_dataset.py`` draws the COCO samples.
"""
import contextlib
import io
import os
import os.path as osp
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dataset_layouts import write_ade, write_coco, write_imagenet, write_images
from test_doc_commands import commands_of, script_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = 'docs/user_guides/dataset_prepare.md'
COMMANDS = commands_of(PAGE)
CHECKS = [
    c.argv[1:] for c in COMMANDS if c.argv[1].endswith('check_dataset.py')
]
BROWSE = [
    c.argv[1:] for c in COMMANDS if c.argv[1].endswith('browse_dataset.py')
]
CLASSES = ('cat', 'dog', 'fox')


def blocks(language):
    with open(osp.join(REPO, PAGE)) as f:
        return re.findall(rf'```{language}\n(.*?)```', f.read(), re.S)


def make_sandbox(root: Path) -> Path:
    for folder in ('configs', 'tools'):
        os.symlink(osp.join(REPO, folder), root / folder)
    os.symlink(osp.dirname(osp.dirname(sys.executable)), root / '.venv')
    data = root / 'data'
    write_imagenet(data / 'imagenet')
    write_coco(data / 'coco')
    write_ade(data / 'ade' / 'ADEChallengeData2016')
    write_images(data / 'my_images', ['a/1.jpg', 'a/b/2.png', '3.jpg'])
    for split in ('train', 'val'):
        write_images(data / 'my_classes' / split,
                     [f'{name}/{split}.jpg' for name in CLASSES])
    for config in blocks('python'):
        path = root / config.splitlines()[0].lstrip('# ')
        path.parent.mkdir(exist_ok=True)
        path.write_text(config)
    return root


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory):
    return make_sandbox(tmp_path_factory.mktemp('datasets'))


def check(argv, monkeypatch):
    """Run ``check_dataset.py`` as written; its exit status and lines."""
    monkeypatch.setattr(sys, 'argv', argv)
    out = io.StringIO()
    status = 0
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_path(argv[0], run_name='__main__')
        except SystemExit as exit:
            status = exit.code
    lines = [
        line for line in out.getvalue().splitlines()
        if re.match(r'^(train|val|test): ', line)
    ]
    return status, lines


def test_the_page_names_its_commands():
    assert len(CHECKS) == 6 and len(BROWSE) == 1
    assert len(blocks('python')) == 2


@pytest.mark.parametrize(
    'argv', CHECKS, ids=[osp.basename(argv[1])[:-3] for argv in CHECKS])
def test_every_check_passes_on_the_layouts(argv, sandbox, monkeypatch):
    monkeypatch.chdir(sandbox)
    status, lines = check(argv, monkeypatch)
    assert status == 0, lines
    stages = [line.split(':')[0] for line in lines]
    assert stages[0] == 'train' and len(set(stages)) == len(stages)
    assert '/pretrain/' in argv[1] or 'my-images' in argv[1] or \
        stages == ['train', 'val', 'test'], lines
    if argv[1].startswith('configs/cls/'):
        # What the page shows for ImageNet.
        assert lines == [
            block for block in blocks('text')
            if block.startswith('train: ') and 'ImageNet' in block
        ][0].splitlines()
    if 'my-images' in argv[1]:
        assert lines[0].startswith('train: mmpretrain.CustomDataset under '
                                   'data/my_images: 3 samples')
    if 'my-classes' in argv[1]:
        assert 'val: mmpretrain.CustomDataset under data/my_classes: 3 ' \
            'samples' in lines[1]


def test_problems_are_one_line_each_as_the_page_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(make_sandbox(tmp_path))
    os.remove('data/coco/train2017/000000000001.jpg')
    os.remove('data/coco/annotations/instances_val2017.json')
    shutil.rmtree('data/ade')
    shown = [block for block in blocks('text') if 'error:' in block]
    for argv in CHECKS:
        if argv[1].startswith(('configs/det/', 'configs/seg/')):
            status, lines = check(argv, monkeypatch)
            assert status == 1
            page = [
                block.splitlines() for block in shown
                if block.startswith(lines[0])
            ]
            assert page and lines[:len(page[0])] == page[0], lines


def test_an_unreadable_image_and_the_options(sandbox, tmp_path, monkeypatch):
    monkeypatch.chdir(sandbox)
    pretrain = [argv for argv in CHECKS if '/pretrain/' in argv[1]][0]
    status, lines = check(pretrain + ['--num-samples', '4'], monkeypatch)
    assert status == 0 and 'the first 4 through' in lines[0]
    broken = tmp_path / 'imagenet'
    shutil.copytree('data/imagenet', broken)
    (broken / 'train' / 'n01440760' / '0_0.JPEG').write_bytes(b'not a jpeg')
    status, lines = check(
        pretrain +
        ['--cfg-options', f'train_dataloader.dataset.data_root={broken}'],
        monkeypatch)
    assert status == 1
    assert lines == [
        'train: error: train_dataloader.dataset: sample 0 '
        f'({broken}/train/n01440760/0_0.JPEG) was dropped by the pipeline '
        '(an unreadable image?); replace or remove the file.'
    ]
    cls = [argv for argv in CHECKS if argv[1].startswith('configs/cls/')][0]
    status, lines = check(cls + ['--stages', 'val'], monkeypatch)
    assert status == 0 and [line[:4] for line in lines] == ['val:']


def test_mmdet_browse_dataset_draws_the_coco_samples(sandbox):
    argv = BROWSE[0]
    # (the page's site-packages path is .venv's Python 3.11: here the
    # running interpreter's, which .venv links to)
    script = script_path(argv[0])
    result = subprocess.run(
        [osp.join(sandbox, '.venv', 'bin', 'python'), script] + argv[1:],
        cwd=sandbox,
        env=dict(os.environ, PYTHONPATH=REPO),
        capture_output=True,
        text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    out = sandbox / argv[argv.index('--output-dir') + 1]
    assert sorted(os.listdir(out)) == ['000000000000.jpg', '000000000001.jpg']
