# Copyright (c) mmitpn contributors. All rights reserved.
"""ONNX export of a backbone's stride maps and its parity with PyTorch.

The graph maps normalised images ``images`` ``(B, C, H, W)`` to the maps of
the backbone's ``out_indices`` (``stride4``, ``stride8``, ``stride16``),
with batch, height and width fixed (static: one graph per input size, as
TensorRT engines, OpenVINO and RKNN builds usually want) or dynamic. The
graph's metadata holds the input normalisation and the arguments the
backbone was built with, so that :func:`backbone_parity` (and a deployment)
can read them back. Export and parity are shared by
``tools/deployment/backbone2onnx.py`` and
``tools/deployment/backbone_parity.py``.
"""
import argparse
import json
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import DictAction

from mmitpn.apis import create_backbone
from mmitpn.models.backbones.unit_pyramid_backbone import UnitPyramidBackbone
from mmitpn.models.utils.unit_ops import unit_grid
from .export_model import ExportModel, output_names
from .onnx_export import DEFAULT_OPSET, INPUT_NAME, export_onnx, max_abs_diffs

# Metadata keys of the graph.
BUILD_KEY = 'mmitpn.backbone'
NORMALIZATION_KEY = 'mmitpn.input_normalization'


def parse_size(text: str) -> Tuple[int, int]:
    """``'128'`` -> ``(128, 128)``, ``'192x320'`` (H x W) -> ``(192,
    320)``; sides must be multiples of 16."""
    try:
        sides = tuple(int(side) for side in text.lower().split('x'))
    except ValueError:
        sides = ()
    if len(sides) not in (1, 2):
        raise ValueError(f'Input size {text!r} is not SIDE or HxW, e.g. 128 '
                         'or 192x320.')
    size = (sides[0], sides[-1])
    unit_grid(*size)
    return size


def example_images(batch: int, channels: int, size: Tuple[int, int],
                   seed: int) -> torch.Tensor:
    """Standard-normal images (inputs are normalised), seeded."""
    return torch.randn(
        batch, channels, *size, generator=torch.Generator().manual_seed(seed))


