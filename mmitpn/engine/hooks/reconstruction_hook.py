# Copyright (c) mmitpn contributors. All rights reserved.
"""Reconstruction pictures of fixed images while pixel pretraining runs."""
import os
import os.path as osp
from typing import Sequence

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from PIL import Image

from mmitpn.registry import HOOKS
from mmitpn.visualization import draw_reconstruction, load_image


@HOOKS.register_module()
class ReconstructionHook(Hook):
    """Every ``interval`` epochs (and after the last), draw
    ``input | masked | prediction | pattern`` for a fixed set of images
    into ``<work_dir>/<out_dir>/epoch_<n>.png`` and the visualiser's
    backends (a TensorBoard image panel with ``--tensorboard``).

    Only what the model computes is drawn (see
    :func:`mmitpn.visualization.draw_reconstruction`): hidden units'
    brightness and contrast come from the visible units. The masks are the
    same at every epoch (``seed``) and drawing leaves the training random
    state untouched, so a run with the hook trains exactly as one without.

    Args:
        images (Sequence[str]): Image files, resized and centre-cropped to
            the backbone's input size.
        interval (int): Epochs between pictures. Defaults to 1.
        out_dir (str): Folder in the work dir. Defaults to
            ``'reconstructions'``.
        seed (int): Seed of the masks. Defaults to 0.
    """

    priority = 'LOW'

    def __init__(self,
                 images: Sequence[str],
                 interval: int = 1,
                 out_dir: str = 'reconstructions',
                 seed: int = 0) -> None:
        if not images:
            raise ValueError('ReconstructionHook needs at least one image.')
        missing = [path for path in images if not osp.isfile(path)]
        if missing:
            raise FileNotFoundError(
                f'ReconstructionHook: no such image(s) {missing}.')
        self.images = list(images)
        self.interval = interval
        self.out_dir = out_dir
        self.seed = seed

    def after_train_epoch(self, runner) -> None:
        if not (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'reconstruct'):
            raise TypeError(f'ReconstructionHook needs a pixel model with '
                            f'reconstruct(); got {type(model).__name__}.')
        picture = self.draw(model)
        epoch = runner.epoch + 1
        folder = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(picture).save(osp.join(folder, f'epoch_{epoch}.png'))
        runner.visualizer.add_image('reconstruction', picture, step=epoch)

    def draw(self, model) -> np.ndarray:
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        devices = [device] if device.type == 'cuda' else []
        try:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                rows = [
                    draw_reconstruction(
                        model,
                        load_image(path, model.backbone.img_size).to(device))
                    for path in self.images
                ]
        finally:
            model.train(was_training)
        return np.concatenate(rows, axis=0)
