"""`FlaxPreTrainedModel`: what every Flax model shares — params, init, dtype casts, loading and saving.

A Flax model is a stateless `flax.linen` module (`model.module`) plus its parameters (`model.params`, a
nested dict) and config. Calls are functional: `model(input_ids, params=other_params)` runs with other
weights, so the model works under `jax.jit`, `grad` and `vmap`.

`from_pretrained` reads flax_model.msgpack (sharded or not) and, converting them (convert.py), the
PyTorch files of the same model: model.safetensors (sharded or not) and pytorch_model.bin. PyTorch files
are used when no msgpack exists (4.37 asks for `from_pt=True` for .bin files) or first with `from_pt=True`.
Parameters are built from the checkpoint alone: random init runs only when weights are missing.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional, Set, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization
from flax.core import unfreeze

from ..checkpoints import CheckpointError, find_weight_files, load_file, parse_size
from ..configuration import OutputOptions, PretrainedConfig, pop_hub_kwargs, resolve_config
from ..generation.config import GENERATION_CONFIG_NAME, GenerationConfig
from ..hub import (atomic_path, cache_hint, prepare_save_directory, read_json, resolve_file, write_atomically,
                   write_json)
from ..saving import remove_file, save_transaction
from ..load_report import log_unused_weights
from ..push_to_hub import PushToHubMixin
from .convert import Path, flatten, flax_to_pt, pt_to_flax, torch_to_numpy, unflatten

logger = logging.getLogger(__name__)

FLAX_WEIGHTS = "flax_model.msgpack"
FLAX_INDEX = "flax_model.msgpack.index.json"


class FlaxPreTrainedModel(PushToHubMixin):
    """Base of every Flax model class. Subclasses set `config_class`, `base_model_prefix`, `module_class`
    (a linen module taking `config` and `dtype`) and `init_inputs` (the dummy inputs of `init_weights`).

    Args:
        config: the model's config.
        input_shape: shape of the dummy input ids used to initialise the parameters.
        seed: PRNG seed of the initialisation.
        dtype: the computation dtype (jnp.float32, jnp.bfloat16, jnp.float16); parameters stay as they
            are (cast them with `to_bf16` / `to_fp16`).
        _do_init: False skips the initialisation: `model.params` is then unavailable and
            `from_pretrained` returns `(model, params)`.
        **kwargs: passed to the linen module.
    """

    _push_save_args = ("max_shard_size", "safe_serialization")  # push_to_hub's arguments save_pretrained takes

    config_class: type = PretrainedConfig
    base_model_prefix: str = ""
    main_input_name: str = "input_ids"
    module_class: type = None

    def __init__(self, config: PretrainedConfig, input_shape: Tuple[int, ...] = (1, 1), seed: int = 0,
                 dtype: Any = jnp.float32, _do_init: bool = True, **kwargs: Any):
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"{type(self).__name__} expects a {self.config_class.__name__}, got {type(config).__name__}")
        config.validate()
        config.check_fits()  # before any layer is built
        self._config = config
        self._module = self.module_class(config=config, dtype=dtype, **kwargs)
        self.key = jax.random.PRNGKey(seed)
        self.dtype = dtype
        self.input_shape = input_shape
        self.generation_config = GenerationConfig.from_model_config(config) if self.can_generate() else None
        self._is_initialized = _do_init
        self._missing_keys: Set[Path] = set()
        self._params_shape_tree = self._shapes(input_shape)
        self._required_params = set(flatten(self._params_shape_tree))
        if _do_init:
            self.params = self.init_weights(self.key, input_shape)

    # --- parameters -------------------------------------------------------------------------------
    @property
    def framework(self) -> str:
        return "flax"

    @property
    def config(self) -> PretrainedConfig:
        return self._config

    @property
    def module(self):
        return self._module

    @property
    def params(self) -> Dict[str, Any]:
        if not self._is_initialized:
            raise ValueError("`params` cannot be accessed from a model created with `_do_init=False`: call "
                             "`init_weights` and pass the params explicitly where needed.")
        return self._params

    @params.setter
    def params(self, params: Dict[str, Any]) -> None:
        if not self._is_initialized:
            raise ValueError("`params` cannot be set on a model created with `_do_init=False`; keep them outside.")
        params = unfreeze(params)
        missing = self._required_params - set(flatten(params))
        if missing:
            raise ValueError(f"Some parameters are missing. Make sure that `params` include the following parameters {missing}")
        self._params = params

    @property
    def required_params(self) -> Set[Path]:
        return self._required_params

    @property
    def params_shape_tree(self) -> Dict[str, Any]:
        return self._params_shape_tree

    def init_inputs(self, input_shape: Tuple[int, ...]) -> tuple:
        """The positional inputs of the module for `init_weights`: zero ids and a mask of ones."""
        ids = jnp.zeros(input_shape, dtype="i4")
        return ids, jnp.ones_like(ids)

    def _shapes(self, input_shape: Tuple[int, ...]) -> Dict[str, Any]:
        """The parameter tree as jax.ShapeDtypeStructs (traced, nothing computed)."""
        rngs = {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}
        return unfreeze(jax.eval_shape(lambda: self.module.init(rngs, *self.init_inputs(input_shape)))["params"])

    def init_weights(self, rng, input_shape: Tuple[int, ...], params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Random parameters; with `params`, those params with what they lack drawn at random.

        The init of the PyTorch classes: kernels and embeddings normal(0, initializer_range), biases 0,
        LayerNorm scales 1 — all the random numbers drawn in one call (one small compile, whatever the
        model), and only for the parameters `params` lacks."""
        shapes = flatten(self._params_shape_tree)  # parameter shapes do not depend on input_shape
        given = flatten(unfreeze(params)) if params is not None else {}
        todo = [k for k in shapes if k not in given]
        drawn = [k for k in todo if k[-1] in ("kernel", "embedding")]
        sizes = [int(np.prod(shapes[k].shape)) for k in drawn]
        noise = jax.random.normal(rng, (sum(sizes),), jnp.float32) * getattr(self.config, "initializer_range", 0.02)
        pieces = dict(zip(drawn, jnp.split(noise, np.cumsum(sizes)[:-1]))) if drawn else {}
        out = dict(given)
        for key in todo:
            shape, dtype = shapes[key].shape, shapes[key].dtype
            if key in pieces:
                out[key] = pieces[key].reshape(shape).astype(dtype)
            else:
                out[key] = (jnp.ones if key[-1] == "scale" else jnp.zeros)(shape, dtype)
        self._missing_keys = set()
        return unflatten({k: out[k] for k in shapes if k in out})

    def _cast(self, params: Dict[str, Any], dtype: Any, mask: Any = None) -> Dict[str, Any]:
        keep = flatten(unfreeze(mask)) if mask is not None else None
        flat = flatten(unfreeze(params))
        return unflatten({k: (v.astype(dtype) if jnp.issubdtype(v.dtype, jnp.floating) and (keep is None or keep[k])
                              else v) for k, v in flat.items()})

    def to_bf16(self, params: Dict[str, Any], mask: Any = None) -> Dict[str, Any]:
        """A copy of `params` with floating leaves in bfloat16 (`mask`: same tree of bools, True = cast)."""
        return self._cast(params, jnp.bfloat16, mask)

    def to_fp16(self, params: Dict[str, Any], mask: Any = None) -> Dict[str, Any]:
        """A copy of `params` with floating leaves in float16 (`mask`: same tree of bools, True = cast)."""
        return self._cast(params, jnp.float16, mask)

    def to_fp32(self, params: Dict[str, Any], mask: Any = None) -> Dict[str, Any]:
        """A copy of `params` with floating leaves in float32 (`mask`: same tree of bools, True = cast)."""
        return self._cast(params, jnp.float32, mask)

    def can_generate(self) -> bool:
        return False

    def enable_gradient_checkpointing(self) -> None:
        raise NotImplementedError(f"gradient checkpointing is not implemented for {type(self).__name__}")

    # --- calling ----------------------------------------------------------------------------------
    def output_options(self, output_attentions, output_hidden_states, return_dict) -> OutputOptions:
        """`config.output_options`, except that return_dict=None takes `config.return_dict`: 4.37's Flax
        classes do not look at torchscript (use_return_dict)."""
        config = self.config
        return config.output_options(output_attentions, output_hidden_states,
                                     config.return_dict if return_dict is None else return_dict)

    def _apply(self, params, *inputs, dropout_rng=None, train: bool = False, past_key_values=None, **flags):
        """module.apply with the reference's conventions: `params` or the model's, dropout only when
        `train` (its rng from `dropout_rng`), and a given cache collection updated and returned in the
        output as `past_key_values`. Compiled once per input shapes and flags (a call inside the user's
        own jit is simply traced into it)."""
        variables = {"params": params or self.params}
        rngs = {"dropout": dropout_rng} if dropout_rng is not None else {}
        mutable = False
        if past_key_values:
            variables["cache"], mutable = past_key_values, ("cache",)
        jitted = self.__dict__.get("_jitted_apply")
        if jitted is None:
            apply = lambda variables, inputs, rngs, deterministic, mutable, flags: self.module.apply(  # noqa: E731
                variables, *inputs, deterministic=deterministic, rngs=rngs, mutable=mutable, **dict(flags))
            jitted = self.__dict__["_jitted_apply"] = jax.jit(apply, static_argnums=(3, 4, 5))
        output = jitted(variables, inputs, rngs, not train, mutable, tuple(sorted(flags.items())))
        if mutable:
            output, mutated = output
            output["past_key_values"] = unfreeze(mutated["cache"])
        return output

    # --- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], dtype: Any = jnp.float32,
                        *model_args: Any, config: Optional[PretrainedConfig] = None, from_pt: bool = False,
                        ignore_mismatched_sizes: bool = False, _do_init: bool = True, **kwargs: Any):
        """Load a model from a folder or Hub id written by transformers (any framework) or polyformer.

        Args:
            dtype: the computation dtype (parameters keep the checkpoint's dtype).
            config: a config to use instead of the folder's config.json.
            from_pt: read the PyTorch weights even when a flax_model.msgpack exists.
            ignore_mismatched_sizes: re-initialise weights whose shape differs instead of failing.
            _do_init: False returns `(model, params)` without initialising anything.
            input_shape, seed: as in the constructor.
            cache_dir, revision, local_files_only, token, force_download, subfolder: where to read from.
            Other keyword arguments override config values (num_labels, ...).
        """
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = pop_hub_kwargs(kwargs)
        for ignored in ("resume_download", "proxies", "use_auth_token", "trust_remote_code", "_from_auto",
                        "_from_pipeline", "_commit_hash", "adapter_kwargs"):
            kwargs.pop(ignored, None)
        model_kwargs = {k: kwargs.pop(k) for k in ("input_shape", "seed") if k in kwargs}
        config, unused = resolve_config(cls.config_class, name, config, hub_kwargs, kwargs)

        model = cls(config, *model_args, dtype=dtype, _do_init=False, **model_kwargs, **unused)
        state, from_torch = read_weights(name, from_pt, hub_kwargs)
        expected = flatten(model.params_shape_tree)
        if from_torch:
            state = pt_to_flax(state, set(expected), cls.base_model_prefix)
        else:
            state = match_prefix(state, set(expected), cls.base_model_prefix)
        params, missing = model._check_state(state, expected, ignore_mismatched_sizes)
        if model.can_generate():
            path = resolve_file(name, GENERATION_CONFIG_NAME, required=False, **hub_kwargs)
            if path is not None:
                model.generation_config = GenerationConfig.from_json_file(path)
        if not _do_init:
            model._missing_keys = missing
            return model, unflatten(params)
        model._is_initialized = True
        model.params = model.init_weights(model.key, model.input_shape, unflatten(params)) if missing else unflatten(params)
        return model

    def _check_state(self, state: Dict[Path, Any], expected: Dict[Path, Any], ignore_mismatched_sizes: bool):
        """Checkpoint params -> (params to use, as jax arrays; the paths to initialise)."""
        mismatched = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items()
                      if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
        if mismatched and not ignore_mismatched_sizes:
            lines = "\n".join(f"  {'/'.join(k)}: checkpoint {a}, model {b}" for k, a, b in mismatched)
            raise ValueError(f"weights of {type(self).__name__} have other shapes than the checkpoint:\n{lines}\n"
                             "Pass ignore_mismatched_sizes=True to re-initialise them.")
        unexpected = sorted("/".join(k) for k in state if k not in expected)
        skip = {m[0] for m in mismatched}
        params = {k: jnp.asarray(state.pop(k)) for k in list(state) if k in expected and k not in skip}
        missing = set(expected) - set(params)
        log_unused_weights(logger, type(self).__name__, unexpected, self.config.architectures,
                           {k[0] for k in expected}, sep="/")
        if missing:
            logger.warning("Some weights of %s were newly initialized (not in the checkpoint): %s. You should "
                           "probably train this model before using it.", type(self).__name__,
                           sorted("/".join(k) for k in missing))
        return params, missing

    # --- saving -----------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: Union[str, os.PathLike], params: Optional[Dict[str, Any]] = None,
                        push_to_hub: bool = False, max_shard_size: Union[int, str] = "10GB",
                        token: Any = None, safe_serialization: bool = False, **kwargs: Any) -> None:
        """Write config.json (+ generation_config.json) and flax_model.msgpack (sharded past
        `max_shard_size`, with flax_model.msgpack.index.json), or model.safetensors with
        `safe_serialization=True` — what transformers writes and reads back — each file atomically."""
        save_directory = prepare_save_directory(save_directory, push_to_hub)
        params = unfreeze(self.params if params is None else params)
        self.config.architectures = [type(self).__name__[len("Flax"):]]
        with save_transaction(save_directory):  # one atomic save (saving.py)
            self.config.save_pretrained(save_directory)
            if self.can_generate():
                self.generation_config.save_pretrained(save_directory)
            if safe_serialization:
                from safetensors.flax import save_file

                with atomic_path(os.path.join(save_directory, "model.safetensors")) as tmp:
                    save_file({".".join(k): v for k, v in flatten(params).items()}, tmp, metadata={"format": "flax"})
            else:
                write_msgpack(params, save_directory, parse_size(max_shard_size))


