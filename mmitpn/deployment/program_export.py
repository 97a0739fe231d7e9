# Copyright (c) mmitpn contributors. All rights reserved.
"""``torch.export`` of an :class:`~mmitpn.deployment.ExportModel` (the
graph that ``torch.compile``-free runtimes such as ExecuTorch and AOT
Inductor take) and its parity check with the eager model."""
from typing import List

import torch
from torch import Tensor
from torch.export import ExportedProgram

from .export_model import ExportModel
from .onnx_export import max_abs_diffs


def export_program(model: ExportModel, images: Tensor) -> ExportedProgram:
    """``torch.export.export`` of ``model`` for the shape of ``images``.

    The program is made for one input shape: with dynamic height and
    width, ``torch.export`` records shape guards of the unit grid that the
    exported program then checks (and fails) at other sizes, so one
    program is exported per size.
    """
    with torch.no_grad():
        return torch.export.export(model, (images, ))


def program_max_abs_diff(program: ExportedProgram, model: ExportModel,
                         images: Tensor) -> List[float]:
    """Max ``|exported - eager|`` of every output on ``images``."""
    with torch.no_grad():
        return max_abs_diffs(program.module()(images), model(images))
