"""FlaxAutoModel*: the Flax class of the config's family, found as polyformer.auto finds the PyTorch one
(`framework` "Flax" in front of the class name). Importing this module imports no framework."""

from __future__ import annotations

from ..auto import _AutoModelBase

_TASKS = {  # class-name suffix -> doc
    "Model": "The bare Flax model of the config's family.",
    "ForMaskedLM": "A Flax masked-LM head model.",
    "ForSequenceClassification": "A Flax sequence-classification model.",
    "ForMultipleChoice": "A Flax multiple-choice model.",
    "ForTokenClassification": "A Flax token-classification model.",
    "ForQuestionAnswering": "A Flax extractive question-answering model.",
    "ForCausalLM": "A Flax causal language-model head model (generate() included).",
}


def _flax_auto(suffix: str) -> type:
    name = "FlaxAutoModel" + ("" if suffix == "Model" else suffix)
    return type(name, (_AutoModelBase,), {"suffix": suffix, "framework": "Flax", "__doc__": _TASKS[suffix],
                                          "__module__": __name__})


FlaxAutoModel = _flax_auto("Model")
FlaxAutoModelForMaskedLM = _flax_auto("ForMaskedLM")
FlaxAutoModelForSequenceClassification = _flax_auto("ForSequenceClassification")
FlaxAutoModelForMultipleChoice = _flax_auto("ForMultipleChoice")
FlaxAutoModelForTokenClassification = _flax_auto("ForTokenClassification")
FlaxAutoModelForQuestionAnswering = _flax_auto("ForQuestionAnswering")
FlaxAutoModelForCausalLM = _flax_auto("ForCausalLM")
