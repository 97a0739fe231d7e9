# Copyright (c) mmitpn contributors. All rights reserved.
"""Layer-wise learning-rate decay for HiViT-based models of any toolbox."""
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.logging import MMLogger
from mmengine.optim import DefaultOptimWrapperConstructor
from torch import nn

from mmitpn.registry import OPTIM_WRAPPER_CONSTRUCTORS

NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm,
              nn.modules.instancenorm._InstanceNorm)
DEFAULT_NO_DECAY_KEYS = ('pos_embed', 'relative_position_bias_table',
                         'rel_pos_h', 'rel_pos_w')

LayerDepthFn = Callable[[str], Tuple[int, int]]


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Layer-wise lr decay for classifiers, self-supervisors, detectors and
    segmentors whose backbone is HiViT.

    The layer id of each parameter comes from ``model.get_layer_depth`` when
    the model has one (mmpretrain classifiers and self-supervisors), else
    from ``model.backbone.get_layer_depth(name, 'backbone.')`` (mmdet
    detectors, mmseg segmentors). With ``L`` layer ids, a parameter of id
    ``i`` gets ``lr = base_lr * rate ** (L - 1 - i)``, so necks and heads
    (id ``L - 1``) keep the base lr.

    Parameters with the same lr and weight decay share one optimizer group
    (with ``layer_decay_rate=1`` there are only two: with and without weight
    decay), which keeps the optimizer step fast; the groups are logged.

    ``paramwise_cfg`` keys:

    - ``layer_decay_rate`` (float, required): the decay per layer.
    - ``rescale_depth`` (int, optional): decay as if the backbone had this
      many blocks, i.e. the rate becomes ``rate ** ((d + 1) / (L - 1))``.
      The official iTPN fine-tuning code does this with ``d = 12``
      (``ld ** (13 / num_layers)``). Defaults to None (no rescaling).
    - ``no_decay_keys`` (tuple[str]): parameters whose name contains one of
      these get no weight decay. Defaults to position embeddings and
      relative position tables. Norm parameters, biases and other 1-D
      parameters (e.g. layer scale) never get weight decay.
    - ``custom_keys`` (dict): ``{substring: dict(lr_mult=..,
      decay_mult=..)}``, applied on top; the longest matching key wins.

    Example:
        >>> optim_wrapper = dict(
        ...     optimizer=dict(type='AdamW', lr=1.6e-3, weight_decay=0.05),
        ...     constructor='mmitpn.LayerDecayOptimWrapperConstructor',
        ...     paramwise_cfg=dict(layer_decay_rate=0.6, rescale_depth=12))
    """

    def __init__(self,
                 optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        paramwise_cfg = dict(paramwise_cfg or {})
        if 'layer_decay_rate' not in paramwise_cfg:
            raise ValueError('LayerDecayOptimWrapperConstructor needs '
                             'paramwise_cfg.layer_decay_rate.')
        known = {
            'layer_decay_rate', 'rescale_depth', 'no_decay_keys', 'custom_keys'
        }
        unknown = set(paramwise_cfg) - known
        if unknown:
            raise ValueError(f'Unknown paramwise_cfg keys {sorted(unknown)} '
                             f'for LayerDecayOptimWrapperConstructor; '
                             f'known: {sorted(known)}.')
        super().__init__(optim_wrapper_cfg, paramwise_cfg)
        # A plain dict: mmengine's ConfigDict would turn the parameter groups
        # set into it into ConfigDicts, on which torch.compile of the
        # optimizer step (mmengine's compile=True) fails in torch 2.14.
        self.optimizer_cfg = dict(self.optimizer_cfg)

    @staticmethod
    def _layer_depth_fn(model: nn.Module) -> LayerDepthFn:
        if hasattr(model, 'get_layer_depth'):
            return model.get_layer_depth
        backbone = getattr(model, 'backbone', None)
        if backbone is not None and hasattr(backbone, 'get_layer_depth'):
            return lambda name: backbone.get_layer_depth(name, 'backbone.')
        raise TypeError(
            f'Layer decay needs get_layer_depth() on {type(model).__name__} '
            'or on its backbone; neither has it.')

    def add_params(self, params: List[dict], module: nn.Module,
                   **kwargs) -> None:
        """Fill ``params`` with one group per (layer, lr, weight decay)."""
        get_layer_depth = self._layer_depth_fn(module)
        cfg = self.paramwise_cfg
        rate = cfg['layer_decay_rate']
        no_decay_keys = tuple(cfg.get('no_decay_keys', DEFAULT_NO_DECAY_KEYS))
        custom_keys: Dict[str, dict] = cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)
        base_wd = self.base_wd or 0.

        groups: Dict[tuple, dict] = OrderedDict()
        for module_name, submodule in module.named_modules():
            is_norm = isinstance(submodule, NORM_TYPES)
            for name, param in submodule.named_parameters(recurse=False):
                if not param.requires_grad:
                    continue
                full_name = f'{module_name}.{name}' if module_name else name
                layer_id, num_ids = get_layer_depth(full_name)
                layer_rate = rate
                if cfg.get('rescale_depth') is not None:
                    layer_rate = rate**((cfg['rescale_depth'] + 1) /
                                        (num_ids - 1))
                lr_scale = layer_rate**(num_ids - 1 - layer_id)
                no_decay = (
                    is_norm or name == 'bias' or param.ndim <= 1
                    or any(key in full_name for key in no_decay_keys))
                weight_decay = 0. if no_decay else base_wd
                custom = next((k for k in sorted_keys if k in full_name), None)
                if custom is not None:
                    lr_scale *= custom_keys[custom].get('lr_mult', 1.)
                    weight_decay *= custom_keys[custom].get('decay_mult', 1.)
                key = (lr_scale, weight_decay)
                if key not in groups:
                    groups[key] = dict(
                        params=[],
                        param_names=[],
                        lr=self.base_lr * lr_scale,
                        lr_scale=lr_scale,
                        weight_decay=weight_decay)
                groups[key]['params'].append(param)
                groups[key]['param_names'].append(full_name)
        params.extend(groups.values())
        self._log_groups(list(groups.values()))

    @staticmethod
    def _log_groups(groups: List[dict]) -> None:
        lines = [
            'Parameter groups (layer-wise lr decay):',
            f'{"lr scale":>10} {"weight decay":>12} {"tensors":>7}  '
            'first parameter'
        ]
        for group in sorted(groups, key=lambda g: g['lr_scale']):
            lines.append(f'{group["lr_scale"]:>10.4g} '
                         f'{group["weight_decay"]:>12.3g} '
                         f'{len(group["params"]):>7d}  '
                         f'{group["param_names"][0]}')
        MMLogger.get_current_instance().info('\n'.join(lines))
