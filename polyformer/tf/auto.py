"""TFAutoModel*: the TensorFlow class of the config's family, found as polyformer.auto finds the PyTorch
one (`framework` "TF" in front of the class name). Importing this module imports no framework."""

from __future__ import annotations

from ..auto import _AutoModelBase


def _tf_auto(suffix: str, doc: str) -> type:
    name = "TFAutoModel" + ("" if suffix == "Model" else suffix)
    return type(name, (_AutoModelBase,), {"suffix": suffix, "framework": "TF", "__doc__": doc, "__module__": __name__})


TFAutoModel = _tf_auto("Model", "The bare TensorFlow model of the config's family.")
TFAutoModelForMaskedLM = _tf_auto("ForMaskedLM", "A TensorFlow masked-LM head model.")
TFAutoModelForSequenceClassification = _tf_auto("ForSequenceClassification", "A TensorFlow sequence-classification model.")
TFAutoModelForMultipleChoice = _tf_auto("ForMultipleChoice", "A TensorFlow multiple-choice model.")
TFAutoModelForTokenClassification = _tf_auto("ForTokenClassification", "A TensorFlow token-classification model.")
TFAutoModelForQuestionAnswering = _tf_auto("ForQuestionAnswering", "A TensorFlow extractive question-answering model.")
TFAutoModelForCausalLM = _tf_auto("ForCausalLM", "A TensorFlow causal language-model head model.")
