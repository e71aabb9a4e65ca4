"""Fuzz tests of every tokenizer, slow and fast (issue 14): arbitrary Unicode — lone surrogates, controls,
combining marks, emoji, CJK, private-use characters — never crashes nor hangs, and the time taken grows
linearly with the text.

Bounded for CI: hypothesis runs a few dozen examples per tokenizer with a per-example deadline, and the
linearity check compares the time of n and 8n characters (the best of a few runs each) with a generous
factor rather than any wall-clock threshold, so it holds on slow and loaded machines alike.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.tokenizer_zoo import NAMES, tokenizer

# Every code point hypothesis can draw, surrogates included (st.text() leaves them out by default).
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=120)
FUZZ = settings(max_examples=40, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", NAMES)
def test_arbitrary_unicode_encodes_and_decodes(name):
    tok = tokenizer(name)
    size = len(tok)

    @FUZZ
    @given(text=ANY_TEXT, pair=st.one_of(st.none(), ANY_TEXT))
    def check(text, pair):
        encoded = tok(text, pair) if pair else tok(text)
        ids = encoded["input_ids"]
        assert all(isinstance(i, int) and 0 <= i < size for i in ids), ids
        assert isinstance(tok.decode(ids), str)
        assert isinstance(tok.decode(ids, skip_special_tokens=True), str)
        assert len(tok([text, text])["input_ids"]) == 2

    check()


def _sample(n: int, word: bool, seed: int = 0) -> str:
    """n characters: one word of letters (`word`), else a mix of words, spaces, punctuation, accents,
    emoji and CJK."""
    if word:
        return "ab" * (n // 2)
    rng = random.Random(seed)
    pieces = ["hello", " ", "wörld", ",", "😀", "中文", "\t", "naïve", "!!", "x" * 7, "\u0301", "Ω", "123", " "]
    out = []
    length = 0
    while length < n:
        piece = rng.choice(pieces)
        out.append(piece)
        length += len(piece)
    return "".join(out)[:n]


def _best_time(tok, text: str, runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        tok(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("word", [False, True], ids=["mixed", "one-word"])
@pytest.mark.parametrize("name", NAMES)
def test_time_grows_linearly(name, word):
    """8 times the text may cost up to 32 times the time (linear is 8, quadratic 64): generous enough for
    a noisy machine, tight enough to catch a quadratic step."""
    tok = tokenizer(name)
    n = 6000
    small = _best_time(tok, _sample(n, word), runs=3)
    large = _best_time(tok, _sample(8 * n, word), runs=2)
    assert large <= 32 * max(small, 1e-4), f"{name}: {small:.4f}s for {n} characters, {large:.4f}s for {8 * n}"
