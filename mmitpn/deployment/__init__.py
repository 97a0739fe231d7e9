# Copyright (c) mmitpn contributors. All rights reserved.
from .backbone_export import (ParityResult, backbone_parity,
                              export_backbone_onnx, read_build_settings)
from .export_model import (PARTS, ExportModel, build_export_model,
                           find_backbone, output_names)
from .onnx_export import (DEFAULT_OPSET, export_onnx, onnx_max_abs_diff,
                          static_shape_reason)
from .program_export import export_program, program_max_abs_diff

__all__ = [
    'DEFAULT_OPSET', 'PARTS', 'ExportModel', 'ParityResult', 'backbone_parity',
    'build_export_model', 'export_backbone_onnx', 'export_onnx',
    'export_program', 'find_backbone', 'onnx_max_abs_diff', 'output_names',
    'program_max_abs_diff', 'read_build_settings', 'static_shape_reason'
]
