# Copyright (c) mmitpn contributors. All rights reserved.
"""HiViT, iTPN and Fast-iTPN backbones by name, as feature extractors.

``create_backbone('fast-itpn-base', checkpoint='fast_itpn_base_clipl_e1600.pt',
in_channels=6)`` builds the backbone, loads (and converts in memory) the
checkpoint's backbone and returns a module whose forward maps ``(B, C, H, W)``
images, H and W multiples of 16, to the stride-4, 8 and 16 feature maps.
"""
import difflib
import inspect
from typing import Dict, List, Optional, Sequence, Type, Union

from mmitpn.models.backbones.unit_pyramid_backbone import UnitPyramidBackbone
from .backbone_checkpoint import (BACKBONE_CLASSES, BackboneCheckpoint,
                                  load_backbone_checkpoint,
                                  read_backbone_checkpoint)
from .normalization import IMAGENET_NORMALIZATION, ImageNormalization

# Input statistics of each family (RGB, 0-255); see
# :data:`IMAGENET_NORMALIZATION` for where they come from.
FAMILY_NORMALIZATION: Dict[str, ImageNormalization] = {
    'HiViT': IMAGENET_NORMALIZATION,
    'FastiTPN': IMAGENET_NORMALIZATION,
}


def list_backbones() -> List[str]:
    """The architecture names :func:`create_backbone` takes, sorted."""
    return sorted(name for family in BACKBONE_CLASSES.values()
                  for name in family.arch_zoo)


def _resolve(name: str) -> Type[UnitPyramidBackbone]:
    for family in BACKBONE_CLASSES.values():
        if name in family.arch_zoo:
            return family
    if name in BACKBONE_CLASSES:
        return BACKBONE_CLASSES[name]
    close = difflib.get_close_matches(name, list_backbones(), n=1)
    hint = f' (did you mean {close[0]!r}?)' if close else ''
    raise ValueError(
        f'Unknown backbone {name!r}{hint}; choose one of {list_backbones()} '
        f'or a family {sorted(BACKBONE_CLASSES)} with arch=dict(...).')


def _shape(arch: dict) -> dict:
    """What a checkpoint fixes of an arch (heads only where tables give
    them, so not compared)."""
    return dict(
        embed_dims=arch['embed_dims'],
        stem_mlp_blocks=tuple(arch['stem_mlp_blocks']),
        depth=arch['depth'])


def _requested_arch(family: Type[UnitPyramidBackbone],
                    arch: Union[str, dict, None]) -> Optional[dict]:
    """The arch dict a build will use, None if it is not a valid one (the
    constructor then says why)."""
    if arch is None:
        arch = inspect.signature(family).parameters['arch'].default
    if isinstance(arch, str):
        return family.arch_zoo.get(arch)
    if isinstance(arch, dict) and {'embed_dims', 'stem_mlp_blocks', 'depth'
                                   } <= set(arch):
        return arch
    return None


def _check_fits(checkpoint: BackboneCheckpoint, name: str,
                family: Type[UnitPyramidBackbone],
                arch: Optional[dict]) -> None:
    """Raise a one-line error if the checkpoint is of another family or
    architecture than the requested one, naming what to build instead."""
    theirs = _shape(checkpoint.arch)
    if family.__name__ == checkpoint.family and (arch is None
                                                 or _shape(arch) == theirs):
        return
    own_family = BACKBONE_CLASSES[checkpoint.family]
    names = [
        repr(zoo_name) for zoo_name, zoo_arch in own_family.arch_zoo.items()
        if _shape(zoo_arch) == theirs
    ]
    builder = ' or '.join(names) or \
        f'{checkpoint.family!r}, arch=dict(...)'
    raise ValueError(
        f'{checkpoint.path} holds a {checkpoint.layout} backbone '
        f'({", ".join(f"{k} {v}" for k, v in theirs.items())}), not '
        f'{name!r}: create_backbone({builder}, checkpoint=...) builds it.')


