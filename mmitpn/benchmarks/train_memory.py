# Copyright (c) mmitpn contributors. All rights reserved.
"""How much GPU memory a training step of a config needs, estimated on the
CPU: the bytes one training forward keeps for backward, plus parameters,
gradients and optimizer states, plus a margin.

:class:`SavedTensorCounter` counts every tensor autograd saves for backward
when it is saved (:class:`torch.autograd.graph.saved_tensors_hooks`), each
storage once while it lives, and drops it: the count needs no memory for
what it counts, and runs on the meta device (no computation) as well as on
the CPU. Two things are counted as a GPU would keep them, not as the
machine that counts runs them:

- **Attention** (``scaled_dot_product_attention``): as the fused kernels
  (flash / memory-efficient) keep it, queries, keys, values, the bias, the
  output and one float32 log-sum-exp per row, never the ``(L, L)``
  weights the math path of the meta device or the CPU would save.
- **Mixed precision** (``amp=True``) is replayed, not run: CPU autocast has
  no bf16 kernels for mmcv's RoIAlign and deformable attention, and the
  meta device has no autocast. The counter follows the dtype that CUDA's
  fp16 autocast would give every tensor (:data:`HALF_OPS` run in fp16 on
  fp16 copies of their inputs, :data:`FLOAT_OPS` in fp32, every other op
  in the widest dtype of its inputs, normalisations in their input's) and
  counts each saved tensor at that size; weights are cast once per step
  (autocast's cache), other inputs of an fp16 op once per call. Attention
  of a module with ``upcast=True`` (mmitpn's Fast-iTPN) runs in fp32.

:func:`count_features` counts a model's backbone and neck on the meta
device, :func:`count_heads` the rest on the CPU with stand-in features, and
:func:`estimate_config` adds parameters, gradients, optimizer states and
the margin.
"""
import copy
import math
import weakref
from dataclasses import dataclass, field
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Set, Tuple)

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope
from torch import nn
from torch.overrides import TorchFunctionMode

from mmitpn.utils import adapt_cfg_to_device
from .downstream import INPUTS, build_case_model, strip_pretrained

# CUDA autocast's op lists (the PyTorch AMP documentation), by the op's
# Python name: functional, torch.* and Tensor method alike.
HALF_OPS = frozenset({
    'linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d',
    'conv_transpose2d', 'conv_transpose3d', 'prelu', 'matmul', '__matmul__',
    '__rmatmul__', 'mm', 'mv', 'bmm', 'baddbmm', 'addmm', 'addbmm', 'addmv',
    'addr', 'einsum', 'chain_matmul', 'scaled_dot_product_attention'
})
FLOAT_OPS = frozenset({
    'layer_norm', 'group_norm', 'softmax', 'log_softmax', 'interpolate',
    'upsample', 'exp', 'expm1', 'log', 'log2', 'log10', 'log1p', 'pow',
    '__pow__', 'rsqrt', 'reciprocal', 'softplus', 'sum', 'prod', 'cumsum',
    'cumprod', 'norm', 'normalize', 'cosine_similarity', 'logsumexp', 'cdist',
    'dist', 'cross_entropy', 'nll_loss', 'binary_cross_entropy_with_logits',
    'l1_loss', 'smooth_l1_loss', 'huber_loss', 'mse_loss', 'kl_div', 'acos',
    'asin', 'cosh', 'sinh', 'tan', 'erfinv'
})
# Ops whose output keeps the dtype of their input whatever their
# parameters' (cuDNN's batch norm takes fp16 input with fp32 weights).
INPUT_DTYPE_OPS = frozenset({'batch_norm', 'instance_norm'})
ATTENTION = 'scaled_dot_product_attention'
GIB = 2**30


