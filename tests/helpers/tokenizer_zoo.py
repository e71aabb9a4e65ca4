"""Every tokenizer polyformer ships, slow and fast, built from the trained vocabularies under
tests/fixtures/tokenizers/ (for the robustness and fuzz tests, which need all of them at once)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tokenizers"

# name -> (polyformer class name, how to build it from the fixture folder)
_BPE = {"codegen": "CodeGen", "gpt2": "GPT2", "mvp": "Mvp", "clip": "CLIP"}
_SPM = {"llama": "Llama", "code_llama": "CodeLlama"}
NAMES = (["distilbert-slow", "distilbert-fast", "canine-slow"]
         + [f"{family}-{kind}" for family in list(_BPE) + list(_SPM) for kind in ("slow", "fast")])


@functools.lru_cache(maxsize=None)
def tokenizer(name: str) -> Any:
    """The tokenizer called `name` ("gpt2-fast", "canine-slow", ...), built once per test session."""
    import polyformer

    family, kind = name.rsplit("-", 1)
    suffix = "Fast" if kind == "fast" else ""
    folder = FIXTURES / family
    if family == "distilbert":
        return getattr(polyformer, "DistilBertTokenizer" + suffix)(str(folder / "vocab.txt"))
    if family == "canine":
        return polyformer.CanineTokenizer()
    if family in _BPE:
        cls = getattr(polyformer, _BPE[family] + "Tokenizer" + suffix)
        if kind == "fast":
            return cls(tokenizer_file=str(folder / "tokenizer.json"))
        return cls(str(folder / "vocab.json"), str(folder / "merges.txt"))
    cls = getattr(polyformer, _SPM[family] + "Tokenizer" + suffix)
    if kind == "fast":
        return cls(tokenizer_file=str(folder / "tokenizer.json"))
    return cls(str(folder / "tokenizer.model"), legacy=True)


def pairs() -> Dict[str, tuple]:
    """family -> (slow name, fast name), for the families that have both."""
    return {family: (f"{family}-slow", f"{family}-fast") for family in ["distilbert", *_BPE, *_SPM]}
