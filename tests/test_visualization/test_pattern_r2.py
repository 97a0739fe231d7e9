# Copyright (c) mmitpn contributors. All rights reserved.
import types

import pytest
import torch

from mmitpn.models.utils.unit_ops import normalize_patches, patchify
from mmitpn.visualization import pattern_r2


def oracle(predict):
    """A model whose ``reconstruct`` hides every other unit and returns
    ``predict(per-unit normalised target)``."""

    def reconstruct(inputs):
        target = normalize_patches(patchify(inputs))
        mask = torch.zeros(target.shape[:2])
        mask[:, ::2] = 1
        return predict(target), mask

    preprocessor = types.SimpleNamespace(
        mean=torch.tensor([120., 110., 100.]).view(1, 3, 1, 1),
        std=torch.tensor([60., 55., 50.]).view(1, 3, 1, 1))
    return types.SimpleNamespace(
        data_preprocessor=preprocessor,
        reconstruct=reconstruct,
        head=types.SimpleNamespace(norm_pix=True))


def test_pattern_r2_is_one_for_the_truth_and_zero_for_colour_only():
    images = torch.rand(2, 3, 32, 48) * 255
    assert pattern_r2(oracle(lambda t: t), images) == pytest.approx(1.)
    assert pattern_r2(oracle(lambda t: 2 * t), images) == pytest.approx(0.)

    def colour_only(target):
        per_channel = target.view(*target.shape[:2], -1, 3).mean(dim=2)
        return per_channel.repeat(1, 1, target.shape[-1] // 3)

    assert pattern_r2(oracle(colour_only), images) == pytest.approx(
        0., abs=1e-6)
    # Half the structure: a prediction t/2 leaves a quarter of the variance.
    assert pattern_r2(oracle(lambda t: t / 2), images) == pytest.approx(.75)
