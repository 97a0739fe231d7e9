# Copyright (c) mmitpn contributors. All rights reserved.
"""Reconstruction pictures of fixed images while pixel pretraining runs."""
import os
import os.path as osp
from typing import Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from PIL import Image

from mmitpn.registry import HOOKS
from mmitpn.visualization import draw_reconstruction, load_image, pattern_r2


@HOOKS.register_module()
class ReconstructionHook(Hook):
    """Every ``interval`` epochs (and after the last), draw
    ``input | masked | prediction | pattern`` for a fixed set of images
    into ``<work_dir>/<out_dir>/epoch_<n>.png`` and the visualiser's
    backends (a TensorBoard image panel with ``--tensorboard``), and log
    the hidden units' pattern R² of these images
    (:func:`mmitpn.visualization.pattern_r2`; 0: flat pattern column,
    1: exact structure) as ``reconstruction/pattern_r2``.

    Only what the model computes is drawn (see
    :func:`mmitpn.visualization.draw_reconstruction`): hidden units'
    brightness and contrast come from the visible units. The masks are the
    same at every epoch (``seed``) and drawing leaves the training random
    state untouched, so a run with the hook trains exactly as one without.

    Args:
        images (Sequence[str] | int): Image files, resized and
            centre-cropped to the backbone's input size, or a number ``n``
            to draw ``n`` images spread evenly over the training dataset
            (indices ``i * len // n``), which follows the dataset wherever
            ``data_root`` points. Defaults to 4.
        interval (int): Epochs between pictures. Defaults to 1.
        out_dir (str): Folder in the work dir. Defaults to
            ``'reconstructions'``.
        seed (int): Seed of the masks. Defaults to 0.
    """

    priority = 'LOW'

    def __init__(self,
                 images: Union[Sequence[str], int] = 4,
                 interval: int = 1,
                 out_dir: str = 'reconstructions',
                 seed: int = 0) -> None:
        if isinstance(images, int):
            if images < 1:
                raise ValueError('ReconstructionHook needs at least one '
                                 f'image; got images={images}.')
            self.num_dataset_images = images
            self.images = []
        else:
            if not images:
                raise ValueError(
                    'ReconstructionHook needs at least one image.')
            self._check_files(images)
            self.num_dataset_images = 0
            self.images = list(images)
        self.interval = interval
        self.out_dir = out_dir
        self.seed = seed

    @staticmethod
    def _check_files(images: Sequence[str]) -> None:
        missing = [path for path in images if not osp.isfile(path)]
        if missing:
            raise FileNotFoundError(
                f'ReconstructionHook: no such image(s) {missing}.')

    def before_train(self, runner) -> None:
        if not self.num_dataset_images:
            return
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'get_data_info'):
            raise TypeError(
                f'ReconstructionHook(images={self.num_dataset_images}) takes '
                f'its images from the training dataset, which needs '
                f'get_data_info(); {type(dataset).__name__} has none. Give '
                f'the image files instead.')
        count = min(self.num_dataset_images, len(dataset))
        self.images = [
            dataset.get_data_info(i * len(dataset) // count)['img_path']
            for i in range(count)
        ]
        self._check_files(self.images)

    def after_train_epoch(self, runner) -> None:
        if not (self.every_n_epochs(runner, self.interval)
                or self.is_last_train_epoch(runner)):
            return
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'reconstruct'):
            raise TypeError(f'ReconstructionHook needs a pixel model with '
                            f'reconstruct(); got {type(model).__name__}.')
        picture, score = self.draw(model)
        epoch = runner.epoch + 1
        runner.logger.info(f'Epoch {epoch}: pattern R2 of the hidden units '
                           f'of {len(self.images)} image(s): {score:.4f}')
        # Stepped by epoch, as validation metrics of epoch-based runs are.
        runner.visualizer.add_scalars({'reconstruction/pattern_r2': score},
                                      step=epoch)
        folder = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(picture).save(osp.join(folder, f'epoch_{epoch}.png'))
        runner.visualizer.add_image('reconstruction', picture, step=epoch)

    def draw(self, model) -> Tuple[np.ndarray, float]:
        """The picture (one row per image) and the pattern R² of the
        images, each with the masks of ``seed``."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        devices = [device] if device.type == 'cuda' else []
        try:
            images = [
                load_image(path, model.backbone.img_size).to(device)
                for path in self.images
            ]
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed)
                rows = [draw_reconstruction(model, image) for image in images]
                torch.manual_seed(self.seed)
                score = pattern_r2(model, torch.cat(images))
        finally:
            model.train(was_training)
        return np.concatenate(rows, axis=0), score