def create_backbone(name: str,
                    checkpoint: Optional[str] = None,
                    *,
                    in_channels: int = 3,
                    out_indices: Sequence[int] = (0, 1, 2),
                    img_size: Union[int, Sequence[int]] = 224,
                    strict: bool = False,
                    prefix: Optional[str] = None,
                    allow_pickle: bool = False,
                    **kwargs) -> UnitPyramidBackbone:
    """Build a HiViT-family backbone by name and load a checkpoint into it.

    The backbone's forward takes ``(B, in_channels, H, W)`` images,
    normalised as ``model.input_normalization`` says, for any H and W that
    are multiples of 16 (other sizes than ``img_size`` interpolate the
    position embedding bicubically), and returns a tuple of NCHW maps, one
    per ``out_indices`` entry: stride 4 (``D/4`` channels), 8 (``D/2``) and
    16 (``D``).

    Args:
        name (str): An architecture of :func:`list_backbones`
            (``'fast-itpn-base'``, ``'itpn-base'``, ...), or a family,
            ``'FastiTPN'`` or ``'HiViT'``, with ``arch=dict(embed_dims=...,
            stem_mlp_blocks=(..., ...), depth=..., num_heads=...)`` in
            ``kwargs``.
        checkpoint (str, optional): Local file, read as tensors only: an
            official Fast-iTPN or iTPN release file (pretrained or
            fine-tuned), a converted one, or an mmitpn / mmpretrain / mmdet
            / mmseg checkpoint of a model on this backbone (keys under
            ``backbone.``). Converted in memory; the layout settings it
            fixes (relative position tables, layer scale, MLP ratios) are
            taken from it. Missing and unexpected keys are logged. None
            keeps the random initialisation.
        in_channels (int): Input channels; with RGB weights the patch
            embedding is adapted by timm's ``adapt_input_conv`` (the RGB
            filters repeated and scaled by ``3 / in_channels``). Defaults
            to 3.
        out_indices (Sequence[int]): Stages to return, 0 (stride 4), 1
            (stride 8), 2 (stride 16). Defaults to all three.
        img_size (int | tuple[int, int]): Input size the position embedding
            is stored for (the checkpoint's is resized to it). Defaults to
            224.
        strict (bool): Raise if the checkpoint misses or adds backbone keys.
            Defaults to False.
        prefix (str, optional): Prefix of the backbone keys in the
            checkpoint. Defaults to ``'backbone.'`` where keys carry it.
        allow_pickle (bool): Unpickle arbitrary objects of the checkpoint
            (only for trusted files). Defaults to False.
        **kwargs: Further arguments of :class:`mmitpn.HiViT` /
            :class:`mmitpn.FastiTPN` (e.g. ``window_size``,
            ``drop_path_rate``, ``out_type='raw'`` for an iTPN pyramid).

    Returns:
        UnitPyramidBackbone: The backbone in eval mode, with
        ``input_normalization`` (:class:`ImageNormalization`).

    Raises:
        ValueError: An unknown name, or a checkpoint that is not a backbone
            of this family and architecture (the message names the file and
            what to build instead).
    """
    family = _resolve(name)
    if name not in BACKBONE_CLASSES:
        if 'arch' in kwargs:
            raise ValueError(
                f'{name!r} fixes the architecture; pass a family '
                f'({sorted(BACKBONE_CLASSES)}) as the name for a custom arch.')
        kwargs['arch'] = name
    settings = {}
    loaded = None
    if checkpoint is not None:
        loaded = read_backbone_checkpoint(checkpoint, prefix, allow_pickle)
        _check_fits(loaded, name, family,
                    _requested_arch(family, kwargs.get('arch')))
        settings.update(loaded.settings)
    settings.update(kwargs)
    model = family(
        img_size=img_size,
        in_channels=in_channels,
        out_indices=out_indices,
        **settings)
    if loaded is not None:
        load_backbone_checkpoint(model, loaded, strict=strict)
    model.input_normalization = FAMILY_NORMALIZATION[
        family.__name__].for_channels(in_channels)
    return model.eval()
