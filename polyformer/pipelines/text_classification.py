"""`TextClassificationPipeline`: labels and scores of a sequence-classification model (tasks
"text-classification" and its alias "sentiment-analysis").

    classify = pipeline("sentiment-analysis", model="distilbert-base-uncased-finetuned-sst-2-english")
    classify("What a good film!")              -> [{"label": "POSITIVE", "score": 0.99}]
    classify("What a good film!", top_k=None)  -> every label, best first
    classify({"text": "A man eats.", "text_pair": "Someone eats."})   # a text pair

Scores are the logits through `function_to_apply`; by default a sigmoid for one label or a multi-label
problem, a softmax otherwise (4.37's rules, `default_function`).
"""

from __future__ import annotations

import enum
import warnings
from typing import Any, Dict, List, Optional, Union

import numpy as np

from .base import Pipeline
from .checks import parse_choice
from .frameworks import call_parameters, to_numpy

_NO_TOP_K = ""  # top_k's "not given" marker: None is a meaningful value (every label)


class ClassificationFunction(str, enum.Enum):
    """What turns a classifier's logits into scores."""

    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"
    NONE = "none"


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits))


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _as_function(value: Union[str, ClassificationFunction]) -> ClassificationFunction:
    return parse_choice(ClassificationFunction, value, "function_to_apply")


def default_function(config: Any) -> ClassificationFunction:
    """4.37's default: sigmoid for a multi-label problem or a single label, softmax for a single-label
    problem or several labels, else the config's `function_to_apply`, else none."""
    problem_type = getattr(config, "problem_type", None)
    if problem_type == "multi_label_classification" or config.num_labels == 1:
        return ClassificationFunction.SIGMOID
    if problem_type == "single_label_classification" or config.num_labels > 1:
        return ClassificationFunction.SOFTMAX
    if getattr(config, "function_to_apply", None) is not None:
        return _as_function(config.function_to_apply)
    return ClassificationFunction.NONE


class TextClassificationPipeline(Pipeline):
    """Classify texts (or text pairs, given as `{"text": ..., "text_pair": ...}`).

    Call options (also accepted by the constructor as defaults):
        top_k: how many labels to return, best first; None: every label. Left out: the best label only,
            as a one-dict list for a single text (a dict for a single pair, one dict per text of a list).
        function_to_apply: "sigmoid", "softmax", "none" (any case) or a `ClassificationFunction`;
            left out: `default_function(model.config)`.
        return_all_scores: legacy (deprecated) form of top_k: True is every label in label order, False
            the best label.
        any other keyword: passed to the tokenizer (truncation, max_length, ...).
    """

    return_all_scores = False
    function_to_apply = ClassificationFunction.NONE

    def _sanitize_parameters(self, return_all_scores: Optional[bool] = None, function_to_apply: Any = None,
                             top_k: Any = _NO_TOP_K, **tokenizer_kwargs: Any):
        postprocess_params: Dict[str, Any] = {}
        if return_all_scores is None and hasattr(self.model.config, "return_all_scores"):
            return_all_scores = self.model.config.return_all_scores
        if top_k is None or (isinstance(top_k, int) and not isinstance(top_k, bool)):
            if top_k is not None and top_k < 1:
                raise ValueError(f"top_k must be a positive int or None (every label); got {top_k!r}")
            postprocess_params["top_k"] = top_k
            postprocess_params["_legacy"] = False
        elif top_k != _NO_TOP_K:
            raise ValueError(f"top_k must be a positive int or None (every label); got {top_k!r}")
        elif return_all_scores is not None:
            warnings.warn("`return_all_scores` is now deprecated,  if want a similar functionality use `top_k=None` "
                          "instead of `return_all_scores=True` or `top_k=1` instead of `return_all_scores=False`.",
                          UserWarning)
            postprocess_params["top_k"] = None if return_all_scores else 1
        if function_to_apply is not None:
            postprocess_params["function_to_apply"] = _as_function(function_to_apply)
        return tokenizer_kwargs, {}, postprocess_params

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Classify a text, a text pair (dict), or a list of them.

        Returns a list of {"label", "score"} dicts per input (see the class docstring for the shapes).
        """
        result = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, str) and "top_k" not in kwargs:  # 4.37 wraps a single text's legacy result
            return [result]
        return result

    def preprocess(self, inputs: Any, **tokenizer_kwargs: Any) -> Dict[str, Any]:
        if isinstance(inputs, dict):
            if "text" not in inputs or not set(inputs) <= {"text", "text_pair"}:
                raise ValueError(f'a text pair is a dict {{"text": ..., "text_pair": ...}}; got keys {sorted(inputs)}')
            return dict(self.tokenizer(**inputs, return_tensors=self.framework, **tokenizer_kwargs))
        if (isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], list)
                and len(inputs[0]) == 2):  # the old [[text, pair]] form, kept as 4.37 keeps it
            return dict(self.tokenizer(text=inputs[0][0], text_pair=inputs[0][1], return_tensors=self.framework,
                                       **tokenizer_kwargs))
        if isinstance(inputs, list):
            raise ValueError("The pipeline received invalid inputs, if you are trying to send text pairs, you can try "
                             'to send a dictionary `{"text": "My text", "text_pair": "My pair"}` in order to send a '
                             "text pair.")
        if not isinstance(inputs, str):
            raise ValueError(f"text-classification takes a text, a text pair as a dict "
                             f'{{"text": ..., "text_pair": ...}}, or a list of them; got {type(inputs).__name__}')
        return dict(self.tokenizer(inputs, return_tensors=self.framework, **tokenizer_kwargs))

    def _forward(self, model_inputs: Dict[str, Any]) -> Any:
        if "use_cache" in call_parameters(self.model):
            model_inputs["use_cache"] = False  # a classifier needs no key/value cache
        return self.model(**model_inputs)

    def postprocess(self, model_outputs: Any, function_to_apply: Optional[ClassificationFunction] = None,
                    top_k: Optional[int] = 1, _legacy: bool = True) -> Union[Dict[str, Any], List[Dict[str, Any]]]:
        if function_to_apply is None:
            function_to_apply = default_function(self.model.config)
        logits = to_numpy(model_outputs["logits"][0])
        if function_to_apply == ClassificationFunction.SIGMOID:
            scores = sigmoid(logits)
        elif function_to_apply == ClassificationFunction.SOFTMAX:
            scores = softmax(logits)
        else:
            scores = logits
        id2label = self.model.config.id2label
        if top_k == 1 and _legacy:
            return {"label": id2label[int(scores.argmax())], "score": scores.max().item()}
        results = [{"label": id2label[i], "score": score.item()} for i, score in enumerate(scores)]
        if not _legacy:
            results.sort(key=lambda item: item["score"], reverse=True)
            if top_k is not None:
                results = results[:top_k]
        return results
