"""Build a DistilBERT checkpoint folder from a BERT one, as the DistilBERT paper initialises its student.

The student is BERT with fewer layers, no token-type embeddings and no pooler. So a BERT checkpoint maps
onto DistilBERT almost key for key:

    BERT  (optionally under `bert.`)                  DistilBERT
    embeddings.word_embeddings                        embeddings.word_embeddings
    embeddings.position_embeddings                    embeddings.position_embeddings  (+ token_type row 0)
    embeddings.token_type_embeddings                  (folded into the positions)
    embeddings.LayerNorm                              embeddings.LayerNorm
    encoder.layer.{i}.attention.self.query            transformer.layer.{j}.attention.q_lin
    encoder.layer.{i}.attention.self.key              transformer.layer.{j}.attention.k_lin
    encoder.layer.{i}.attention.self.value            transformer.layer.{j}.attention.v_lin
    encoder.layer.{i}.attention.output.dense          transformer.layer.{j}.attention.out_lin
    encoder.layer.{i}.attention.output.LayerNorm      transformer.layer.{j}.sa_layer_norm
    encoder.layer.{i}.intermediate.dense              transformer.layer.{j}.ffn.lin1
    encoder.layer.{i}.output.dense                    transformer.layer.{j}.ffn.lin2
    encoder.layer.{i}.output.LayerNorm                transformer.layer.{j}.output_layer_norm
    pooler.*, cls.* (MLM / NSP heads), task heads     dropped

where j counts the chosen teacher layers i (`layers=[0, 2, 4]` keeps three). BERT embeds a token as
LN(word + type + pos); DistilBERT has no token types, so the row of type 0 is added to every position
embedding and LN(word + (pos + type0)) is BERT's output for `token_type_ids = 0`, up to float rounding.

The result is an ordinary DistilBERT folder (config.json, model.safetensors, tokenizer files) that
`DistilBertModel.from_pretrained` reads, polyformer's or transformers'. The source weights are found and
read as `from_pretrained` reads them (polyformer.checkpoints: safetensors, single or sharded, or
pytorch_model.bin with `torch.load(weights_only=True)` only). The output appears atomically: it is written
to a temporary folder beside DST and renamed, so a failure leaves no partial DST.

    python -m polyformer convert bert-to-distilbert SRC DST [--layers 0,2,4]
"""

from __future__ import annotations

import logging
import numbers
import os
import secrets
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import torch
from tqdm.auto import tqdm

from ...checkpoints import find_weight_files, iter_state_dict, save_state_dict
from ...hub import read_json, write_json

logger = logging.getLogger(__name__)

__all__ = ["ConversionError", "bert_as_distilbert", "convert_bert_to_distilbert", "has_mlm_head", "parse_layers"]

# The activations DistilBertConfig documents, plus BERT's spelling of one of them.
DISTILBERT_ACTIVATIONS = ("gelu", "relu", "silu", "gelu_new")
_ACTIVATION_ALIASES = {"swish": "silu"}
# DistilBERT's LayerNorms have a fixed eps; a BERT trained with another one would give other numbers.
DISTILBERT_LAYER_NORM_EPS = 1e-12

_EMBEDDING_KEYS = ("word_embeddings.weight", "position_embeddings.weight", "LayerNorm.weight", "LayerNorm.bias")
_LAYER_MODULES = {  # BERT module inside encoder.layer.{i} -> DistilBERT module inside transformer.layer.{j}
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}
_TOKENIZER_KWARGS = (  # BertTokenizer arguments that DistilBertTokenizer takes too
    "do_lower_case", "do_basic_tokenize", "never_split", "unk_token", "sep_token", "pad_token", "cls_token",
    "mask_token", "tokenize_chinese_chars", "strip_accents", "clean_up_tokenization_spaces", "model_max_length",
)
_SPECIAL_TOKENS = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                   "mask_token": "[MASK]"}


class ConversionError(ValueError):
    """The source folder is not a BERT checkpoint that DistilBERT can represent."""


