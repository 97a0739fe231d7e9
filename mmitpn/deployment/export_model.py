# Copyright (c) mmitpn contributors. All rights reserved.
"""The part of a config's model that is exported, as one module that maps
preprocessed images to a tuple of tensors.

Three parts are offered: the backbone as the config builds it, the backbone
followed by its iTPN pyramid neck (what detectors and segmentors consume),
and the whole classifier (its ``'tensor'`` forward: logits). The images
are expected already normalised (the data preprocessor's mean and std are
not part of the graph, as in mmdeploy's backbone graphs).
"""
from typing import List, Optional, Tuple

from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from torch import Tensor, nn

from mmitpn.models.backbones.unit_pyramid_backbone import UnitPyramidBackbone
from mmitpn.models.necks import iTPNPyramid
from mmitpn.utils import extract_state_dict, load_checkpoint_file
from mmitpn.utils.checkpoint import summarise_keys

PARTS = ('backbone', 'pyramid', 'classifier')


class ExportModel(nn.Module):
    """``images -> tuple of tensors`` for one part of a model.

    Attribute names follow the model's (``backbone``, ``neck``), so the
    state dict of this module is a subset of the full model's.

    Args:
        backbone (nn.Module): The HiViT-family backbone.
        neck (nn.Module, optional): The iTPN pyramid on the backbone.
        classifier (nn.Module, optional): A whole classifier whose
            ``mode='tensor'`` forward returns logits; replaces the other two.
    """

    def __init__(self,
                 backbone: Optional[nn.Module] = None,
                 neck: Optional[nn.Module] = None,
                 classifier: Optional[nn.Module] = None) -> None:
        super().__init__()
        if (classifier is None) == (backbone is None):
            raise TypeError('ExportModel needs a backbone or a classifier.')
        self.backbone = backbone
        self.neck = neck
        self.classifier = classifier

    def forward(self, images: Tensor) -> Tuple[Tensor, ...]:
        if self.classifier is not None:
            return (self.classifier(images, mode='tensor'), )
        feats = self.backbone(images)
        if self.neck is not None:
            feats = self.neck(feats)
        return tuple(feats)


def find_backbone(model: ExportModel) -> UnitPyramidBackbone:
    """The HiViT-family backbone inside ``model``."""
    backbone = model.backbone if model.classifier is None else getattr(
        model.classifier, 'backbone', None)
    if not isinstance(backbone, UnitPyramidBackbone):
        raise ValueError('The exporter handles HiViT-family backbones '
                         f'(mmitpn.HiViT, mmitpn.FastiTPN), got '
                         f'{type(backbone).__name__}.')
    return backbone


def output_names(model: ExportModel) -> List[str]:
    """Names of the graph outputs: ``logits``, ``stride4`` ...."""
    if model.classifier is not None:
        return ['logits']
    if model.neck is not None:
        return [f'p{4 * 2**i}' for i in range(model.neck.num_outs)]
    backbone = model.backbone
    if backbone.out_type == 'avg_featmap':
        return ['pooled']
    return [f'stride{(4, 8, 16)[i]}' for i in backbone.out_indices]


def build_export_model(cfg: Config,
                       part: str,
                       checkpoint: Optional[str] = None) -> ExportModel:
    """Build ``part`` of ``cfg.model`` in eval mode, with weights.

    Args:
        cfg (Config): A model config (classification, detection,
            segmentation or pretraining).
        part (str): One of :data:`PARTS`.
        checkpoint (str, optional): Local checkpoint of the whole model
            (keys ``backbone.``, ``neck.``, ``head.``), read as tensors only;
            keys of other parts (detection heads, decoders) are ignored,
            missing keys of the exported part are an error. None keeps the
            random initialisation (for parity checks and timing).

    Returns:
        ExportModel: The part, in eval mode.
    """
    if part not in PARTS:
        raise ValueError(f'part must be one of {PARTS}, got {part!r}.')
    scope = cfg.get('default_scope', 'mmitpn')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if not isinstance(getattr(model, 'backbone', None), UnitPyramidBackbone):
        raise ValueError(
            'model.backbone of the config must be mmitpn.HiViT or '
            f"mmitpn.FastiTPN, got {cfg.model.backbone.get('type')!r}.")
    if part == 'classifier':
        if not hasattr(model, 'head') or not hasattr(model, 'extract_feat') \
                or model.backbone.out_type != 'avg_featmap':
            raise ValueError(
                f'part classifier needs an image classifier config (model '
                f"type ImageClassifier, backbone out_type='avg_featmap'), got "
                f"model type {cfg.model.get('type')!r}; export part "
                'backbone or pyramid instead.')
        export = ExportModel(classifier=model)
    elif part == 'pyramid':
        neck = getattr(model, 'neck', None)
        if not isinstance(neck, iTPNPyramid):
            raise ValueError(
                'part pyramid needs model.neck of type mmitpn.iTPNPyramid, '
                f'got {type(neck).__name__}; export part backbone instead.')
        export = ExportModel(model.backbone, neck)
    else:
        export = ExportModel(model.backbone)
    if checkpoint is not None:
        load_export_weights(export, checkpoint)
    return export.eval()


def load_export_weights(model: ExportModel, checkpoint: str) -> None:
    """Load the exported part's tensors from a whole-model checkpoint."""
    state_dict = extract_state_dict(load_checkpoint_file(checkpoint))
    target = model if model.classifier is None else model.classifier
    own = target.state_dict()
    missing = [key for key in own if key not in state_dict]
    if missing:
        raise ValueError(
            f'{checkpoint} lacks {len(missing)} of the {len(own)} tensors '
            f'of the exported part: {summarise_keys(missing)}. Pass a '
            'checkpoint of this config (a pretraining checkpoint has no '
            'classification head: export part backbone or pyramid).')
    target.load_state_dict({key: state_dict[key] for key in own})