def _tensors(value: Any) -> Iterable[torch.Tensor]:
    """The tensors of an op's arguments or outputs (nested one level in
    tuples, lists and dicts, as torch ops take and return them)."""
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            if isinstance(item, torch.Tensor):
                yield item
            elif isinstance(item, (tuple, list)):
                yield from (t for t in item if isinstance(t, torch.Tensor))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def _bits(dtype: torch.dtype) -> int:
    return torch.finfo(dtype).bits


class _OpTracker(TorchFunctionMode):
    """Tells the counter which op runs and, under the replayed autocast,
    the dtype of what it writes; counts attention as a fused kernel."""

    def __init__(self, counter: 'SavedTensorCounter') -> None:
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, '__name__', '')
        counter = self.counter
        if name == ATTENTION:
            return counter.fused_attention(func, args, kwargs)
        inputs = [
            t for t in _tensors(list(args) + list(kwargs.values()))
            if t.is_floating_point()
        ]
        counter.op = name
        counter.op_inputs = {id(t.untyped_storage()) for t in inputs}
        try:
            out = func(*args, **kwargs)
        finally:
            counter.op = None
        if name in HALF_OPS:
            dtype = torch.float16
        elif name in FLOAT_OPS:
            dtype = torch.float32
        elif not inputs:
            dtype = None
        elif name in INPUT_DTYPE_OPS or (name.endswith('_')
                                         and not name.startswith('__')):
            dtype = counter.dtype_of(inputs[0])  # in place / norms
        else:
            dtype = max((counter.dtype_of(t) for t in inputs), key=_bits)
        counter.resolve_pending(dtype)
        if dtype is not None:
            for tensor in _tensors(out):
                if tensor.is_floating_point():
                    counter.set_dtype(tensor, dtype)
        return out


