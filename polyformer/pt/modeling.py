"""`PreTrainedModel`: what every PyTorch model shares — loading, saving, init, tying, resizing.

Loading builds the model on the meta device (no memory for weights), initialises only the modules
whose weights the checkpoint lacks, then assigns the checkpoint's tensors: memory-mapped safetensors stay
mapped when their dtype is the one asked for (no copy), and a dtype conversion holds only the converted
weights. With a `device_map` (pt/device_map.py, through accelerate) each tensor goes straight to its
device, or to disk, and the model is dispatched.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import torch
import torch.nn as nn

from ..checkpoints import find_weight_files, load_file, save_state_dict
from ..saving import save_transaction
from ..push_to_hub import PushToHubMixin
from ..configuration import PretrainedConfig, dtype_name, pop_hub_kwargs, resolve_config
from ..load_report import log_unused_weights
from .attention import check_implementation
from . import device_map as placing
from ..quantization_config import TorchAoConfig
from .layers import SinusoidalEmbedding
from .packing import is_packed
from .quantize import check_can_save, quantize_

logger = logging.getLogger(__name__)

_LEGACY_NAMES = {"gamma": "weight", "beta": "bias"}  # old LayerNorm parameter names


def resolve_dtype(torch_dtype: Any, config: PretrainedConfig, first_tensor: Optional[torch.Tensor]) -> torch.dtype:
    """`torch_dtype` argument -> a floating torch.dtype ("auto": the config's or the checkpoint's)."""
    if torch_dtype is None:
        return torch.float32
    if torch_dtype == "auto":
        name = getattr(config, "torch_dtype", None)
        if name:
            return resolve_dtype(name, config, None)
        return first_tensor.dtype if first_tensor is not None and first_tensor.is_floating_point() else torch.float32
    if isinstance(torch_dtype, str):
        torch_dtype = getattr(torch, torch_dtype, None)
    if not isinstance(torch_dtype, torch.dtype) or not torch_dtype.is_floating_point:
        raise ValueError(f"torch_dtype must be 'auto' or a floating torch.dtype (e.g. torch.float16), got {torch_dtype!r}")
    return torch_dtype


class PreTrainedModel(PushToHubMixin, nn.Module):
    """Base of every PyTorch model class.

    Subclasses set `config_class`, `base_model_prefix` (the attribute holding the bare model inside
    task models, e.g. "distilbert"), optionally `_tied_weights_keys`, and implement `_init_weights`
    for layers the generic init does not cover.
    """

    _push_save_args = ("max_shard_size", "safe_serialization")  # push_to_hub's arguments save_pretrained takes

    config_class: type = PretrainedConfig
    base_model_prefix: str = ""
    main_input_name: str = "input_ids"
    _tied_weights_keys: Optional[List[str]] = None
    # Module classes a device_map must keep whole on one device (the blocks); None: "auto" maps refused.
    _no_split_modules: Optional[List[str]] = None
    _skip_keys_device_placement: Optional[Union[str, List[str]]] = None  # inputs accelerate's hooks leave where they are
    supports_gradient_checkpointing: bool = True
    _supports_sdpa: bool = True
    _supports_flash_attn_2: bool = False  # opt-in: a family whose attention runs flash-attn says so

    def __init__(self, config: PretrainedConfig, *args, **kwargs):
        super().__init__()
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}")
        config.validate()
        # before any layer is built (on the meta device only the layers' Python objects take memory)
        config.check_fits(bytes_per_weight=0 if torch.get_default_device().type == "meta" else None)
        check_implementation(config._attn_implementation, self._supports_sdpa, self._supports_flash_attn_2)
        self.config = config
        self.name_or_path = config.name_or_path
        self.gradient_checkpointing = False

    # --- init -----------------------------------------------------------------------------------
    def post_init(self) -> None:
        """Call at the end of a subclass __init__: initialise every weight, then tie. On the meta device
        (from_pretrained) there is nothing to initialise: loading fills or initialises each tensor."""
        if self.config.pruned_heads:  # a pruned checkpoint: its layers have the pruned shapes
            self.prune_heads(self.config.pruned_heads)
        if not any(p.is_meta for p in self.parameters()):
            self.apply(self._init_weights)
        self.tie_weights()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's default init: normal(0, initializer_range) weights, zero biases, zeroed
        padding row, LayerNorm to identity, sinusoidal tables recomputed."""
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, SinusoidalEmbedding):
            module.reset_parameters()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
            if module.padding_idx is not None:
                module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            if module.bias is not None:
                module.bias.zero_()

    # --- embeddings -----------------------------------------------------------------------------
    @property
    def base_model(self) -> nn.Module:
        return getattr(self, self.base_model_prefix, self)

    @property
    def device(self) -> torch.device:
        """The device of the first parameter in memory (a dispatched model's offloaded weights sit on "meta");
        with every weight offloaded, the device its hooks compute on (the first GPU of `hf_device_map`, or the CPU)."""
        found = next((p.device for p in self.parameters() if not p.is_meta), None)
        if found is not None:
            return found
        gpus = sorted(d for d in getattr(self, "hf_device_map", {}).values() if isinstance(d, int))
        return torch.device("cuda", gpus[0]) if gpus else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        return next(p.dtype for p in self.parameters() if p.is_floating_point())

    def get_input_embeddings(self) -> nn.Embedding:
        if self.base_model is self:
            raise NotImplementedError(f"{type(self).__name__} must implement get_input_embeddings")
        return self.base_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        if self.base_model is self:
            raise NotImplementedError(f"{type(self).__name__} must implement set_input_embeddings")
        self.base_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> Optional[nn.Linear]:
        return None

    def tie_weights(self) -> None:
        """Share the input embedding matrix with the output projection when the config says so."""
        output = self.get_output_embeddings()
        if output is not None and self.config.tie_word_embeddings:
            output.weight = self.get_input_embeddings().weight

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None) -> nn.Embedding:
        """Grow or shrink the vocabulary: old rows kept, new rows initialised like fresh weights,
        the output projection (and its bias) following. Updates config.vocab_size."""
        old = self.get_input_embeddings()
        n = old.num_embeddings if new_num_tokens is None else new_num_tokens
        if pad_to_multiple_of is not None:
            n = -(-n // pad_to_multiple_of) * pad_to_multiple_of
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"new_num_tokens must be a positive int, got {new_num_tokens!r}")
        keep = min(n, old.num_embeddings)
        padding_idx = old.padding_idx if old.padding_idx is not None and old.padding_idx < n else None
        new = nn.Embedding(n, old.embedding_dim, padding_idx=padding_idx, device=old.weight.device, dtype=old.weight.dtype)
        self._init_weights(new)
        with torch.no_grad():
            new.weight[:keep] = old.weight[:keep]
        self.set_input_embeddings(new)

        output = self.get_output_embeddings()
        if output is not None:
            tied = self.config.tie_word_embeddings
            new_out = nn.Linear(output.in_features, n, bias=output.bias is not None,
                                device=output.weight.device, dtype=output.weight.dtype)
            self._init_weights(new_out)
            with torch.no_grad():
                if not tied:
                    new_out.weight[:keep] = output.weight[:keep]
                if output.bias is not None:
                    new_out.bias[:keep] = output.bias[:keep]
            self.set_output_embeddings(new_out)
        self.config.vocab_size = n
        self.tie_weights()
        return self.get_input_embeddings()

    def set_output_embeddings(self, value: nn.Linear) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no output embeddings to set")

    # --- head pruning -----------------------------------------------------------------------------
    def prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        """Remove attention heads from the base model, e.g. {1: [0, 2], 2: [2, 3]} prunes heads 0 and 2 of
        layer 1 and heads 2 and 3 of layer 2 (heads numbered as in the unpruned model). The union with the
        heads pruned before is kept in `config.pruned_heads`, which save_pretrained writes to config.json and
        from_pretrained re-applies. Only the classes whose transformers 4.37 counterpart prunes support it
        (DistilBERT, CANINE); the others raise NotImplementedError."""
        if not isinstance(heads_to_prune, dict):
            raise TypeError(f"heads_to_prune must be a dict {{layer index: [head indices]}}, got {type(heads_to_prune).__name__}")
        base = self.base_model
        if type(base)._prune_heads is PreTrainedModel._prune_heads:
            raise NotImplementedError(f"{type(self).__name__} does not support prune_heads (transformers 4.37 prunes "
                                      "heads of DistilBERT and CANINE only)")
        heads_to_prune = {layer: sorted(set(heads)) for layer, heads in heads_to_prune.items()}
        base._prune_heads(heads_to_prune)
        for layer, heads in heads_to_prune.items():
            self.config.pruned_heads[layer] = sorted(set(self.config.pruned_heads.get(layer, [])) | set(heads))

    def _prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        """Implemented by the base models that support pruning (usually with `_prune_layers`)."""
        raise NotImplementedError(f"{type(self).__name__} does not support prune_heads")

    @staticmethod
    def _prune_layers(attentions: List[nn.Module], heads_to_prune: Dict[int, List[int]]) -> None:
        """Call `prune_heads(heads)` on `attentions[layer]` for each entry (after checking every layer index)."""
        bad = [layer for layer in heads_to_prune if not isinstance(layer, int) or not 0 <= layer < len(attentions)]
        if bad:
            raise ValueError(f"heads_to_prune keys must be layer indices in [0, {len(attentions)}), got {bad}")
        for layer, heads in heads_to_prune.items():
            attentions[layer].prune_heads(heads)

    # --- misc -----------------------------------------------------------------------------------
    def num_parameters(self, only_trainable: bool = False, exclude_embeddings: bool = False) -> int:
        """Number of (unique) parameters, optionally only trainable ones or without embedding tables."""
        skip = set()
        if exclude_embeddings:
            skip = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        return sum(p.numel() for p in self.parameters() if id(p) not in skip and (p.requires_grad or not only_trainable))

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: Optional[Dict[str, Any]] = None) -> None:
        """Recompute each layer's activations in backward instead of storing them (less memory)."""
        if not self.supports_gradient_checkpointing:
            raise ValueError(f"{type(self).__name__} does not support gradient checkpointing")
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = False

    @property
    def is_gradient_checkpointing(self) -> bool:
        return any(getattr(m, "gradient_checkpointing", False) for m in self.modules())

    def get_head_mask(self, head_mask: Optional[torch.Tensor], num_layers: int) -> List[Optional[torch.Tensor]]:
        """(H,) or (L, H) 1/0 head mask -> per layer a (1, H, 1, 1) multiplier (or None)."""
        if head_mask is None:
            return [None] * num_layers
        if head_mask.dim() == 1:
            head_mask = head_mask.unsqueeze(0).expand(num_layers, -1)
        if head_mask.dim() != 2 or head_mask.shape[0] != num_layers:
            raise ValueError(f"head_mask must have shape (num_heads,) or ({num_layers}, num_heads), got {tuple(head_mask.shape)}")
        head_mask = head_mask.to(dtype=self.dtype, device=self.device)
        return [m[None, :, None, None] for m in head_mask]

    # --- save / load ----------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: Union[str, os.PathLike],
        *,
        is_main_process: bool = True,
        state_dict: Optional[Dict[str, torch.Tensor]] = None,
        safe_serialization: bool = True,
        max_shard_size: Union[int, str] = "5GB",
        **kwargs: Any,
    ) -> None:
        """Write config.json and the weights (safetensors by default, sharded past `max_shard_size`)
        into `save_directory`, as transformers would, as one atomic save (saving.py): a save killed at
        any moment loads as the old save or the new one."""
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file, expected a folder")
        unsavable = check_can_save(self)
        if unsavable:
            raise NotImplementedError(f"save_pretrained: {unsavable}")
        if is_packed(self):
            raise NotImplementedError("save_pretrained: this model's linear weights are packed for this CPU "
                                      "(pack_linears_); save the model before packing it")
        if not is_main_process:
            return
        self.config.architectures = [type(self).__name__]
        self.config.torch_dtype = dtype_name(self.dtype)
        if state_dict is None:  # a dispatched model's offloaded weights are read back, one module at a time
            state_dict = placing.gather_state_dict(self) if placing.is_dispatched(self) else self.state_dict()
        with save_transaction(save_directory):
            save_state_dict(self._drop_tied(state_dict), save_directory, safe_serialization=safe_serialization,
                            max_shard_size=max_shard_size)
            self.config.save_pretrained(save_directory)
            self._save_extras(save_directory)

    # Hooks for mixins that keep more than config and weights (GenerationMixin: generation_config.json).
    def _load_extras(self, name: str, hub_kwargs: Dict[str, Any]) -> None:
        """Called by from_pretrained after the weights are loaded."""

    def _save_extras(self, save_directory: str) -> None:
        """Called by save_pretrained after config and weights are written."""

    def can_generate(self) -> bool:
        """Whether `generate()` is available (the causal-LM and seq2seq heads)."""
        return False

    def _drop_tied(self, state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Tensors sharing memory are saved once, under the name that is not a tied key."""
        tied = set(self._tied_weights_keys or [])
        seen: Dict[Tuple[int, int], str] = {}
        kept = {}
        for key in sorted(state_dict, key=lambda k: k in tied):  # untied names first
            t = state_dict[key]
            ident = (t.untyped_storage().data_ptr(), t.storage_offset()) if t.device.type != "meta" else (id(t), 0)
            if ident in seen and t.numel():
                continue
            seen[ident] = key
            kept[key] = t
        return {k: kept[k] for k in state_dict if k in kept}

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: Union[str, os.PathLike],
        *model_args: Any,
        config: Optional[PretrainedConfig] = None,
        torch_dtype: Any = None,
        attn_implementation: Optional[str] = None,
        output_loading_info: bool = False,
        ignore_mismatched_sizes: bool = False,
        use_safetensors: Optional[bool] = None,
        device_map: Optional[Union[str, int, torch.device, Dict[str, Union[int, str, torch.device]]]] = None,
        max_memory: Optional[Dict[Union[int, str], Union[int, str]]] = None,
        offload_folder: Optional[Union[str, os.PathLike]] = None,
        offload_state_dict: Optional[bool] = None,
        low_cpu_mem_usage: Optional[bool] = None,
        from_flax: bool = False,
        quantization_config: Optional[Union[TorchAoConfig, Dict[str, Any]]] = None,
        **kwargs: Any,
    ):
        """Load a model from a folder or Hub id written by transformers (or polyformer).

        Args:
            config: a config to use instead of the folder's config.json.
            torch_dtype: None (float32), "auto" (the saved dtype), or a torch dtype / its name.
            attn_implementation: "eager", "sdpa" (default) or "flash_attention_2".
            output_loading_info: also return {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}.
            ignore_mismatched_sizes: re-initialise weights whose shape differs (e.g. a new classifier)
                instead of failing.
            from_flax: read flax_model.msgpack (a Flax checkpoint; needs jax and flax installed).
            quantization_config: a `TorchAoConfig` (or its dict): the linear layers are quantized to int8 /
                int4 weight-only after loading (pt/quantize.py), the output embeddings excepted.
            device_map: where the weights go (needs accelerate): "auto" / "balanced" / "balanced_low_0" /
                "sequential" (inferred from the free memory and `max_memory`), a device ("cpu", "cuda:1", 0), or
                a dict {module name: GPU index | "cpu" | "disk"}; each tensor is loaded straight to its device,
                the model dispatched with accelerate's hooks, and `model.hf_device_map` set (pt/device_map.py).
            max_memory: with an inferred device_map, the most memory per device, e.g. {0: "10GiB", "cpu": "30GiB"}.
            offload_folder: where weights mapped to "disk" are kept (needed when the map holds "disk").
            offload_state_dict, low_cpu_mem_usage: accepted for transformers' API; loading always builds the
                model on the meta device and reads each tensor once, memory-mapped where possible.
            cache_dir, revision, local_files_only, token, force_download, subfolder: where to read from.
            Other keyword arguments override config values (num_labels, id2label, problem_type, ...).
        """
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = pop_hub_kwargs(kwargs)
        config, unused = resolve_config(cls.config_class, name, config, hub_kwargs, kwargs)
        if unused:
            raise TypeError(f"{cls.__name__}.from_pretrained got unexpected keyword arguments {sorted(unused)}")
        if isinstance(quantization_config, dict):
            quantization_config = TorchAoConfig.from_dict(quantization_config)
        if quantization_config is not None and not isinstance(quantization_config, TorchAoConfig):
            raise TypeError(f"quantization_config must be a TorchAoConfig, got {type(quantization_config).__name__}")
        if getattr(config, "quantization_config", None) is not None:
            raise NotImplementedError(f"{name!r} holds quantized weights (config.json has a quantization_config), "
                                      "which polyformer does not read; load the floating-point checkpoint with "
                                      "quantization_config=TorchAoConfig(...) instead")
        _check_flag(low_cpu_mem_usage, "low_cpu_mem_usage")
        _check_flag(offload_state_dict, "offload_state_dict")
        if device_map is not None:
            placing.require_accelerate()
            if low_cpu_mem_usage is False:
                raise ValueError("Passing along a `device_map` requires `low_cpu_mem_usage=True` (or leave it unset)")
        elif max_memory is not None or offload_folder is not None:
            raise ValueError("max_memory and offload_folder are used with a device_map only; pass device_map too")
        impl = attn_implementation or config._attn_implementation_internal
        if impl is None:
            impl = "sdpa" if cls._supports_sdpa else "eager"
        config._attn_implementation = impl

        if from_flax:
            try:
                from ..jx.modeling import read_flax_as_torch  # imports jax and flax
            except ImportError as error:
                raise ImportError(f"from_flax=True needs jax and flax ({error}); install them with "
                                  "pip install 'polyformer[flax]'") from error
            state, sources = read_flax_as_torch(name, hub_kwargs), {}
        else:
            state, sources = {}, {}
            for path in find_weight_files(name, use_safetensors=use_safetensors, **hub_kwargs):
                for key, tensor in load_file(path).items():  # memory-mapped: nothing is read yet
                    state[key], sources[key] = tensor, (path, key)
        first = next((t for t in state.values() if t.is_floating_point()), None)
        dtype = resolve_dtype(torch_dtype, config, first)

        config.check_fits(bytes_per_weight=torch.empty((), dtype=dtype).element_size())  # the loaded model's size
        with torch.device("meta"):
            model = cls(config, *model_args)
        placement = None
        if device_map is not None:
            device_map = placing.resolve_device_map(model, device_map, max_memory=max_memory, dtype=dtype)
            _check_quantized_map(quantization_config, device_map)
            placement = placing.Placement(model, device_map, offload_folder)
        info = model._load_state(state, dtype, ignore_mismatched_sizes, placement=placement, sources=sources)
        del state, first  # the model holds the weights now: each original is freed as it is placed
        model.tie_weights()
        model._load_extras(name, hub_kwargs)
        if quantization_config is not None:
            quantize_(model, quantization_config)
        if placement is not None:
            placing.dispatch(model, device_map, placement)
        model.eval()
        return (model, info) if output_loading_info else model

    def _load_state(self, state: Dict[str, torch.Tensor], dtype: torch.dtype, ignore_mismatched_sizes: bool,
                    placement: Optional[placing.Placement] = None,
                    sources: Optional[Dict[str, Tuple[str, str]]] = None) -> Dict[str, list]:
        """Fill a meta-device model from a checkpoint state dict; returns the loading info. placement: where
        each tensor goes under a device_map (None: the CPU); sources: checkpoint key -> (file, key in it)."""
        original = self._match_prefix({self._rename_legacy(k): k for k in state})  # model key -> checkpoint key
        state = {k: state[o] for k, o in original.items()}
        expected = self.state_dict()
        tied = set(self._tied_weights_keys or []) if self.config.tie_word_embeddings else set()

        mismatched = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items()
                      if k in expected and v.shape != expected[k].shape]
        if mismatched and not ignore_mismatched_sizes:
            lines = "\n".join(f"  {k}: checkpoint {a}, model {b}" for k, a, b in mismatched)
            raise RuntimeError(f"weights of {type(self).__name__} have other shapes than the checkpoint:\n{lines}\n"
                               "Pass ignore_mismatched_sizes=True to re-initialise them.")
        for key, _, _ in mismatched:
            del state[key]
        unexpected = sorted(k for k in state if k not in expected)
        missing = sorted(k for k in expected if k not in state and k not in tied)

        # Initialise (in float32, as the reference) only what the checkpoint does not provide.
        owners = {k.rsplit(".", 1)[0] if "." in k else "" for k in missing}
        modules = dict(self.named_modules())
        initialised = []
        for name, module in modules.items():
            if name in owners or getattr(module, "_non_persistent_buffers_set", None):
                module.to_empty(device="cpu", recurse=False)
                self._init_weights(module)
                initialised += [f"{name}.{n}" if name else n for n, _ in module.named_parameters(recurse=False)]
                initialised += [f"{name}.{n}" if name else n for n, _ in module.named_buffers(recurse=False)]
        if placement is None:
            loaded = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items() if k in expected}
        else:  # one tensor at a time, straight to its device; disk weights stay on meta (placement.index)
            sources = sources or {}
            loaded = {}
            for key in [k for k in state if k in expected]:
                placed = placement.place(key, state.pop(key), dtype, sources.get(original[key]))
                if placed is not None:
                    loaded[key] = placed
            placing.place_module_tensors(self, placement, [n for n in initialised if n not in loaded], dtype)
        self.load_state_dict(loaded, strict=False, assign=True)
        self.tie_weights()
        self.to(dtype)
        offloaded = placement.offloaded(self) if placement is not None else set()
        still_meta = [n for n, t in list(self.named_parameters()) + list(self.named_buffers())
                      if t.is_meta and n not in offloaded]
        if still_meta:
            raise RuntimeError(f"internal error: weights left uninitialised after loading: {still_meta}")

        if missing or mismatched:
            logger.warning("Some weights of %s were newly initialized (not in the checkpoint): %s. "
                           "You should probably train this model before using it.",
                           type(self).__name__, missing + [k for k, _, _ in mismatched])
        log_unused_weights(logger, type(self).__name__, unexpected, self.config.architectures,
                           {k.split(".", 1)[0] for k in expected})
        return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched, "error_msgs": []}

    def _get_no_split_modules(self, device_map: str) -> List[str]:
        """The module classes an inferred device_map keeps whole: the union of `_no_split_modules` of the
        model and of the PreTrainedModels inside it; a ValueError where one has none."""
        classes: Set[str] = set()
        for module in self.modules():
            if isinstance(module, PreTrainedModel) and type(module).__name__ not in classes:
                if module._no_split_modules is None:
                    raise ValueError(f"{type(module).__name__} does not support `device_map='{device_map}'`. To "
                                     "implement support, the model class needs to implement the `_no_split_modules` "
                                     "attribute.")
                classes |= set(module._no_split_modules)
        return sorted(classes)

    @staticmethod
    def _rename_legacy(key: str) -> str:
        head, _, last = key.rpartition(".")
        return f"{head}.{_LEGACY_NAMES[last]}" if last in _LEGACY_NAMES else key

    def _match_prefix(self, state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Let a task model load a bare-model checkpoint and the bare model load a task checkpoint."""
        prefix = self.base_model_prefix + "."
        if not self.base_model_prefix:
            return state
        expects = hasattr(self, self.base_model_prefix)
        has = any(k.startswith(prefix) for k in state)
        if expects and not has:
            return {prefix + k: v for k, v in state.items()}
        if has and not expects:
            return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state.items()}
        return state


def _check_flag(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name} must be True, False or None, got {value!r}")


def _check_quantized_map(quantization_config: Optional[TorchAoConfig], device_map: Dict[str, Any]) -> None:
    """Weight-only quantization runs on torch's CPU kernels: with a device_map, only a map onto the CPU."""
    if quantization_config is not None and set(device_map.values()) != {"cpu"}:
        raise NotImplementedError(f"quantization_config with a device_map that uses {sorted(map(str, set(device_map.values())))}: "
                                  "the int8 / int4 weight-only layers run on the CPU only; use device_map='cpu' "
                                  "(or none) with quantization_config")