def parse_layers(text: str) -> list[int]:
    """`"0,2,4"` -> `[0, 2, 4]` (the `--layers` argument)."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConversionError(f"--layers takes comma-separated layer indices such as 0,2,4, not {text!r}") from None


def convert_bert_to_distilbert(src: str | os.PathLike, dst: str | os.PathLike, layers: Sequence[int] | None = None,
                               *, overwrite: bool = False, progress: bool | None = None) -> Path:
    """Write a DistilBERT checkpoint folder DST built from the BERT checkpoint folder SRC.

    Args:
        src: a folder with BERT's `config.json` and weights (`model.safetensors`, a sharded
            `model.safetensors.index.json`, or `pytorch_model.bin` [sharded]), and optionally its tokenizer
            files (`vocab.txt` and/or `tokenizer.json`, `tokenizer_config.json`, `special_tokens_map.json`).
        dst: the folder to create. It must not exist unless `overwrite=True`.
        layers: the teacher layers that become the student's layers 0, 1, ... in this order (default: all).
        overwrite: replace an existing DST (only once the new folder is complete).
        progress: show a progress bar over the tensors (default: when stderr is a terminal).

    Returns:
        The path of the new folder.

    Raises:
        FileNotFoundError: SRC is not a folder, or has no config.json, no weights, or not every shard its
            weight index names.
        ValueError: a JSON file is not valid (hub.InvalidFileError), or a weight file is truncated or holds
            more than tensors (checkpoints.CheckpointError); both are OSErrors too.
        ConversionError: SRC is not a BERT that DistilBERT can represent (another model_type, relative
            position embeddings, an unsupported activation, cross-attention, ...), `layers` is invalid,
            a tensor is missing or has the wrong shape, or DST exists.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"BERT checkpoint folder not found: {src}")
    if (dst.exists() or dst.is_symlink()) and not overwrite:
        raise ConversionError(f"{dst} already exists (pass overwrite=True / --overwrite to replace it)")
    bert = read_json(src / "config.json", what="BERT config")
    config, plan = bert_as_distilbert(src, layers)
    layers = _check_layers(layers, bert["num_hidden_layers"])
    tmp = _make_temp_dir(dst, "tmp")
    try:
        tensors = {name: tensor.contiguous()
                   for name, tensor in tqdm(plan.items(), desc="bert-to-distilbert", unit="tensor",
                                            disable=None if progress is None else not progress)}
        save_state_dict(tensors, str(tmp))
        del tensors, plan
        write_json(tmp / "config.json", config)
        _write_tokenizer(src, tmp, bert)
        _move_into_place(tmp, dst, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    logger.info("wrote DistilBERT (%d layers from BERT layers %s, dim %d) to %s", len(layers), layers,
                config["dim"], dst)
    return dst


def bert_as_distilbert(src: str | os.PathLike, layers: Sequence[int] | None = None, *,
                       mlm_head: bool = False) -> tuple[dict, dict[str, torch.Tensor]]:
    """The DistilBERT config dict and tensors `convert_bert_to_distilbert` would write, in memory.

    With `mlm_head=True` the BERT masked-LM head (`cls.predictions.*`, as BertForMaskedLM saves it) is
    mapped too, onto DistilBertForMaskedLM's names (`vocab_transform`, `vocab_layer_norm`, `vocab_projector`)
    and the encoder tensors gain the `distilbert.` prefix; a checkpoint without that head raises
    ConversionError (`has_mlm_head` tells beforehand). Same checks and errors as `convert_bert_to_distilbert`.
    """
    src = Path(src)
    if not src.is_dir():
        raise FileNotFoundError(f"BERT checkpoint folder not found: {src}")
    bert = read_json(src / "config.json", what="BERT config")
    config = distilbert_config(bert, n_layers=None if layers is None else len(layers))
    layers = _check_layers(layers, bert["num_hidden_layers"])
    raw = dict(iter_state_dict(find_weight_files(str(src))))
    plan = _plan_tensors(_strip_prefix(raw), layers, config)
    if mlm_head:
        head = _mlm_head_tensors(raw, config)
        plan = {**{f"distilbert.{name}": t for name, t in plan.items()}, **head}
        config["architectures"] = ["DistilBertForMaskedLM"]
    return config, plan


_MLM_HEAD = {  # BertForMaskedLM head tensor -> DistilBertForMaskedLM tensor
    "cls.predictions.transform.dense.weight": "vocab_transform.weight",
    "cls.predictions.transform.dense.bias": "vocab_transform.bias",
    "cls.predictions.transform.LayerNorm.weight": "vocab_layer_norm.weight",
    "cls.predictions.transform.LayerNorm.bias": "vocab_layer_norm.bias",
    "cls.predictions.bias": "vocab_projector.bias",
}


def has_mlm_head(src: str | os.PathLike) -> bool:
    """Whether the BERT checkpoint folder SRC holds a masked-LM head (`cls.predictions.*`)."""
    from safetensors import safe_open

    files = find_weight_files(str(src))
    if all(f.endswith(".safetensors") for f in files):  # names only, no tensor read
        names = set()
        for f in files:
            with safe_open(f, framework="pt") as handle:
                names.update(handle.keys())
    else:
        names = {name for name, _ in iter_state_dict(files)}
    names = {_gamma_beta(name) for name in names}
    return all(key in names for key in _MLM_HEAD if key != "cls.predictions.bias") and (
        "cls.predictions.bias" in names or "cls.predictions.decoder.bias" in names)


def _gamma_beta(name: str) -> str:
    if ".LayerNorm." in name and name.endswith((".gamma", ".beta")):  # BERTs converted from Google's TF
        return name.rsplit(".", 1)[0] + (".weight" if name.endswith(".gamma") else ".bias")
    return name


def _mlm_head_tensors(raw: dict[str, torch.Tensor], config: dict) -> dict[str, torch.Tensor]:
    """BERT's MLM head (dense -> act -> LayerNorm -> decoder tied to the word embeddings, + bias) is
    DistilBERT's (vocab_transform -> activation -> vocab_layer_norm -> vocab_projector) one for one."""
    raw = {_gamma_beta(name): t for name, t in raw.items()}
    if "cls.predictions.bias" not in raw and "cls.predictions.decoder.bias" in raw:
        raw["cls.predictions.bias"] = raw["cls.predictions.decoder.bias"]
    missing = [name for name in _MLM_HEAD if name not in raw]
    if missing:
        raise ConversionError(f"the BERT checkpoint has no masked-LM head: it lacks {_preview(missing)}")
    c, v = config["dim"], config["vocab_size"]
    head = {distil: raw[bert] for bert, distil in _MLM_HEAD.items()}
    shapes = {"vocab_transform.weight": (c, c), "vocab_transform.bias": (c,), "vocab_layer_norm.weight": (c,),
              "vocab_layer_norm.bias": (c,), "vocab_projector.bias": (v,)}
    for name, shape in shapes.items():
        if tuple(head[name].shape) != shape:
            raise ConversionError(f"masked-LM head tensor for {name} has shape {tuple(head[name].shape)}, "
                                  f"expected {shape}")
    decoder = raw.get("cls.predictions.decoder.weight")
    word = raw.get("bert.embeddings.word_embeddings.weight", raw.get("embeddings.word_embeddings.weight"))
    if decoder is not None and word is not None and not torch.equal(decoder, word):
        raise ConversionError("the BERT masked-LM decoder is not tied to the word embeddings; DistilBERT's is")
    return head


def distilbert_config(bert: dict, n_layers: int | None = None) -> dict:
    """The DistilBertConfig dict (as config.json) for a BERT config dict; raises what cannot map."""
    if bert.get("model_type") != "bert":
        raise ConversionError(f"not a BERT checkpoint: config.json has model_type {bert.get('model_type')!r}, "
                              "expected 'bert'")
    if bert.get("position_embedding_type", "absolute") != "absolute":
        raise ConversionError(f"position_embedding_type {bert['position_embedding_type']!r} cannot be converted: "
                              "DistilBERT has absolute position embeddings only")
    if bert.get("is_decoder") or bert.get("add_cross_attention"):
        raise ConversionError("a BERT decoder (is_decoder / add_cross_attention) cannot be converted: "
                              "DistilBERT is an encoder without cross-attention")
    eps = bert.get("layer_norm_eps", DISTILBERT_LAYER_NORM_EPS)
    if eps != DISTILBERT_LAYER_NORM_EPS:
        raise ConversionError(f"layer_norm_eps {eps} cannot be converted: DistilBERT's LayerNorms use "
                              f"eps={DISTILBERT_LAYER_NORM_EPS}")
    act = bert.get("hidden_act", "gelu")
    act = _ACTIVATION_ALIASES.get(act, act) if isinstance(act, str) else act
    if act not in DISTILBERT_ACTIVATIONS:
        raise ConversionError(f"hidden_act {bert.get('hidden_act')!r} cannot be converted: DistilBERT's "
                              f"activation is one of {', '.join(DISTILBERT_ACTIVATIONS)}")
    missing = [k for k in ("vocab_size", "hidden_size", "num_attention_heads", "num_hidden_layers",
                           "intermediate_size") if k not in bert]
    if missing:
        raise ConversionError(f"BERT config.json lacks {', '.join(missing)}")
    if bert["hidden_size"] % bert["num_attention_heads"]:
        raise ConversionError(f"hidden_size {bert['hidden_size']} is not a multiple of num_attention_heads "
                              f"{bert['num_attention_heads']}")
    config = {
        "model_type": "distilbert",
        "architectures": ["DistilBertModel"],
        "activation": act,
        "attention_dropout": bert.get("attention_probs_dropout_prob", 0.1),
        "dim": bert["hidden_size"],
        "dropout": bert.get("hidden_dropout_prob", 0.1),
        "hidden_dim": bert["intermediate_size"],
        "initializer_range": bert.get("initializer_range", 0.02),
        "max_position_embeddings": bert.get("max_position_embeddings", 512),
        "n_heads": bert["num_attention_heads"],
        "n_layers": bert["num_hidden_layers"] if n_layers is None else n_layers,
        "pad_token_id": bert.get("pad_token_id", 0),
        "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2,
        "sinusoidal_pos_embds": False,
        "vocab_size": bert["vocab_size"],
    }
    if "torch_dtype" in bert or "dtype" in bert:
        config["torch_dtype"] = bert.get("torch_dtype", bert.get("dtype"))
    return config


def _check_layers(layers: Sequence[int] | None, n_teacher: int) -> list[int]:
    if layers is None:
        return list(range(n_teacher))
    layers = list(layers)
    if not layers:
        raise ConversionError("choose at least one layer")
    bad = [i for i in layers if not isinstance(i, numbers.Integral) or not 0 <= i < n_teacher]
    if bad:
        raise ConversionError(f"layers {bad} out of range: the BERT checkpoint has layers 0..{n_teacher - 1}")
    if len(set(layers)) != len(layers):
        raise ConversionError(f"layers {layers} name a layer twice")
    return [int(i) for i in layers]


# --- weights -------------------------------------------------------------------------------------------

_TOKEN_TYPES = "embeddings.token_type_embeddings.weight"


def _plan_tensors(weights: dict[str, torch.Tensor], layers: list[int], config: dict) -> dict[str, torch.Tensor]:
    """DistilBERT tensor name -> tensor, after checking that every BERT tensor maps, with the right shape."""
    names = {f"embeddings.{key}": f"embeddings.{key}" for key in _EMBEDDING_KEYS}  # DistilBERT -> BERT name
    for j, i in enumerate(layers):
        for bert_module, distil_module in _LAYER_MODULES.items():
            for param in ("weight", "bias"):
                names[f"transformer.layer.{j}.{distil_module}.{param}"] = f"encoder.layer.{i}.{bert_module}.{param}"
    missing = [bert_name for bert_name in names.values() if bert_name not in weights]
    if missing:
        raise ConversionError(f"the BERT checkpoint lacks {len(missing)} tensors: {_preview(missing)}")

    plan = {name: weights[bert_name] for name, bert_name in names.items()}
    for name, shape in _expected_shapes(config).items():
        if tuple(plan[name].shape) != shape:
            raise ConversionError(f"{names[name]} has shape {tuple(plan[name].shape)}, expected {shape} "
                                  "from config.json")
    token_type = weights.get(_TOKEN_TYPES)
    if token_type is not None:
        if token_type.dim() != 2 or token_type.shape[0] < 1 or token_type.shape[1] != config["dim"]:
            raise ConversionError(f"{_TOKEN_TYPES} has shape {tuple(token_type.shape)}, expected (T, {config['dim']})")
        plan["embeddings.position_embeddings.weight"] = _fold(plan["embeddings.position_embeddings.weight"], token_type)

    _check_leftovers(set(weights) - set(names.values()) - {_TOKEN_TYPES}, set(layers))
    return plan


def _strip_prefix(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a `bert.` prefix (BertFor* models) and the heads beside it; LayerNorm gamma/beta -> weight/bias."""
    if any(name.startswith("bert.") for name in weights):
        heads = sorted(name for name in weights if not name.startswith("bert."))
        if heads:
            logger.info("dropping %d head tensors (%s)", len(heads), _preview(heads))
        weights = {name[len("bert."):]: t for name, t in weights.items() if name.startswith("bert.")}
    return {_gamma_beta(name): tensor for name, tensor in weights.items()}


def _fold(position: torch.Tensor, token_type: torch.Tensor) -> torch.Tensor:
    """Position embeddings plus the token-type-0 row: (P, C) + (C,), summed in fp32."""
    return (position.float() + token_type[0].float()).to(position.dtype)


def _expected_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    c, h = config["dim"], config["hidden_dim"]
    shapes = {"embeddings.word_embeddings.weight": (config["vocab_size"], c),
              "embeddings.position_embeddings.weight": (config["max_position_embeddings"], c),
              "embeddings.LayerNorm.weight": (c,), "embeddings.LayerNorm.bias": (c,)}
    modules = {"attention.q_lin": (c, c), "attention.k_lin": (c, c), "attention.v_lin": (c, c),
               "attention.out_lin": (c, c), "sa_layer_norm": (c,), "ffn.lin1": (h, c), "ffn.lin2": (c, h),
               "output_layer_norm": (c,)}
    for j in range(config["n_layers"]):
        for module, shape in modules.items():
            shapes[f"transformer.layer.{j}.{module}.weight"] = shape
            shapes[f"transformer.layer.{j}.{module}.bias"] = shape[:1]
    return shapes


def _check_leftovers(leftover: set[str], layers: set[int]) -> None:
    """Unchosen layers, pooler and heads may go; anything else in the encoder has no DistilBERT counterpart."""
    skipped, dropped, unknown = [], [], []
    for name in sorted(leftover):
        parts = name.split(".")
        if name.startswith("encoder.layer.") and parts[2].isdigit() and int(parts[2]) not in layers \
                and ".".join(parts[3:-1]) in _LAYER_MODULES:
            skipped.append(name)
        elif name.startswith(("embeddings.", "encoder.")) and name != "embeddings.position_ids":
            unknown.append(name)
        else:
            dropped.append(name)
    if unknown:
        raise ConversionError(f"{len(unknown)} BERT tensors have no DistilBERT counterpart: {_preview(unknown)}")
    if dropped:
        logger.info("dropping %d tensors DistilBertModel has no place for (%s)", len(dropped), _preview(dropped))
    if skipped:
        logger.info("leaving out %d tensors of unchosen layers", len(skipped))


# --- files ---------------------------------------------------------------------------------------------

def _write_tokenizer(src: Path, dst: Path, bert: dict) -> None:
    """vocab.txt (copied, or written from tokenizer.json), tokenizer.json, tokenizer_config.json, special tokens."""
    fast = read_json(src / "tokenizer.json", what="tokenizer") if (src / "tokenizer.json").is_file() else None
    if (src / "vocab.txt").is_file():
        shutil.copyfile(src / "vocab.txt", dst / "vocab.txt")
    elif fast is not None:
        (dst / "vocab.txt").write_text("".join(f"{token}\n" for token in _wordpiece_vocab(fast)), encoding="utf-8")
    else:
        logger.warning("%s has no vocab.txt or tokenizer.json: writing the model without a tokenizer", src)
        return
    if fast is not None:
        shutil.copyfile(src / "tokenizer.json", dst / "tokenizer.json")

    old = read_json(src / "tokenizer_config.json", what="tokenizer config") \
        if (src / "tokenizer_config.json").is_file() else {}
    config = {key: old[key] for key in _TOKENIZER_KWARGS if key in old}
    config.setdefault("do_lower_case", _lowercases(fast))
    config.setdefault("model_max_length", bert.get("max_position_embeddings", 512))
    config["tokenizer_class"] = "DistilBertTokenizer"
    write_json(dst / "tokenizer_config.json", config)

    if (src / "special_tokens_map.json").is_file():
        shutil.copyfile(src / "special_tokens_map.json", dst / "special_tokens_map.json")
    else:
        write_json(dst / "special_tokens_map.json", {k: config.get(k, v) for k, v in _SPECIAL_TOKENS.items()})


def _wordpiece_vocab(fast: dict) -> list[str]:
    model = fast.get("model", {})
    if model.get("type") != "WordPiece":
        raise ConversionError(f"tokenizer.json holds a {model.get('type')!r} model; DistilBERT needs WordPiece")
    by_id = {i: token for token, i in model["vocab"].items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise ConversionError("tokenizer.json's WordPiece ids are not 0..N-1, so no vocab.txt can be written")
    return [by_id[i] for i in range(len(by_id))]


def _lowercases(fast: dict | None) -> bool:
    normalizer = (fast or {}).get("normalizer") or {}
    return bool(normalizer.get("lowercase", True)) if normalizer.get("type") == "BertNormalizer" else True


def _make_temp_dir(dst: Path, kind: str) -> Path:
    """A fresh hidden folder beside DST (same filesystem, so the final rename is atomic)."""
    parent = dst.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".{dst.name}.{secrets.token_hex(4)}.{kind}"
    tmp.mkdir()  # mode from the umask, unlike tempfile.mkdtemp's 0o700
    return tmp


def _move_into_place(tmp: Path, dst: Path, overwrite: bool) -> None:
    """Rename the finished folder to DST; an old DST (overwrite=True) is moved aside first, then removed."""
    if not (dst.exists() or dst.is_symlink()):
        os.rename(tmp, dst)
        return
    if not overwrite:
        raise ConversionError(f"{dst} appeared while converting; not replacing it")
    old = _make_temp_dir(dst, "old")
    os.rename(dst, old / dst.name)
    try:
        os.rename(tmp, dst)
    except BaseException:
        os.rename(old / dst.name, dst)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _preview(names: Iterable[str], n: int = 4) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")
