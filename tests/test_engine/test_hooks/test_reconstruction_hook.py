# Copyright (c) mmitpn contributors. All rights reserved.
import types

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.engine.hooks import ReconstructionHook
from mmitpn.registry import MODELS

TINY = tiny_pixel_itpn(tiny_arch())


class Recorder:

    def __init__(self):
        self.images = []
        self.scalars = []
        self.lines = []

    def add_image(self, name, image, step):
        self.images.append((name, image, step))

    def add_scalars(self, scalars, step):
        self.scalars.append((scalars, step))

    def info(self, line):
        self.lines.append(line)


def fake_runner(model, work_dir, epoch, max_epochs=4, dataset=None):
    recorder = Recorder()
    return types.SimpleNamespace(
        logger=recorder,
        model=model,
        train_dataloader=types.SimpleNamespace(dataset=dataset),
        work_dir=str(work_dir),
        epoch=epoch,
        iter=epoch * 10,
        max_epochs=max_epochs,
        visualizer=recorder,
        train_loop=types.SimpleNamespace(max_epochs=max_epochs))


@pytest.mark.parametrize('backbone', ['HiViT', 'FastiTPN'])
def test_pictures_at_interval_fixed_masks_and_untouched_rng(
        tmp_path, backbone):
    paths = []
    for i in range(2):
        path = tmp_path / f'{i}.png'
        Image.fromarray(
            np.random.default_rng(i).integers(
                0, 255, (80, 70, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    cfg = dict(TINY, backbone=dict(TINY['backbone'], type=backbone))
    model = MODELS.build(cfg).train()
    hook = ReconstructionHook(paths, interval=2)
    runner = fake_runner(model, tmp_path, epoch=0)
    hook.after_train_epoch(runner)  # epoch 1: not a multiple of 2
    assert not (tmp_path / 'reconstructions').exists()

    torch.manual_seed(123)
    state = torch.get_rng_state()
    runner = fake_runner(model, tmp_path, epoch=1)
    hook.after_train_epoch(runner)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.training
    picture = np.asarray(
        Image.open(tmp_path / 'reconstructions' / 'epoch_2.png'))
    # Two rows of input | masked | prediction | pattern, labelled.
    assert picture.shape == (2 * (64 + 14), 4 * 64, 3)
    name, logged, step = runner.visualizer.images[0]
    assert name == 'reconstruction' and step == 2
    assert np.array_equal(logged, picture)
    (scalars, step), = runner.visualizer.scalars
    assert step == 2 and set(scalars) == {'reconstruction/pattern_r2'}
    score = scalars['reconstruction/pattern_r2']
    assert f'{score:.4f}' in runner.logger.lines[0]
    # The last epoch is always drawn, with the same masks.
    runner = fake_runner(model, tmp_path, epoch=2, max_epochs=3)
    hook.after_train_epoch(runner)
    again = np.asarray(
        Image.open(tmp_path / 'reconstructions' / 'epoch_3.png'))
    assert np.array_equal(again[:, 64:128], picture[:, 64:128])
    assert runner.visualizer.scalars[0][0] == scalars


def test_bad_images_and_models_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.png'):
        ReconstructionHook([str(tmp_path / 'nowhere.png')])
    with pytest.raises(ValueError, match='at least one image'):
        ReconstructionHook([])
    image = tmp_path / 'a.png'
    Image.new('RGB', (64, 64)).save(image)
    hook = ReconstructionHook([str(image)])
    with pytest.raises(TypeError, match='reconstruct'):
        hook.after_train_epoch(
            fake_runner(torch.nn.Linear(1, 1), tmp_path, epoch=0))


class FileList:

    def __init__(self, paths):
        self.paths = paths

    def __len__(self):
        return len(self.paths)

    def get_data_info(self, index):
        return dict(img_path=self.paths[index])


def test_a_number_of_images_spreads_over_the_training_dataset(tmp_path):
    paths = []
    for i in range(10):
        path = tmp_path / f'{i}.png'
        Image.new('RGB', (64, 64), (25 * i, 0, 0)).save(path)
        paths.append(str(path))
    model = MODELS.build(TINY).train()
    hook = ReconstructionHook(images=3)
    runner = fake_runner(model, tmp_path, epoch=0, dataset=FileList(paths))
    hook.before_train(runner)
    assert hook.images == [paths[0], paths[3], paths[6]]
    hook.after_train_epoch(runner)
    picture = np.asarray(
        Image.open(tmp_path / 'reconstructions' / 'epoch_1.png'))
    assert picture.shape == (3 * (64 + 14), 4 * 64, 3)
    # A dataset smaller than the number asked for gives all its images.
    hook = ReconstructionHook(images=4)
    hook.before_train(
        fake_runner(model, tmp_path, 0, dataset=FileList(paths[:2])))
    assert hook.images == paths[:2]
    with pytest.raises(ValueError, match='images=0'):
        ReconstructionHook(images=0)
    with pytest.raises(TypeError, match='get_data_info'):
        ReconstructionHook(images=2).before_train(
            fake_runner(model, tmp_path, 0, dataset=[1, 2]))
