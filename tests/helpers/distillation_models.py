"""Tiny BERT teacher folders (random weights, BERT's names, as transformers saves them) and a small text
corpus for the distillation tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

WORDS = ["the", "a", "cat", "dog", "sat", "ran", "on", "under", "mat", "tree", "big", "small", "red", "blue",
         "and", "saw", "bird", "fish", "sun", "moon", "##s", ".", ","]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS
LAYER_MODULES = {  # BERT module -> weight shape, for width c and feed-forward width h
    "attention.self.query": lambda c, h: (c, c), "attention.self.key": lambda c, h: (c, c),
    "attention.self.value": lambda c, h: (c, c), "attention.output.dense": lambda c, h: (c, c),
    "attention.output.LayerNorm": lambda c, h: (c,), "intermediate.dense": lambda c, h: (h, c),
    "output.dense": lambda c, h: (c, h), "output.LayerNorm": lambda c, h: (c,),
}


def bert_config(*, layers: int = 4, dim: int = 16, heads: int = 2, ffn: int = 32, vocab: int = len(VOCAB),
                dropout: float = 0.0, model_type: str = "bert", mlm_head: bool = True) -> dict:
    return {"model_type": model_type, "architectures": ["BertForMaskedLM" if mlm_head else "BertModel"],
            "vocab_size": vocab, "hidden_size": dim, "num_hidden_layers": layers, "num_attention_heads": heads,
            "intermediate_size": ffn, "hidden_act": "gelu", "hidden_dropout_prob": dropout,
            "attention_probs_dropout_prob": dropout, "max_position_embeddings": 64, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute"}


def bert_state(config: dict, *, mlm_head: bool, seed: int = 0) -> dict[str, torch.Tensor]:
    """BertForMaskedLM (`bert.` prefix, `cls.predictions.*`) or BertModel tensors, random but sane."""
    g = torch.Generator().manual_seed(seed)
    c, h, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    shapes = {"embeddings.word_embeddings.weight": (v, c),
              "embeddings.position_embeddings.weight": (config["max_position_embeddings"], c),
              "embeddings.token_type_embeddings.weight": (2, c), "embeddings.LayerNorm.weight": (c,),
              "embeddings.LayerNorm.bias": (c,), "pooler.dense.weight": (c, c), "pooler.dense.bias": (c,)}
    for i in range(config["num_hidden_layers"]):
        for module, shape in LAYER_MODULES.items():
            shapes[f"encoder.layer.{i}.{module}.weight"] = shape(c, h)
            shapes[f"encoder.layer.{i}.{module}.bias"] = shape(c, h)[:1]
    state = {}
    for name, shape in shapes.items():
        if "LayerNorm.weight" in name:
            state[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[name] = 0.3 * torch.randn(shape, generator=g)
    if not mlm_head:
        return state
    state = {f"bert.{name}": t for name, t in state.items() if not name.startswith("pooler.")}
    state["cls.predictions.transform.dense.weight"] = 0.3 * torch.randn((c, c), generator=g)
    state["cls.predictions.transform.dense.bias"] = 0.1 * torch.randn((c,), generator=g)
    state["cls.predictions.transform.LayerNorm.weight"] = 1.0 + 0.1 * torch.randn((c,), generator=g)
    state["cls.predictions.transform.LayerNorm.bias"] = 0.1 * torch.randn((c,), generator=g)
    state["cls.predictions.bias"] = 0.1 * torch.randn((v,), generator=g)
    return state


def write_teacher(folder: Path, *, mlm_head: bool = True, seed: int = 0, **config_kwargs) -> Path:
    """A BERT teacher folder: config.json, model.safetensors, vocab.txt, tokenizer_config.json."""
    config = bert_config(mlm_head=mlm_head, **config_kwargs)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(bert_state(config, mlm_head=mlm_head, seed=seed), str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 64}))
    return folder


def sentences(n: int, seed: int = 0) -> list[str]:
    """n short sentences over WORDS (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    words = [w for w in WORDS if not w.startswith("#") and w not in ".,"]
    out = []
    for _ in range(n):
        length = int(torch.randint(3, 12, (), generator=g))
        picks = torch.randint(len(words), (length,), generator=g).tolist()
        out.append(" ".join(words[i] for i in picks) + " .")
    return out


def write_corpus(path: Path, n: int = 64, seed: int = 0) -> Path:
    path.write_text("\n".join(sentences(n, seed)) + "\n")
    return path
