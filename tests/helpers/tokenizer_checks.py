"""Checks the tokenizer test files share beyond the recorded cases: slow and fast agree on any text and
decode it back, and a saved tokenizer comes back through AutoTokenizer as the expected classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple

from hypothesis import strategies as st

from polyformer import AutoTokenizer

ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)  # any Unicode but lone surrogates


def assert_slow_equals_fast(slow: Any, fast: Any, text: str) -> None:
    """Same ids and tokens from both, and decode(encode(text)) == text on both."""
    ids = slow.encode(text)
    assert fast.encode(text) == ids and slow.tokenize(text) == fast.tokenize(text)
    for tok in (slow, fast):
        assert tok.decode(ids, clean_up_tokenization_spaces=False) == text


def auto_round_trip(tokenizer: Any, folder: Path, fast_class: type, slow_class: type) -> Tuple[Any, Any]:
    """Save `tokenizer` into `folder` and load it back with AutoTokenizer, fast and slow (use_fast=False);
    both must be of the expected classes. Returns (fast, slow)."""
    tokenizer.save_pretrained(folder)
    fast, slow = AutoTokenizer.from_pretrained(folder), AutoTokenizer.from_pretrained(folder, use_fast=False)
    assert type(fast) is fast_class and type(slow) is slow_class
    return fast, slow
