"""Meta's LLaMA / Llama 2 / Code Llama checkpoints -> a transformers-layout Llama folder.

Meta's release folder (per model size) holds ``params.json`` and ``consolidated.NN.pth``, one file per
model-parallel rank, and ``tokenizer.model`` beside it (or one level up). Its layout differs from
transformers' in three ways:

- names: ``layers.{i}.attention.wq`` -> ``model.layers.{i}.self_attn.q_proj`` and so on (`_NAMES`);
- rotary: Meta rotates interleaved pairs (x0, x1), (x2, x3), ... of each head, transformers rotates the
  two halves (x0, x_{D/2}), ...; the query and key rows of each head are reordered to match (`unpermute`
  is the inverse, used to build test checkpoints);
- sharding: each rank holds a slice of every matrix: the column-parallel ones (wq, wk, wv, w1, w3, output)
  along their rows, the row-parallel ones (wo, w2) and ``tok_embeddings`` along their columns; the norms
  are copied in every rank. The slices are concatenated back.

``params.json`` becomes a LlamaConfig: dim, n_layers, n_heads, n_kv_heads (grouped-query attention),
norm_eps, the MLP width from ``multiple_of`` and ``ffn_dim_multiplier`` (as Meta computes it), ``rope_theta``
and 16384 positions when rope_theta > 10000 (Code Llama), 2048 otherwise, as transformers 4.37's
convert_llama_weights_to_hf.py does. Weight files are read with ``torch.load(weights_only=True)`` only.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Union

from tqdm.auto import tqdm

from ...hub import read_json

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["NUM_SHARDS", "convert_llama_meta", "permute", "unpermute"]

# Model-parallel ranks of each released size (as transformers 4.37's script; "f": Llama 2 chat models).
NUM_SHARDS = {"7B": 1, "7Bf": 1, "13B": 2, "13Bf": 2, "30B": 4, "34B": 4, "65B": 8, "70B": 8, "70Bf": 8}
CODE_LLAMA_ROPE_THETA = 10000.0  # above it: a long-context model (Code Llama), 16k positions
DTYPES = ("bfloat16", "float16", "float32")  # (this module imports torch only when converting: the CLI reads these)

# Meta name (after "layers.{i}.") -> (transformers name after "model.layers.{i}.", dim the ranks split, permuted)
_NAMES = {
    "attention.wq.weight": ("self_attn.q_proj.weight", 0, True),
    "attention.wk.weight": ("self_attn.k_proj.weight", 0, True),
    "attention.wv.weight": ("self_attn.v_proj.weight", 0, False),
    "attention.wo.weight": ("self_attn.o_proj.weight", 1, False),
    "feed_forward.w1.weight": ("mlp.gate_proj.weight", 0, False),
    "feed_forward.w2.weight": ("mlp.down_proj.weight", 1, False),
    "feed_forward.w3.weight": ("mlp.up_proj.weight", 0, False),
    "attention_norm.weight": ("input_layernorm.weight", None, False),
    "ffn_norm.weight": ("post_attention_layernorm.weight", None, False),
}
_TOP = {"tok_embeddings.weight": ("model.embed_tokens.weight", 1), "norm.weight": ("model.norm.weight", None),
        "output.weight": ("lm_head.weight", 0)}


def permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Meta's query/key rows -> transformers': per head, the interleaved pairs become the two halves."""
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of `permute` (transformers' rows -> Meta's)."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def intermediate_size(dim: int, ffn_dim_multiplier: float = 1.0, multiple_of: int = 256) -> int:
    """Meta's MLP width: 8/3 dim, scaled by ffn_dim_multiplier, rounded up to a multiple of multiple_of."""
    return multiple_of * ((int(ffn_dim_multiplier * int(8 * dim / 3)) + multiple_of - 1) // multiple_of)


def convert_llama_meta(input_dir: Union[str, os.PathLike], output_dir: Union[str, os.PathLike], model_size: str, *,
                       dtype: str = "bfloat16", safe_serialization: bool = True, max_shard_size: Union[int, str] = "5GB",
                       overwrite: bool = False, progress: Optional[bool] = None) -> Path:
    """Convert Meta's checkpoint in `input_dir` (or `input_dir/model_size`) into a Llama folder `output_dir`:
    config.json, generation_config.json, the weights in `dtype` ("bfloat16", what transformers 4.37's script
    writes, "float16" or "float32"), and, when tokenizer.model is there, the tokenizer files (CodeLlamaTokenizerFast for a Code Llama,
    rope_theta > 10000; LlamaTokenizerFast otherwise). Returns `output_dir`.

    Raises:
        FileNotFoundError: no params.json or consolidated.*.pth.
        ConversionError: an unknown `model_size`, a shard count other than the size's, params.json that
            disagree with the tensors, or an existing `output_dir` without `overwrite`.
    """
    import torch

    from ..distilbert.convert_bert import ConversionError, _make_temp_dir, _move_into_place
    from .configuration import LlamaConfig
    from .modeling_torch import LlamaForCausalLM

    if model_size not in NUM_SHARDS:
        raise ConversionError(f"model_size must be one of {sorted(NUM_SHARDS)}, got {model_size!r}")
    if dtype not in DTYPES:
        raise ConversionError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    folder = input_dir if (input_dir / "params.json").is_file() else input_dir / model_size
    if not (folder / "params.json").is_file():
        raise FileNotFoundError(f"params.json not found in {input_dir} (nor in {input_dir / model_size})")
    if (output_dir.exists() or output_dir.is_symlink()) and not overwrite:
        raise ConversionError(f"{output_dir} already exists (pass overwrite=True / --overwrite to replace it)")
    params = read_json(folder / "params.json", what="params.json")
    params = params.get("model", params)
    shards = _shard_files(folder, NUM_SHARDS[model_size], model_size)
    tokenizer_file = next((f for f in (folder / "tokenizer.model", input_dir / "tokenizer.model") if f.is_file()), None)

    ranks = [torch.load(str(f), map_location="cpu", weights_only=True, mmap=True) for f in shards]
    config = _config(params, ranks, LlamaConfig)
    state = _merge(ranks, config, progress)
    del ranks
    config.torch_dtype = dtype
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict({k: v.to(getattr(torch, dtype)) for k, v in state.items()}, strict=False,
                                                assign=True)
    if missing or unexpected:
        raise ConversionError(f"the merged tensors do not fit LlamaForCausalLM: missing {missing}, unexpected {unexpected}")
    del state
    model.tie_weights()

    tmp = _make_temp_dir(output_dir, "tmp")
    try:
        model.save_pretrained(tmp, safe_serialization=safe_serialization, max_shard_size=max_shard_size)
        if tokenizer_file is not None:
            _write_tokenizer(tokenizer_file, tmp, code_llama=config.rope_theta > CODE_LLAMA_ROPE_THETA)
        else:
            logger.warning("no tokenizer.model in %s: the folder has no tokenizer files", input_dir)
        _move_into_place(tmp, output_dir, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote Llama (%d layers, hidden %d, %d shard(s) merged) to %s", config.num_hidden_layers,
                config.hidden_size, len(shards), output_dir)
    return output_dir


def _shard_files(folder: Path, expected: int, model_size: str) -> List[Path]:
    from ..distilbert.convert_bert import ConversionError

    files = sorted(p for p in folder.iterdir() if re.fullmatch(r"consolidated\.\d\d\.pth", p.name))
    if not files:
        raise FileNotFoundError(f"no consolidated.NN.pth in {folder}")
    names = [f"consolidated.{i:02d}.pth" for i in range(expected)]
    if [f.name for f in files] != names:
        raise ConversionError(f"model_size {model_size} is released as {expected} file(s) ({', '.join(names)}); "
                              f"{folder} holds {', '.join(f.name for f in files)}")
    return files


def _config(params: dict, ranks: List[Dict[str, torch.Tensor]], config_class):
    """params.json -> LlamaConfig, checked against the tensors' shapes."""
    from ..distilbert.convert_bert import ConversionError

    try:
        dim, n_layers, n_heads = int(params["dim"]), int(params["n_layers"]), int(params["n_heads"])
    except KeyError as err:
        raise ConversionError(f"params.json lacks {err.args[0]!r}") from None
    n_kv = int(params.get("n_kv_heads") or n_heads)
    if dim % n_heads or n_heads % n_kv or n_kv % len(ranks) or n_heads % len(ranks):
        raise ConversionError(f"params.json: dim {dim}, n_heads {n_heads}, n_kv_heads {n_kv} cannot be split "
                              f"over {len(ranks)} shard(s)")
    theta = float(params.get("rope_theta", 10000.0))
    vocab = ranks[0]["tok_embeddings.weight"].shape[0]  # the ranks split the embedding's columns
    width = intermediate_size(dim, params.get("ffn_dim_multiplier") or 1.0, params.get("multiple_of", 256))
    found = sum(r["layers.0.feed_forward.w1.weight"].shape[0] for r in ranks)
    if found != width:
        raise ConversionError(f"params.json gives an MLP width of {width} (dim {dim}, multiple_of "
                              f"{params.get('multiple_of', 256)}, ffn_dim_multiplier {params.get('ffn_dim_multiplier')}), "
                              f"the weights have {found}")
    if params.get("vocab_size", -1) > 0 and params["vocab_size"] != vocab:
        raise ConversionError(f"params.json vocab_size {params['vocab_size']} != {vocab} embedding rows")
    return config_class(hidden_size=dim, intermediate_size=width, num_attention_heads=n_heads,
                        num_hidden_layers=n_layers, rms_norm_eps=float(params["norm_eps"]), num_key_value_heads=n_kv,
                        vocab_size=vocab, rope_theta=theta,
                        max_position_embeddings=16384 if theta > CODE_LLAMA_ROPE_THETA else 2048)


def _merge(ranks: List[Dict[str, torch.Tensor]], config, progress: Optional[bool]) -> Dict[str, torch.Tensor]:
    """Every rank's slices joined and renamed; query and key rows permuted for transformers' rotary."""
    import torch

    from ..distilbert.convert_bert import ConversionError

    heads = {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}

    def join(name: str, split: Optional[int]) -> torch.Tensor:
        missing = [i for i, r in enumerate(ranks) if name not in r]
        if missing:
            raise ConversionError(f"{name} missing from consolidated.{missing[0]:02d}.pth")
        return ranks[0][name].clone() if split is None else torch.cat([r[name] for r in ranks], dim=split)

    state = {}
    for i in tqdm(range(config.num_hidden_layers), desc="llama-meta", unit="layer",
                  disable=None if progress is None else not progress):
        for meta, (name, split, permuted) in _NAMES.items():
            tensor = join(f"layers.{i}.{meta}", split)
            if permuted:
                tensor = permute(tensor, heads[name.split(".")[1]])
            state[f"model.layers.{i}.{name}"] = tensor
    for meta, (name, split) in _TOP.items():
        state[name] = join(meta, split)
    return state


def _write_tokenizer(model_file: Path, folder: Path, *, code_llama: bool) -> None:
    from .tokenization import LlamaTokenizerFast
    from .tokenization_code_llama import CodeLlamaTokenizerFast

    cls = CodeLlamaTokenizerFast if code_llama else LlamaTokenizerFast
    cls(vocab_file=str(model_file)).save_pretrained(str(folder))
    logger.info("wrote %s files from %s", cls.__name__, model_file)
