"""Declared value rules for configuration files (config.json, generation_config.json, tokenizer_config.json).

A class declares which of its keys are, say, positive ints or probabilities; `check_values` applies the
declaration and raises a ValueError naming the key, the value, what is allowed and where it came from.
Files come from strangers: "32" where an int belongs, -5 layers, "no" for a boolean. Without these checks
they surface later as a raw torch error, a ZeroDivisionError or a TypeError deep inside generate().

    >>> RULES = {"n_layers": POSITIVE_INT, "dropout": PROBABILITY}
    >>> check_values({"n_layers": 0, "dropout": 0.1}, RULES, "config.json")
    Traceback (most recent call last):
    ValueError: config.json: n_layers=0 is not allowed: expected a positive int

`one_of` is the one argument rule every framework's forward shares (input_ids xor inputs_embeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional


@dataclass(frozen=True)
class Rule:
    """`accepts(value)` says whether a value is allowed; `allowed` says what is, for the message."""

    accepts: Callable[[Any], bool]
    allowed: str

    def or_none(self) -> "Rule":
        """The same rule, also accepting None."""
        return Rule(lambda v: v is None or self.accepts(v), f"{self.allowed} or null")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


POSITIVE_INT = Rule(lambda v: _is_int(v) and v > 0, "a positive int")
NON_NEGATIVE_INT = Rule(lambda v: _is_int(v) and v >= 0, "an int >= 0")
INT = Rule(_is_int, "an int")
BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
NUMBER = Rule(_is_number, "a finite number")
POSITIVE_NUMBER = Rule(lambda v: _is_number(v) and v > 0, "a finite number > 0")
NON_NEGATIVE_NUMBER = Rule(lambda v: _is_number(v) and v >= 0, "a finite number >= 0")
PROBABILITY = Rule(lambda v: _is_number(v) and 0 <= v <= 1, "a number in [0, 1]")
# Token ids: ints (old Llama configs carry pad_token_id -1, which 4.37 accepts), a list of them, or null.
TOKEN_IDS = Rule(lambda v: v is None or _is_int(v) or (isinstance(v, list) and all(_is_int(i) for i in v)),
                 "a token id (an int), a list of them, or null")


def check_values(values: Mapping[str, Any], rules: Mapping[str, Rule], source: Optional[str] = None) -> None:
    """Raise ValueError for the first key of `values` that `rules` declares and its value breaks."""
    for key, rule in rules.items():
        if key in values and not rule.accepts(values[key]):
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}{key}={values[key]!r} is not allowed: expected {rule.allowed}")


def merged_rules(*tables: Mapping[str, Rule]) -> Dict[str, Rule]:
    """The rules of several tables, later ones winning (a family's over the base's)."""
    out: Dict[str, Rule] = {}
    for table in tables:
        out.update(table)
    return out


def one_of(input_ids: Any, inputs_embeds: Any) -> None:
    """Exactly one of input_ids and inputs_embeds, with transformers' messages (PyTorch and TF models)."""
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError("You cannot specify both input_ids and inputs_embeds at the same time")
    if input_ids is None and inputs_embeds is None:
        raise ValueError("You have to specify either input_ids or inputs_embeds")