def match_prefix(state: Dict[Path, Any], expected: Set[Path], prefix: str) -> Dict[Path, Any]:
    """Flax params of a task model loaded into the bare model, or the other way round."""
    model_has = any(k[0] == prefix for k in expected)
    state_has = any(k[0] == prefix for k in state)
    if prefix and state_has and not model_has:
        return {k[1:]: v for k, v in state.items() if k[0] == prefix}
    if prefix and model_has and not state_has:
        return {(prefix,) + k: v for k, v in state.items()}
    return state


def read_weights(name: str, from_pt: bool, hub_kwargs: Dict[str, Any]) -> Tuple[Dict, bool]:
    """The checkpoint's weights: ({flax path: array}, False) from msgpack or Flax safetensors, or
    ({PyTorch key: array}, True) from PyTorch files."""
    order = ("pt", "flax") if from_pt else ("flax", "pt")
    for kind in order:
        if kind == "flax":
            state = read_msgpack(name, hub_kwargs)
            if state is not None:
                return state, False
            continue
        try:
            files = find_weight_files(name, **hub_kwargs)
        except FileNotFoundError:
            continue
        if files[0].endswith(".safetensors") and _safetensors_format(files[0]) == "flax":
            from safetensors.flax import load_file as load_flax

            return {tuple(k.split(".")): v for f in files for k, v in load_flax(f).items()}, False
        return {k: v for f in files for k, v in _read_torch_file(f).items()}, True
    raise FileNotFoundError(f"no weights found in {name!r}: expected {FLAX_WEIGHTS}, model.safetensors or pytorch_model.bin")


