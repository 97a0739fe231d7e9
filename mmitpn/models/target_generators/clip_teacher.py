# Copyright (c) mmitpn contributors. All rights reserved.
"""Frozen CLIP image tower giving per-patch targets."""
import os.path as osp
import zipfile
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpretrain.models.utils import resize_pos_embed
from torch import Tensor, nn

from mmitpn.registry import MODELS
from mmitpn.utils import extract_state_dict, load_checkpoint_file

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# The smallest text tower open_clip's CLIP accepts (a few hundred
# parameters); only the image tower of the model is kept.
UNUSED_TEXT_TOWER = dict(
    context_length=1, vocab_size=1, width=8, heads=1, layers=1)


def build_vision_tower(embed_dim: int,
                       vision_cfg: dict,
                       quick_gelu: bool = False) -> nn.Module:
    """An open_clip image tower with random weights, built offline.

    open_clip's public ``CLIP`` class builds it (with a negligible text
    tower that is dropped), so no private open_clip function is needed.

    Args:
        embed_dim (int): Output width (the tower's projection).
        vision_cfg (dict): ``CLIPVisionCfg`` fields, e.g. the
            ``vision_cfg`` of ``open_clip.get_model_config('ViT-B-16')``.
        quick_gelu (bool): QuickGELU activations (OpenAI's weights).
    """
    import open_clip
    return open_clip.CLIP(
        embed_dim, vision_cfg, UNUSED_TEXT_TOWER, quick_gelu=quick_gelu).visual