def add_backbone_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of :func:`backbone_from_args`."""
    parser.add_argument(
        'name',
        help='backbone name (mmitpn.apis.list_backbones()), or a family '
        '(FastiTPN, HiViT) with --backbone-options arch.embed_dims=...')
    parser.add_argument(
        '--checkpoint',
        help='official, converted or mmitpn checkpoint (read as tensors '
        'only); without it the weights are random (seeded by --seed)')
    parser.add_argument(
        '--in-channels',
        type=int,
        default=3,
        help='input channels; RGB weights are adapted (default 3)')
    parser.add_argument(
        '--img-size',
        type=int,
        nargs='+',
        default=[224],
        help='size (H [W]) the position embedding is stored for; other '
        'sizes interpolate it (default 224)')
    parser.add_argument(
        '--out-indices',
        type=int,
        nargs='+',
        default=[0, 1, 2],
        help='stages to output: 0 (stride 4), 1 (stride 8), 2 (stride 16)')
    parser.add_argument(
        '--backbone-options',
        nargs='+',
        action=DictAction,
        default={},
        help='further backbone arguments, e.g. window_size=8 or '
        'arch.embed_dims=64 (dotted keys make nested dicts)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random weights and inputs')


def _nested(options: Dict[str, object]) -> dict:
    """``{'arch.depth': 2}`` -> ``{'arch': {'depth': 2}}``."""
    nested: dict = {}
    for key, value in options.items():
        *parents, last = key.split('.')
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    return nested


def build_settings(args: argparse.Namespace) -> dict:
    """What :func:`backbone_from_args` builds, as stored in a graph."""
    if len(args.img_size) not in (1, 2):
        raise ValueError(f'--img-size takes one or two values, got '
                         f'{args.img_size}.')
    return dict(
        name=args.name,
        checkpoint=args.checkpoint,
        in_channels=args.in_channels,
        img_size=list(args.img_size),
        out_indices=list(args.out_indices),
        options=_nested(args.backbone_options or {}),
        seed=args.seed)


def build_backbone(settings: dict) -> UnitPyramidBackbone:
    """:func:`mmitpn.apis.create_backbone` of :func:`build_settings`; the
    random initialisation (without a checkpoint) is seeded, so the same
    settings give the same weights in another process."""
    torch.manual_seed(settings['seed'])
    img_size = settings['img_size']
    return create_backbone(
        settings['name'],
        settings['checkpoint'],
        in_channels=settings['in_channels'],
        img_size=(img_size[0], img_size[-1]),
        out_indices=tuple(settings['out_indices']),
        **settings['options'])


def export_backbone_onnx(backbone: UnitPyramidBackbone,
                         path: str,
                         size: Tuple[int, int],
                         batch: int = 1,
                         dynamic: bool = True,
                         opset: int = DEFAULT_OPSET,
                         settings: Optional[dict] = None,
                         seed: int = 0) -> Dict[str, Tuple[int, ...]]:
    """Write the ONNX graph of ``backbone``'s stride maps to ``path``.

    Args:
        backbone (UnitPyramidBackbone): In eval mode, ``out_type``
            ``'featmap'``.
        path (str): Output ``.onnx`` file.
        size (tuple[int, int]): Height and width it is traced at (the
            input size of a static graph).
        batch (int): Batch it is traced at (of a static graph).
        dynamic (bool): Dynamic batch, height and width. Defaults to True.
        opset (int): ONNX opset. Defaults to 17.
        settings (dict, optional): How the backbone was built
            (:func:`build_settings`), stored in the metadata.
        seed (int): Seed of the example input.

    Returns:
        dict: Output name -> shape at the traced size.
    """
    import onnx
    if backbone.out_type != 'featmap':
        raise ValueError("Export the stride maps of a backbone with "
                         f"out_type='featmap', got {backbone.out_type!r}.")
    model = ExportModel(backbone).eval()
    channels = backbone.patch_embed.proj.in_channels
    images = example_images(batch, channels, size, seed)
    export_onnx(model, images, path, dynamic=dynamic, opset=opset)
    normalization = getattr(backbone, 'input_normalization', None)
    metadata = {}
    if normalization is not None:
        metadata[NORMALIZATION_KEY] = json.dumps(
            dict(
                mean=normalization.mean,
                std=normalization.std,
                channel_order=normalization.channel_order,
                value_range=normalization.value_range))
    if settings is not None:
        metadata[BUILD_KEY] = json.dumps(settings)
    graph = onnx.load(path)
    onnx.helper.set_model_props(graph, metadata)
    onnx.save(graph, path)
    with torch.no_grad():
        outs = model(images)
    return {
        name: tuple(out.shape)
        for name, out in zip(output_names(model), outs)
    }


def read_build_settings(path: str) -> dict:
    """The :func:`build_settings` stored in graph ``path``."""
    import onnx
    graph = onnx.load(path, load_external_data=False)
    props = {prop.key: prop.value for prop in graph.metadata_props}
    if BUILD_KEY not in props:
        raise ValueError(f'{path} has no {BUILD_KEY!r} metadata (not written '
                         'by tools/deployment/backbone2onnx.py); pass the '
                         'backbone name and its options.')
    return json.loads(props[BUILD_KEY])


@dataclass
class ParityResult:
    """Max ``|ONNX Runtime - PyTorch|`` of one output at one input shape."""
    input_shape: Tuple[int, ...]
    output: str
    output_shape: Tuple[int, ...]
    max_abs_diff: float
    max_abs_torch: float


def backbone_parity(path: str,
                    backbone: UnitPyramidBackbone,
                    sizes: Sequence[Tuple[int, int]],
                    batch: int = 1,
                    seed: int = 1) -> List[ParityResult]:
    """Run graph ``path`` with ONNX Runtime (CPU execution provider) and
    ``backbone`` in PyTorch on the same random inputs of each size.

    Raises:
        ValueError: A size or batch that a static graph does not take.
    """
    import onnxruntime
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    graph_input = session.get_inputs()[0]
    model = ExportModel(backbone).eval()
    channels = backbone.patch_embed.proj.in_channels
    names = [out.name for out in session.get_outputs()]
    results = []
    for index, size in enumerate(sizes):
        shape = (batch, channels, *size)
        fixed = [(dim, want) for dim, want in zip(graph_input.shape, shape)
                 if isinstance(dim, int) and dim != want]
        if fixed:
            raise ValueError(
                f'{path} is a static graph for input {graph_input.shape}, '
                f'it cannot run {list(shape)}; export one graph per size or '
                'a dynamic one.')
        images = example_images(batch, channels, size, seed + index)
        outs = session.run(None, {INPUT_NAME: images.numpy()})
        with torch.no_grad():
            refs = model(images)
        diffs = max_abs_diffs(outs, refs)
        for name, out, ref, diff in zip(names, outs, refs, diffs):
            results.append(
                ParityResult(shape, name, tuple(np.shape(out)), diff,
                             float(ref.abs().max())))
    return results


def parity_table(results: Sequence[ParityResult]) -> str:
    """A Markdown table: one row per input shape, max |diff| per output."""
    outputs = list(dict.fromkeys(result.output for result in results))
    rows: Dict[Tuple[int, ...], Dict[str, ParityResult]] = {}
    for result in results:
        rows.setdefault(result.input_shape, {})[result.output] = result
    lines = [
        '| input | ' + ' | '.join(f'{name} max abs diff (max abs value)'
                                  for name in outputs) + ' |',
        '|---' * (len(outputs) + 1) + '|'
    ]
    for shape, by_output in rows.items():
        cells = [
            f'{by_output[name].max_abs_diff:.1e} '
            f'({by_output[name].max_abs_torch:.3g})' for name in outputs
        ]
        lines.append(f'| {"x".join(map(str, shape))} | ' + ' | '.join(cells) +
                     ' |')
    return '\n'.join(lines)