def _safetensors_format(path: str) -> Optional[str]:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return (f.metadata() or {}).get("format")
    except Exception as err:  # the safetensors reader's errors for a damaged header
        raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupted?): {err}."
                              f"{cache_hint(path)}") from err


def _read_torch_file(path: str) -> Dict[str, Any]:
    if path.endswith(".safetensors"):
        from safetensors.flax import load_file as load_flax

        try:
            return load_flax(path)
        except Exception:  # a damaged file: the torch reader below raises a CheckpointError naming it
            pass
    return {k: torch_to_numpy(v) for k, v in load_file(path).items()}


def read_msgpack(name: str, hub_kwargs: Dict[str, Any]) -> Optional[Dict[Path, Any]]:
    """flax_model.msgpack, or the shards its index names, as {path: numpy array}; None when absent."""
    path = resolve_file(name, FLAX_WEIGHTS, required=False, **hub_kwargs)
    files = [path] if path is not None else []
    if path is None:
        index = resolve_file(name, FLAX_INDEX, required=False, **hub_kwargs)
        if index is None:
            return None
        shards = sorted(set(read_json(index, "shard index").get("weight_map", {}).values()))
        files = [resolve_file(name, shard, **hub_kwargs) for shard in shards]
    state: Dict[Path, Any] = {}
    for file in files:
        with open(file, "rb") as f:
            data = f.read()
        if data.startswith(b"version"):
            raise OSError(f"{file} is a git-lfs pointer, not weights: fetch the file with `git lfs pull`")
        try:
            state.update(flatten(serialization.msgpack_restore(data)))
        except Exception as err:  # msgpack raises several types for a damaged file
            raise CheckpointError(f"{file} could not be read as a Flax msgpack checkpoint: {err}."
                                  f"{cache_hint(file)}") from err
    return state


