# Copyright (c) mmitpn contributors. All rights reserved.
"""What HiViT and Fast-iTPN share: a stem at stride 4 and 8 joined by
merges inside 16x16 units, then a main stage at stride 16 with an absolute
position embedding; one flat ``blocks`` list."""
from typing import Dict, List, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from ..utils.position_encoding import resize_pos_embed
from ..utils.unit_ops import UNIT_SIZE
from ..utils.weight_init import check_checkpoint_shapes

ArchSettings = Dict[str, Union[int, Tuple[int, int]]]


def to_2tuple(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(size, int):
        return size, size
    return int(size[0]), int(size[1])


class UnitPyramidBackbone(BaseModule):
    """Shared machinery of :class:`HiViT` and :class:`FastiTPN`: arch and
    output parsing, the unit grid of an input, resizing the absolute
    position embedding of checkpoints made for another grid, frozen stages
    and gradient checkpointing.

    Subclasses set :attr:`arch_zoo`, :attr:`pos_embed_name`,
    ``stem_ranges`` (start and merge index of each stem stage in
    ``blocks``), ``frozen_stages``, ``with_cp``, ``grid_size``,
    ``patch_embed``, ``pos_drop`` and ``fc_norm``.
    """

    arch_zoo: Dict[str, ArchSettings] = {}
    out_types = ('featmap', 'raw', 'avg_featmap')
    pos_embed_name = 'absolute_pos_embed'
    resizable_on_load: Tuple[str, ...] = ()

    def _set_layout(self, arch: Union[str, ArchSettings],
                    img_size: Union[int, Sequence[int]],
                    out_indices: Sequence[int], out_type: str) -> None:
        """Architecture, input grid and output settings, validated."""
        self.arch_settings = self._parse_arch(arch)
        self.embed_dims = self.arch_settings['embed_dims']
        self.stem_mlp_blocks = tuple(self.arch_settings['stem_mlp_blocks'])
        self.depth = self.arch_settings['depth']
        self.num_heads = self.arch_settings['num_heads']
        if self.embed_dims % 4 != 0:
            raise ValueError(f'embed_dims must be divisible by 4, got '
                             f'{self.embed_dims}.')
        self.img_size = to_2tuple(img_size)
        self.grid_size = self.grid_of(*self.img_size)
        self.out_indices = self._parse_out_indices(out_indices)
        if out_type not in self.out_types:
            raise ValueError(f'out_type must be one of {self.out_types}, got '
                             f'{out_type!r}.')
        if out_type == 'avg_featmap' and self.out_indices != (2, ):
            raise ValueError("out_type='avg_featmap' pools the stride-16 "
                             f'stage only; got out_indices={out_indices}.')
        self.out_type = out_type

    @classmethod
    def _parse_arch(cls, arch: Union[str, ArchSettings]) -> ArchSettings:
        if isinstance(arch, str):
            if arch not in cls.arch_zoo:
                raise ValueError(
                    f'Unknown {cls.__name__} arch {arch!r}; choose '
                    f'one of {sorted(cls.arch_zoo)} or pass a '
                    'dict.')
            return dict(cls.arch_zoo[arch])
        required = {'embed_dims', 'stem_mlp_blocks', 'depth', 'num_heads'}
        if not isinstance(arch, dict) or set(arch) != required:
            raise ValueError(f'A custom {cls.__name__} arch must be a dict '
                             'with keys '
                             f'{sorted(required)}, got {arch!r}.')
        if len(arch['stem_mlp_blocks']) != 2:
            raise ValueError('stem_mlp_blocks gives the MLP blocks at stride '
                             f'4 and 8, got {arch["stem_mlp_blocks"]!r}.')
        return dict(arch)

    @staticmethod
    def _parse_out_indices(out_indices: Sequence[int]) -> Tuple[int, ...]:
        if isinstance(out_indices, int):
            out_indices = (out_indices, )
        parsed = []
        for index in out_indices:
            if not -3 <= index <= 2:
                raise ValueError('out_indices select stages 0 (stride 4), 1 '
                                 f'(stride 8) and 2 (stride 16); got {index}.')
            parsed.append(index % 3)
        return tuple(sorted(set(parsed)))

    @staticmethod
    def grid_of(height: int, width: int) -> Tuple[int, int]:
        """Unit grid of an input size; raises if a side is not a multiple
        of 16."""
        if height % UNIT_SIZE or width % UNIT_SIZE:
            raise ValueError(
                f'HiViT-family backbones need input sides that are multiples '
                f'of {UNIT_SIZE}, '
                f'got {height}x{width} (H x W); resize or pad the input.')
        return height // UNIT_SIZE, width // UNIT_SIZE

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints made at another resolution (e.g. 224 pretraining for a
        # 512 segmentor) hold a square position embedding of another grid;
        # resize it here as the forward would.
        key = prefix + self.pos_embed_name
        if key in state_dict:
            pos_embed = state_dict[key]
            own = getattr(self, self.pos_embed_name)
            if (pos_embed.dim() == 3 and pos_embed.shape[-1] == own.shape[-1]
                    and pos_embed.shape[1] != own.shape[1]):
                side = round(pos_embed.shape[1]**0.5)
                if side * side != pos_embed.shape[1]:
                    raise ValueError(
                        f'{key}: cannot infer the square grid of a position '
                        f'embedding with {pos_embed.shape[1]} tokens.')
                state_dict[key] = resize_pos_embed(pos_embed, (side, side),
                                                   self.grid_size)
        check_checkpoint_shapes(
            self, state_dict, prefix, resizable=self.resizable_on_load)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _frozen_modules(self) -> List[nn.Module]:
        if self.frozen_stages < 0:
            return []
        modules: List[nn.Module] = [self.patch_embed, self.pos_drop]
        stage_ends = [end for _, end in self.stem_ranges] + [len(self.blocks)]
        last = stage_ends[min(self.frozen_stages, 3) - 1] \
            if self.frozen_stages > 0 else 0
        # A PatchMerge opens the stage after it, so a frozen stage 1 keeps
        # the first merge trainable.
        modules += list(self.blocks[:last])
        if self.frozen_stages >= 3:
            modules.append(self.fc_norm)
        return modules

    def _freeze_stages(self) -> None:
        if self.frozen_stages < 0:
            return
        getattr(self, self.pos_embed_name).requires_grad = False
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'UnitPyramidBackbone':
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        return self

    def _run(self, block: nn.Module, x: Tensor, *args) -> Tensor:
        if self.with_cp and self.training and x.requires_grad:
            return checkpoint(block, x, *args, use_reentrant=False)
        return block(x, *args)
