# Copyright (c) mmitpn contributors. All rights reserved.
"""ONNX export of an :class:`~mmitpn.deployment.ExportModel` and its parity
check with ONNX Runtime.

The graph is made by PyTorch's TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``): it needs only ``onnx`` and
works offline, whereas the ``torch.export``-based one (``dynamo=True``)
also needs ``onnxscript``. Height and width (and the batch) are dynamic
unless the model's graph depends on the input size in Python (see
:func:`static_shape_reason`); such models are exported for one size.
"""
from typing import List, Optional

import numpy as np
import torch
from torch import Tensor

from .export_model import ExportModel, find_backbone, output_names

# Opset 17 is the first with LayerNormalization (one node per LayerNorm
# instead of a chain of reductions); recent, and long supported by
# deployment runtimes. The TorchScript exporter writes attention as
# MatMul/Softmax at every opset it supports (up to 20).
DEFAULT_OPSET = 17
INPUT_NAME = 'images'


def static_shape_reason(model: ExportModel) -> Optional[str]:
    """Why the graph of ``model`` holds for its traced size only, or None.

    A token reduction (``token_reduction``) drops a number of tokens
    computed in Python from the token count, so the traced graph keeps the
    count of the traced size (at other sizes it runs but gives wrong
    results, tested).
    """
    return find_backbone(model).token_reduction.static_shape_reason()


def export_onnx(model: ExportModel,
                images: Tensor,
                path: str,
                dynamic: bool = True,
                opset: int = DEFAULT_OPSET) -> None:
    """Write the ONNX graph of ``model`` traced on ``images`` to ``path``.

    Args:
        model (ExportModel): The part to export, in eval mode.
        images (Tensor): Example input ``(B, 3, H, W)``.
        path (str): Output ``.onnx`` file.
        dynamic (bool): Dynamic batch, height and width. Raises if the
            model's graph cannot have them (:func:`static_shape_reason`).
        opset (int): ONNX opset. Defaults to :data:`DEFAULT_OPSET`.
    """
    import onnx
    reason = static_shape_reason(model)
    if dynamic and reason is not None:
        raise ValueError(f'Cannot export a graph with dynamic height and '
                         f'width: {reason}; export once per input size '
                         '(--static).')
    names = output_names(model)
    axes = None
    if dynamic:
        axes = {INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}}
        axes.update({name: {0: 'batch'} for name in names})
    with torch.no_grad():
        torch.onnx.export(
            model, (images, ),
            path,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes=axes)
    onnx.checker.check_model(path)


def onnx_max_abs_diff(path: str, model: ExportModel,
                      images: Tensor) -> List[float]:
    """Max ``|ONNX Runtime - PyTorch|`` of every output on ``images``
    (CPU execution provider)."""
    import onnxruntime
    session = onnxruntime.InferenceSession(
        path, providers=['CPUExecutionProvider'])
    outs = session.run(None, {INPUT_NAME: images.numpy()})
    with torch.no_grad():
        refs = model(images)
    return max_abs_diffs(outs, refs)


def max_abs_diffs(outs, refs) -> List[float]:
    """Max absolute difference of each pair; raises on a shape mismatch."""
    diffs = []
    for name, out, ref in zip(range(len(refs)), outs, refs):
        ref = ref.detach().numpy()
        out = np.asarray(out)
        if out.shape != ref.shape:
            raise ValueError(f'Output {name}: exported shape {out.shape}, '
                             f'PyTorch {ref.shape}.')
        diffs.append(float(np.abs(out - ref).max()))
    return diffs