def read_flax_as_torch(name: str, hub_kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """A Flax checkpoint (flax_model.msgpack or its shards) as a PyTorch state dict {key: torch tensor},
    for `from_pretrained(..., from_flax=True)` on the PyTorch classes: kernels transposed back, scale and
    embedding named weight, dtypes kept (bfloat16 bit for bit)."""
    import torch

    state = read_msgpack(name, hub_kwargs)
    if state is None:
        raise FileNotFoundError(f"from_flax=True: no {FLAX_WEIGHTS} (nor its shard index) in {name!r}")
    out = {}
    for key, array in flax_to_pt(state).items():
        array = np.ascontiguousarray(array)
        if array.dtype.name == "bfloat16":  # numpy has no bfloat16: through its bits
            out[key] = torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
        else:
            out[key] = torch.from_numpy(array.copy())
    return out


def write_msgpack(params: Dict[str, Any], folder: str, max_shard_size: int) -> None:
    """flax_model.msgpack, or shards flax_model-0000i-of-0000n.msgpack + index past `max_shard_size`;
    weight files of an earlier save that this one does not overwrite are removed."""
    flat = flatten(params)
    blocks, size = [{}], 0
    for key, value in flat.items():
        nbytes = value.size * value.dtype.itemsize
        if blocks[-1] and size + nbytes > max_shard_size:
            blocks.append({})
            size = 0
        blocks[-1][key] = value
        size += nbytes
    n = len(blocks)
    names = [FLAX_WEIGHTS] if n == 1 else [f"flax_model-{i:05d}-of-{n:05d}.msgpack" for i in range(1, n + 1)]
    for name, block in zip(names, blocks):
        write_atomically(os.path.join(folder, name), serialization.to_bytes(unflatten(block)))
    index_path = os.path.join(folder, FLAX_INDEX)
    if n > 1:
        total = sum(v.size * v.dtype.itemsize for v in flat.values())
        weight_map = {"/".join(k): name for name, block in zip(names, blocks) for k in block}
        write_json(index_path, {"metadata": {"total_size": int(total)}, "weight_map": weight_map})
    for stale in os.listdir(folder):
        if stale.startswith("flax_model") and stale not in names and not (n > 1 and stale == FLAX_INDEX):
            remove_file(os.path.join(folder, stale))
