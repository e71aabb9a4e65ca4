"""transformers' TF names for polyformer's output classes: the same fields, order and behaviour
(attribute, key and index access, `to_tuple()`). This module imports no framework.

They can also be built from (key, value) pairs, as `tf.nest` rebuilds a mapping, so a model's output can
leave a `tf.function` (and Keras's compiled steps) intact.
"""

from __future__ import annotations

import types

from .. import outputs as _outputs


class TFOutputMixin:
    def __init__(self, *args, **kwargs):
        if len(args) == 1 and not kwargs and isinstance(args[0], (types.GeneratorType, dict, list)):
            args, kwargs = (), dict(args[0])
        super().__init__(*args, **kwargs)


def _tf_named(cls: type) -> type:
    return type("TF" + cls.__name__, (TFOutputMixin, cls), {"__module__": __name__, "__qualname__": "TF" + cls.__name__,
                                                            "__doc__": cls.__doc__})


TFBaseModelOutput = _tf_named(_outputs.BaseModelOutput)
TFBaseModelOutputWithPooling = _tf_named(_outputs.BaseModelOutputWithPooling)
TFBaseModelOutputWithPast = _tf_named(_outputs.BaseModelOutputWithPast)
TFMaskedLMOutput = _tf_named(_outputs.MaskedLMOutput)
TFSequenceClassifierOutput = _tf_named(_outputs.SequenceClassifierOutput)
TFMultipleChoiceModelOutput = _tf_named(_outputs.MultipleChoiceModelOutput)
TFTokenClassifierOutput = _tf_named(_outputs.TokenClassifierOutput)
TFQuestionAnsweringModelOutput = _tf_named(_outputs.QuestionAnsweringModelOutput)
TFCausalLMOutputWithPast = _tf_named(_outputs.CausalLMOutputWithPast)
TFSequenceClassifierOutputWithPast = _tf_named(_outputs.SequenceClassifierOutputWithPast)
