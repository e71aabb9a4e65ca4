"""Small argument checks shared by the task pipelines."""

from __future__ import annotations

from typing import List


class ChoiceError(ValueError, KeyError):
    """A bad choice or a missing key in the user's arguments. A ValueError, and also a KeyError where
    transformers 4.37 raises one (an unknown aggregation strategy name, a question-answering dict without
    "question" or "context"), so code written against either keeps working. Prints its message as is."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def supported_model_names(suffix: str) -> List[str]:
    """The polyformer PyTorch model classes named ``<family prefix><suffix>`` (e.g. suffix
    "ForTokenClassification" -> ["CanineForTokenClassification", "DistilBertForTokenClassification", ...])."""
    import polyformer
    from ..auto import FAMILIES

    names = (family.prefix + suffix for family in FAMILIES.values())
    return sorted(name for name in names if getattr(polyformer, name, None) is not None)
