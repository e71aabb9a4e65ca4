"""Small argument checks shared by the task pipelines."""

from __future__ import annotations

import enum
from typing import Any, List, Type, TypeVar

E = TypeVar("E", bound=enum.Enum)


class ChoiceError(ValueError, KeyError):
    """A bad choice or a missing key in the user's arguments. A ValueError, and also a KeyError where
    transformers 4.37 raises one (an unknown aggregation strategy name, a question-answering dict without
    "question" or "context"), so code written against either keeps working. Prints its message as is."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def parse_choice(choices: Type[E], value: Any, argument: str, error: Type[ValueError] = ValueError) -> E:
    """`value` as a member of the enum `choices`: a member, or a member's name in any case ("simple",
    "SIMPLE").

    Raises:
        `error` (a ValueError): any other value; the message names `argument` and the choices.
    """
    if isinstance(value, choices):
        return value
    if isinstance(value, str) and value.upper() in choices.__members__:
        return choices[value.upper()]
    raise error(f"{argument} must be one of {[m.value for m in choices]} (or a {choices.__name__}); got {value!r}")


def supported_model_names(suffix: str) -> List[str]:
    """The polyformer PyTorch model classes named ``<family prefix><suffix>`` (e.g. suffix
    "ForTokenClassification" -> ["CanineForTokenClassification", "DistilBertForTokenClassification", ...])."""
    import polyformer
    from ..auto import FAMILIES

    names = (family.prefix + suffix for family in FAMILIES.values())
    return sorted(name for name in names if getattr(polyformer, name, None) is not None)
