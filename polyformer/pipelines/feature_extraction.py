"""`FeatureExtractionPipeline`: the last hidden states of a model's base (task "feature-extraction").

    extractor = pipeline("feature-extraction", model="distilbert-base-cased")
    extractor("Hello world") -> [[[0.1, ...], ...]]   # (1, tokens, hidden) as nested lists of floats

`return_tensors=True` returns the tensor instead (a torch tensor, or a tf.Tensor when the pipeline runs a
TensorFlow model). A batched list (batch_size > 1) keeps the padded
positions of each row, as 4.37 does.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .base import Pipeline
from .frameworks import to_numpy


class FeatureExtractionPipeline(Pipeline):
    """Hidden states of the model's first output for each input text.

    Call options (also accepted by the constructor as defaults):
        return_tensors: True: the model's tensor (1, T, C) (torch, or tf for a TensorFlow model) instead of
            nested lists.
        truncation: tokenizer truncation (to `tokenizer.model_max_length`).
        tokenize_kwargs: more tokenizer keyword arguments (max_length, add_special_tokens, ...).
    """

    def _sanitize_parameters(self, truncation: Any = None, tokenize_kwargs: Optional[Dict[str, Any]] = None,
                             return_tensors: Optional[bool] = None, **kwargs: Any):
        if kwargs:
            raise TypeError(f"feature-extraction got unexpected options {sorted(kwargs)}; it takes truncation, "
                            "tokenize_kwargs and return_tensors")
        tokenize_kwargs = dict(tokenize_kwargs or {})
        if truncation is not None:
            if "truncation" in tokenize_kwargs:
                raise ValueError("truncation parameter defined twice (given as keyword argument as well as in "
                                 "tokenize_kwargs)")
            tokenize_kwargs["truncation"] = truncation
        postprocess_params = {} if return_tensors is None else {"return_tensors": return_tensors}
        return tokenize_kwargs, {}, postprocess_params

    def preprocess(self, inputs: Any, **tokenize_kwargs: Any) -> Dict[str, Any]:
        return dict(self.tokenizer(inputs, return_tensors=self.framework, **tokenize_kwargs))

    def _forward(self, model_inputs: Dict[str, Any]) -> Any:
        return self.model(**model_inputs)

    def postprocess(self, model_outputs: Any, return_tensors: bool = False) -> Any:
        first = model_outputs[0]
        return first if return_tensors else to_numpy(first).tolist()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Features of a text (or of each text of a list): nested lists of floats (1, T, C), or tensors."""
        return super().__call__(*args, **kwargs)