def is_torchscript_archive(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (OpenAI's released CLIP
    ``ViT-B-16.pt`` / ``ViT-L-14.pt`` are)."""
    if not osp.isfile(path) or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(
            name.split('/', 1)[-1].startswith('code/')
            for name in archive.namelist())


def torchscript_state_dict(path: str) -> Dict[str, Tensor]:
    """The tensors of a TorchScript archive.

    ``torch.jit.load`` rebuilds TorchScript modules, not arbitrary Python
    objects (nothing in the archive is unpickled as Python classes and no
    method of it is called here); only the state dict is kept.
    """
    try:
        module = torch.jit.load(path, map_location='cpu')
    except RuntimeError as error:
        raise ValueError(f'Cannot read the TorchScript archive {path}: '
                         f'{str(error).splitlines()[0]}') from error
    return {
        key: value.detach()
        for key, value in module.state_dict().items()
        if isinstance(value, Tensor)
    }


@MODELS.register_module()
class CLIPTeacher(BaseModule):
    """An open_clip vision tower built offline and loaded from a local file.

    The target of each patch is the final-layer token (class token dropped)
    after ``ln_post`` and the projection ``proj``, as in the official iTPN
    code; the head applies the parameter-free LayerNorm. The teacher runs
    on the same grid as the student: its position embedding is resized to
    ``grid_size`` and its input to ``grid_size * patch_size`` pixels (e.g.
    196 px for ViT-L/14 with a 14x14 student grid).

    Args:
        ckpt (str): Local checkpoint: an open_clip/OpenAI CLIP state dict,
            or OpenAI's released TorchScript archive (``ViT-B-16.pt``)
            (``visual.*`` keys are used) or a vision-tower state dict.
            Nothing is ever downloaded.
        model_name (str): open_clip model config, e.g. ``'ViT-B-16'``
            (512-d) or ``'ViT-L-14'`` (768-d); ``-quickgelu`` variants for
            OpenAI weights. Ignored when ``vision_cfg`` is given.
        vision_cfg (dict, optional): open_clip ``CLIPVisionCfg`` fields for a
            custom tower, with ``embed_dim``.
        embed_dim (int, optional): Output width of a custom tower.
        quick_gelu (bool, optional): Override the config's activation.
        grid_size (tuple[int, int]): Student unit grid. Defaults to (14, 14).
        mean (Sequence[float]): Teacher input mean in [0, 1] scale.
        std (Sequence[float]): Teacher input std in [0, 1] scale.
        init_cfg (dict, optional): Unused; the weights come from ``ckpt``.
    """

    def __init__(self,
                 ckpt: str,
                 model_name: str = 'ViT-B-16',
                 vision_cfg: Optional[dict] = None,
                 embed_dim: Optional[int] = None,
                 quick_gelu: Optional[bool] = None,
                 grid_size: Sequence[int] = (14, 14),
                 mean: Sequence[float] = CLIP_MEAN,
                 std: Sequence[float] = CLIP_STD,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        import open_clip
        if not ckpt:
            raise ValueError('CLIPTeacher needs teacher_ckpt, a local CLIP '
                             'checkpoint; nothing is downloaded.')
        if vision_cfg is None:
            config = open_clip.get_model_config(model_name)
            if config is None:
                raise ValueError(
                    f'Unknown open_clip model {model_name!r}; available: '
                    f'{open_clip.list_models()}.')
            vision_cfg, embed_dim = config['vision_cfg'], config['embed_dim']
            if quick_gelu is None:
                quick_gelu = config.get('quick_gelu', False)
        elif embed_dim is None:
            raise ValueError('A custom vision_cfg needs embed_dim.')
        self.embed_dim = embed_dim
        self.ckpt = ckpt
        self.visual = build_vision_tower(
            embed_dim, vision_cfg, quick_gelu=bool(quick_gelu))
        self.visual.output_tokens = True
        self._load_weights(ckpt, model_name)
        self.patch_size = self.visual.conv1.kernel_size[0]
        self.grid_size = tuple(grid_size)
        self._fit_position_embedding()
        self.register_buffer(
            'mean', torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer(
            'std', torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _load_weights(self, ckpt: str, model_name: str) -> None:
        if is_torchscript_archive(ckpt):
            state_dict = torchscript_state_dict(ckpt)
        else:
            state_dict = extract_state_dict(load_checkpoint_file(ckpt))
        if any(key.startswith('visual.') for key in state_dict):
            state_dict = {
                key[len('visual.'):]: value
                for key, value in state_dict.items()
                if key.startswith('visual.')
            }
        own = self.visual.state_dict()
        mismatched = [
            f'{key} {tuple(value.shape)} vs {tuple(own[key].shape)}'
            for key, value in state_dict.items()
            if key in own and value.shape != own[key].shape
        ]
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        if mismatched or missing or unexpected:
            raise ValueError(
                f'{ckpt} does not hold the weights of a {model_name} image '
                f'tower: {len(missing)} missing keys {missing[:5]}, '
                f'{len(unexpected)} unexpected keys {unexpected[:5]}, shape '
                f'mismatches {mismatched[:5]}.')
        self.visual.load_state_dict(state_dict)

    def _fit_position_embedding(self) -> None:
        pos = self.visual.positional_embedding.data
        side = round((pos.shape[0] - 1)**0.5)
        if (side, side) == self.grid_size:
            return
        resized = resize_pos_embed(
            pos.unsqueeze(0), (side, side), self.grid_size,
            num_extra_tokens=1)[0]
        self.visual.positional_embedding = nn.Parameter(
            resized, requires_grad=False)
        self.visual.grid_size = self.grid_size
        self.visual.image_size = tuple(g * self.patch_size
                                       for g in self.grid_size)

    def train(self, mode: bool = True) -> 'CLIPTeacher':
        """The teacher always stays in eval mode."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        """Patch targets ``(B, H*W, embed_dim)`` of images in [0, 1]."""
        size: Tuple[int, int] = (self.grid_size[0] * self.patch_size,
                                 self.grid_size[1] * self.patch_size)
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(
                images,
                size=size,
                mode='bicubic',
                align_corners=False,
                antialias=True)
        images = (images - self.mean) / self.std
        _, tokens = self.visual(images)
        return tokens @ self.visual.proj