class _KeptForBackward(torch.autograd.Function):
    """Saves its inputs for backward, as a fused attention kernel does."""

    @staticmethod
    def forward(ctx, *tensors: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(*tensors)
        return tensors[0].new_empty(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return (None, ) * len(ctx.saved_tensors)


@dataclass
class SavedBytes:
    """What one training forward keeps for backward, in bytes."""
    saved: int = 0
    held: int = 0
    by_part: Dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.saved + self.held


class SavedTensorCounter:
    """Counts the bytes a training forward keeps for backward.

    Used as a context manager around one training forward of ``model`` (or
    of some of its modules), then :meth:`finish`. Counted, each storage
    once while it lives:

    - ``saved``: every tensor autograd saves for backward, parameters
      excepted (they are counted apart), with activation checkpointing the
      inputs the checkpointed calls keep. The tensor is dropped once
      counted (backward cannot run after a counted forward).
    - ``held``: the floating inputs of the model's modules that are still
      alive when the forward ends and were not saved by autograd: the batch
      and module caches.

    ``by_part`` splits ``saved`` by the top-level child of ``model`` whose
    module runs (``backbone``, ``neck``, the heads). See the module
    docstring for attention and ``amp``.
    """

    def __init__(self, model: nn.Module, amp: bool = False) -> None:
        self.model = model
        self.amp = amp
        self.op: Optional[str] = None  # the running op
        self.op_inputs: Set[int] = set()
        self.result = SavedBytes()
        tensors = list(model.parameters()) + list(model.buffers())
        self._params = {id(t.untyped_storage()) for t in tensors}
        self._dtypes: Dict[int, torch.dtype] = {}  # storage id -> dtype
        self._counted: Set[Any] = set()  # keys of live counted storages
        self._inputs: Dict[int, int] = {}  # live module inputs' bytes
        self._watched: Set[int] = set()
        self._pending: list = []
        self._paused = False
        self._attention_dtype = torch.float32
        self._modules: List[Tuple[str, nn.Module]] = []
        self._handles: list = []
        self._contexts: list = []

    # Storages are identified by their Python object, the same for all
    # views while the storage lives; a finalizer forgets it when it dies.
    def _watch(self, storage) -> int:
        key = id(storage)
        if key not in self._watched:
            self._watched.add(key)
            weakref.finalize(storage, self._forget, key)
        return key

    def _forget(self, key: int) -> None:
        self._watched.discard(key)
        self._dtypes.pop(key, None)
        self._counted.discard(key)
        self._inputs.pop(key, None)

    def dtype_of(self, tensor: torch.Tensor) -> torch.dtype:
        """The dtype ``tensor`` would have on the GPU."""
        if not self.amp:
            return tensor.dtype
        return self._dtypes.get(id(tensor.untyped_storage()), tensor.dtype)

    def set_dtype(self, tensor: torch.Tensor, dtype: torch.dtype) -> None:
        storage = tensor.untyped_storage()
        if self.amp and id(storage) not in self._params:
            self._dtypes[self._watch(storage)] = dtype

    @staticmethod
    def _storage_bytes(tensor: torch.Tensor, dtype: torch.dtype) -> int:
        """The bytes of ``tensor``'s whole storage in ``dtype``."""
        nbytes = tensor.untyped_storage().nbytes()
        if not tensor.is_floating_point():
            return nbytes
        return nbytes // tensor.element_size() * _bits(dtype) // 8

    def _add(self, key: Any, nbytes: int, saved: bool = True) -> None:
        if key in self._counted:
            return
        self._counted.add(key)
        if saved:
            self.result.saved += nbytes
            part = self._modules[-1][0] if self._modules else '(model)'
            self.result.by_part[part] = \
                self.result.by_part.get(part, 0) + nbytes
        else:
            self.result.held += nbytes

    def _save_as(self, tensor: torch.Tensor, dtype: torch.dtype) -> None:
        """Count ``tensor`` saved in ``dtype``: its own storage, or a copy
        of the view if autocast casts it (once a step for a weight)."""
        storage = tensor.untyped_storage()
        key = id(storage)
        own = self.dtype_of(tensor)
        if key in self._params:
            if own != dtype:
                self._add((key, dtype), tensor.numel() * _bits(dtype) // 8)
        elif own == dtype or not tensor.is_floating_point():
            self._add(self._watch(storage), self._storage_bytes(tensor, own))
        else:
            self._add(object(), tensor.numel() * _bits(dtype) // 8)

    def _pack(self, tensor: torch.Tensor) -> None:
        if self._paused:
            return None
        key = id(tensor.untyped_storage())
        if self.op == ATTENTION:
            self._save_as(
                tensor, self._attention_dtype
                if key in self.op_inputs else tensor.dtype)
        elif self.amp and tensor.is_floating_point() and \
                self.op is not None and key not in self.op_inputs:
            # Made inside the running op (its output or an intermediate):
            # its dtype is the op's, known when the op returns.
            self._pending.append(tensor)
        elif self.amp and self.op in HALF_OPS:
            self._save_as(tensor, torch.float16)
        elif self.amp and self.op in FLOAT_OPS:
            self._save_as(tensor, torch.float32)
        elif key not in self._params:
            self._save_as(tensor, self.dtype_of(tensor))
        return None

    def resolve_pending(self, dtype: Optional[torch.dtype]) -> None:
        for tensor in self._pending:
            storage = tensor.untyped_storage()
            self._add(
                self._watch(storage),
                self._storage_bytes(tensor, dtype or tensor.dtype))
        self._pending.clear()

    def fused_attention(self, func: Callable, args: tuple,
                        kwargs: dict) -> torch.Tensor:
        """Run ``scaled_dot_product_attention`` and count what a fused GPU
        kernel keeps for its backward, whatever this device's path saves.
        """
        query, key, value = args[:3]
        bias = args[3] if len(args) > 3 else kwargs.get('attn_mask')
        self._paused = True
        try:
            out = func(*args, **kwargs)
        finally:
            self._paused = False
        upcast = any(getattr(m, 'upcast', False) for _, m in self._modules)
        dtype = (torch.float32 if upcast else torch.float16) if self.amp \
            else query.dtype
        self.set_dtype(out, dtype)
        kept = [
            t for t in (query, key, value, bias, out)
            if isinstance(t, torch.Tensor) and t.is_floating_point()
        ]
        # Saved through autograd, so that a checkpointed region's own hooks
        # take them as they take every other saved tensor there.
        self.op, self.op_inputs = ATTENTION, {
            id(t.untyped_storage())
            for t in kept
        }
        self._attention_dtype = dtype
        try:
            _KeptForBackward.apply(
                *kept,
                # The log-sum-exp of every query row, float32.
                out.new_empty(out.shape[:-1], dtype=torch.float32))
        finally:
            self.op = None
        return out

    def _record_inputs(self, args) -> None:
        for tensor in _tensors(args):
            storage = tensor.untyped_storage()
            if tensor.is_floating_point() and id(storage) not in self._params:
                # No reference is kept: the storage is counted when the
                # forward ends only if something else still holds it.
                self._inputs[self._watch(storage)] = self._storage_bytes(
                    tensor, self.dtype_of(tensor))

    def _enter(self, part: str, module: nn.Module, args) -> None:
        self._modules.append((part, module))
        self._record_inputs(args)

    def __enter__(self) -> 'SavedTensorCounter':
        # Saved tensors are attributed to the top-level child that owns the
        # innermost running module: heads are often entered through a
        # method (``decode_head.loss``), their layers through ``__call__``.
        for name, module in self.model.named_modules():
            part = name.split('.')[0] or '(model)'
            self._handles += [
                module.register_forward_pre_hook(
                    lambda m, a, part=part: self._enter(part, m, a)),
                module.register_forward_hook(
                    lambda m, a, o: self._modules.pop() and None)
            ]
        self._contexts = [
            torch.autograd.graph.saved_tensors_hooks(self._pack,
                                                     lambda packed: packed),
            _OpTracker(self)
        ]
        for context in self._contexts:
            context.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for context in reversed(self._contexts):
            context.__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self.resolve_pending(None)

    def finish(self) -> SavedBytes:
        """Add the module inputs still alive (call while the forward's
        outputs are alive, after the ``with`` block) and return the
        count."""
        for key, nbytes in self._inputs.items():
            self._add(key, nbytes, saved=False)
        self._inputs.clear()
        return self.result


# Optimizer states per trainable parameter, fp32 each.
OPTIMIZER_STATES = dict(AdamW=2, Adam=2, Lamb=2, LAMB=2, SGD=1, Lion=1)


@dataclass
class MemoryEstimate:
    """The parts of a training step's GPU memory, in bytes, and their sum
    with a margin (:attr:`total`)."""
    activations: SavedBytes
    params: int
    trainable: int
    optimizer_states: int
    margin: float

    @property
    def params_bytes(self) -> int:
        return 4 * self.params

    @property
    def grads_bytes(self) -> int:
        return 4 * self.trainable

    @property
    def states_bytes(self) -> int:
        return 4 * self.optimizer_states * self.trainable

    @property
    def total(self) -> int:
        """Activations, fp32 parameters, gradients and optimizer states,
        plus :attr:`margin` of that sum."""
        return math.ceil(
            (self.activations.total + self.params_bytes + self.grads_bytes +
             self.states_bytes) * (1 + self.margin))


def count_training_forward(model: nn.Module,
                           forward: Callable[[], Any],
                           amp: bool = False) -> SavedBytes:
    """What one training forward ``forward()`` of ``model`` keeps for
    backward (:class:`SavedTensorCounter`). Backward cannot run after it."""
    model.train()
    with SavedTensorCounter(model, amp) as counter:
        outputs = forward()
    saved = counter.finish()
    del outputs
    return saved


class StandInFeatures(nn.Module):
    """Stands in for a backbone and its neck: random features of the
    recorded shapes, through a parameter so that the heads' backward is
    taken as in the full model."""

    def __init__(self, shapes: Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.shapes = [tuple(shape) for shape in shapes]
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        return tuple(
            torch.randn(shape, device=inputs.device) * self.scale
            for shape in self.shapes)


TASKS = dict(mmdet='det', mmseg='seg', mmpretrain='cls')
FEATURE_PARTS = ('backbone', 'neck')


def load_train_config(path: str,
                      cfg_options: Optional[dict] = None
                      ) -> Tuple[Config, bool]:
    """A config as :func:`estimate_config` takes it (``cfg_options`` merged,
    pretrained weights removed, adapted to this machine), and whether it
    trains with mixed precision (``AmpOptimWrapper``).

    Raises:
        ValueError: The config is not a detection, segmentation or
            classification config.
    """
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.get('default_scope') not in TASKS:
        raise ValueError(
            f'{path}: default_scope {cfg.get("default_scope")!r} is not a '
            'detection, segmentation or classification config (mmdet, '
            'mmseg, mmpretrain).')
    amp = cfg.optim_wrapper.get('type', '').endswith('AmpOptimWrapper')
    cfg.launcher = 'none'
    if cfg.get('data_preprocessor') is not None:
        cfg.model.setdefault('data_preprocessor', cfg.data_preprocessor)
    strip_pretrained(cfg.model)
    return adapt_cfg_to_device(cfg), amp


def num_classes(cfg: Config) -> Optional[int]:
    """The classes of ``cfg``'s detection, segmentation or classification
    head (the last stage's for a cascade), or None."""
    for path in (('roi_head', 'bbox_head'), ('bbox_head', ), ('decode_head', ),
                 ('head', )):
        node = cfg.model
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, (list, tuple)):
            node = node[-1]
        if isinstance(node, dict) and 'num_classes' in node:
            return node['num_classes']
    return None


def random_batch(cfg: Config, model: nn.Module, batch: int,
                 size: Tuple[int, int]) -> dict:
    """``batch`` random training samples of ``size`` for ``cfg``'s task and
    classes, through the model's data preprocessor."""
    task = TASKS[cfg.default_scope]
    classes = num_classes(cfg)
    if task == 'seg':
        model.data_preprocessor.size = size
    samples = INPUTS[task](
        size, batch, **({} if classes is None else dict(num_classes=classes)))
    return model.data_preprocessor(samples, True)


def _build(cfg: Config, device: str) -> nn.Module:
    with DefaultScope.overwrite_default_scope(cfg.default_scope), \
            torch.device(device):
        # A copy: some builders write into their config (mmdet's DINO).
        model = MODELS.build(copy.deepcopy(cfg.model))
    return model.to(device)  # also tells the data preprocessor


@dataclass
class Features:
    """What backbone and neck keep for backward (:func:`count_features`),
    the shapes of the features they give, and the model's parameters."""
    activations: SavedBytes
    shapes: List[Tuple[int, ...]]
    params: int
    trainable: int


def count_features(cfg: Config, batch: int, size: Tuple[int, int],
                   amp: bool) -> Features:
    """Count the training forward of ``cfg``'s backbone and neck on the
    meta device (no computation: seconds, whatever the size), on ``batch``
    images of ``size`` (height, width)."""
    model = _build(cfg, 'meta')
    images = torch.empty(batch, 3, *size, device='meta')
    activations = count_training_forward(model,
                                         lambda: model.extract_feat(images),
                                         amp)
    params = list(model.parameters())
    with torch.no_grad():
        shapes = [tuple(f.shape) for f in model.extract_feat(images)]
    return Features(activations, shapes, sum(p.numel() for p in params),
                    sum(p.numel() for p in params if p.requires_grad))


def count_heads(cfg: Config, shapes: Sequence[Sequence[int]], batch: int,
                size: Tuple[int, int], amp: bool) -> SavedBytes:
    """Count the training forward of ``cfg``'s model on the CPU with its
    backbone and neck replaced by :class:`StandInFeatures` of ``shapes``:
    what the heads keep for backward (``by_part`` without backbone and
    neck). The heads' work, often data-dependent (proposals, sampling,
    matching), needs real values; it is a small part of the time."""
    torch.manual_seed(0)
    # Built and initialised as the Runner would (heads made on the meta
    # device and moved lose what their constructors computed).
    model = build_case_model(copy.deepcopy(cfg))
    model.backbone = StandInFeatures(shapes)
    if getattr(model, 'neck', None) is not None:
        model.neck = nn.Identity()
    data = random_batch(cfg, model, batch, size)
    heads = count_training_forward(model, lambda: model(**data, mode='loss'),
                                   amp)
    by_part = {
        part: nbytes
        for part, nbytes in heads.by_part.items() if part not in FEATURE_PARTS
    }
    return SavedBytes(saved=sum(by_part.values()), by_part=by_part)


def count_whole(cfg: Config, batch: int, size: Tuple[int, int],
                amp: bool) -> Features:
    """Count the whole training forward of ``cfg``'s model on the CPU (the
    reference :func:`count_features` + :func:`count_heads` is checked
    against; minutes for a full-size detector)."""
    torch.manual_seed(0)
    model = build_case_model(cfg)
    data = random_batch(cfg, model, batch, size)
    activations = count_training_forward(model,
                                         lambda: model(**data, mode='loss'),
                                         amp)
    params = list(model.parameters())
    return Features(activations, [], sum(p.numel() for p in params),
                    sum(p.numel() for p in params if p.requires_grad))


def combine(features: SavedBytes, heads: SavedBytes) -> SavedBytes:
    """Backbone and neck's count with the heads' count."""
    by_part = dict(features.by_part)
    for part, nbytes in heads.by_part.items():
        by_part[part] = by_part.get(part, 0) + nbytes
    return SavedBytes(
        saved=features.saved + heads.saved,
        held=features.held,
        by_part=by_part)


def estimate_config(cfg: Config,
                    batch: int,
                    size: Tuple[int, int],
                    amp: bool,
                    margin: float = 0.2,
                    split: bool = True) -> MemoryEstimate:
    """Estimate the peak GPU memory of a training step of ``cfg`` on
    ``batch`` random images of ``size``: what the forward keeps for
    backward (:func:`count_features` + :func:`count_heads`, or with
    ``split=False`` :func:`count_whole`) plus fp32 parameters, gradients of
    the trainable ones and the optimizer's states
    (:data:`OPTIMIZER_STATES`), plus ``margin`` of the sum for what the
    count leaves out (the caching allocator's fragmentation, cuBLAS /
    cuDNN workspaces, backward's activation gradients).

    Raises:
        ValueError: The config's optimizer is not in
            :data:`OPTIMIZER_STATES`.
    """
    states = optimizer_states(cfg)
    if split:
        features = count_features(cfg, batch, size, amp)
        activations = combine(
            features.activations,
            count_heads(cfg, features.shapes, batch, size, amp))
    else:
        features = count_whole(cfg, batch, size, amp)
        activations = features.activations
    return MemoryEstimate(
        activations=activations,
        params=features.params,
        trainable=features.trainable,
        optimizer_states=states,
        margin=margin)


def optimizer_states(cfg: Config) -> int:
    """fp32 states per trainable parameter of ``cfg``'s optimizer.

    Raises:
        ValueError: The optimizer is not in :data:`OPTIMIZER_STATES`.
    """
    optimizer = cfg.optim_wrapper.optimizer.type.split('.')[-1]
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f'No optimizer-state count for {optimizer!r}; '
                         f'known: {sorted(OPTIMIZER_STATES)}.')
    return OPTIMIZER_STATES[optimizer]
