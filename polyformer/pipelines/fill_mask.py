"""`FillMaskPipeline`: the likeliest tokens for each mask token of a text (task "fill-mask").

    fill = pipeline("fill-mask", model="distilbert-base-uncased")
    fill("Paris is the [MASK] of France.")
    -> [{"score": 0.9, "token": 3007, "token_str": "capital", "sequence": "paris is the capital of france."}, ...]

One mask gives a list of `top_k` proposals; several masks give one such list per mask (each mask scored
on its own, the other masks left in the sequence). `targets` restricts the scores to given words.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .base import Pipeline, PipelineException
from .frameworks import to_numpy
from .text_classification import softmax

logger = logging.getLogger(__name__)

DEFAULT_TOP_K = 5


class FillMaskPipeline(Pipeline):
    """Masked-language-model predictions for the mask token(s) of each input text.

    Call options (also accepted by the constructor as defaults):
        top_k: how many proposals to return per mask (default 5; at most the number of targets).
        targets: a word or a list of words to score instead of the whole vocabulary. A word that is not
            a vocabulary entry is tokenized and its first token used, with a warning.
        tokenizer_kwargs: keyword arguments for the tokenizer (e.g. truncation=True).

    Raises:
        PipelineException: the tokenizer has no mask token, or an input holds no mask token.
        ValueError: an input is not a string, or `targets` / `top_k` are unusable.
    """

    def _sanitize_parameters(self, top_k: Optional[int] = None, targets: Union[str, Sequence[str], None] = None,
                             tokenizer_kwargs: Optional[Dict[str, Any]] = None):
        if self.tokenizer is None or self.tokenizer.mask_token_id is None:
            raise PipelineException("fill-mask", self.model.base_model_prefix,
                                    "The tokenizer does not define a `mask_token`.")
        preprocess_params = {} if tokenizer_kwargs is None else {"tokenizer_kwargs": dict(tokenizer_kwargs)}
        postprocess_params: Dict[str, Any] = {}
        if targets is not None:
            postprocess_params["target_ids"] = self.get_target_ids(targets)
        if top_k is not None:
            if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
                raise ValueError(f"top_k must be a positive int; got {top_k!r}")
            postprocess_params["top_k"] = top_k
        return preprocess_params, {}, postprocess_params

    def get_target_ids(self, targets: Union[str, Sequence[str]], top_k: Optional[int] = None) -> np.ndarray:
        """The vocabulary ids of `targets` (each counted once, in the order given). A target that is not a
        vocabulary entry is tokenized without special tokens and its first token taken (with a warning);
        one that tokenizes to nothing is dropped (with a warning)."""
        if isinstance(targets, str):
            targets = [targets]
        if not isinstance(targets, (list, tuple)) or not all(isinstance(t, str) for t in targets):
            raise ValueError(f"targets must be a string or a list of strings; got {targets!r}")
        vocab = self.tokenizer.get_vocab()
        ids: List[int] = []
        for target in targets:
            token_id = vocab.get(target)
            if token_id is None:
                pieces = self.tokenizer(target, add_special_tokens=False, return_attention_mask=False,
                                        return_token_type_ids=False, max_length=1, truncation=True)["input_ids"]
                if not pieces:
                    logger.warning("The specified target token `%s` does not exist in the model vocabulary. We cannot "
                                   "replace it with anything meaningful, ignoring it", target)
                    continue
                token_id = pieces[0]
                logger.warning("The specified target token `%s` does not exist in the model vocabulary. Replacing "
                               "with `%s`.", target, self.tokenizer.convert_ids_to_tokens(token_id))
            if token_id not in ids:
                ids.append(token_id)
        if not ids:
            raise ValueError(f"targets: at least one target must be provided when passed (got {list(targets)!r})")
        return np.array(ids, dtype=np.int64)

    def preprocess(self, inputs: Any, tokenizer_kwargs: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        if not isinstance(inputs, str):
            raise ValueError(f"fill-mask takes a text (or a list of texts) holding {self.tokenizer.mask_token}; got "
                             f"{type(inputs).__name__}")
        model_inputs = self.tokenizer(inputs, return_tensors=self.framework, **(tokenizer_kwargs or {}))
        if not (to_numpy(model_inputs["input_ids"]) == self.tokenizer.mask_token_id).any():
            raise PipelineException("fill-mask", self.model.base_model_prefix,
                                    f"No mask_token ({self.tokenizer.mask_token}) found on the input")
        return dict(model_inputs)

    def _forward(self, model_inputs: Dict[str, Any]) -> Dict[str, Any]:
        outputs = self.model(**model_inputs)
        return {"logits": outputs.logits, "input_ids": model_inputs["input_ids"]}

    def postprocess(self, model_outputs: Dict[str, Any], top_k: int = DEFAULT_TOP_K,
                    target_ids: Optional[np.ndarray] = None) -> List[Any]:
        if target_ids is not None:
            top_k = min(top_k, target_ids.shape[0])
        input_ids = to_numpy(model_outputs["input_ids"])[0]
        masked = np.flatnonzero(input_ids == self.tokenizer.mask_token_id)
        probs = softmax(to_numpy(model_outputs["logits"])[0, masked, :])
        if target_ids is not None:
            probs = probs[..., target_ids]
        predictions = np.argsort(-probs, axis=-1, kind="stable")[..., :top_k]
        values = np.take_along_axis(probs, predictions, axis=-1)
        single_mask = values.shape[0] == 1
        pad_id = self.tokenizer.pad_token_id
        result = []
        for position, row_values, row_predictions in zip(masked.tolist(), values.tolist(), predictions.tolist()):
            row = []
            for score, index in zip(row_values, row_predictions):
                token = int(target_ids[index]) if target_ids is not None else index
                tokens = input_ids.copy()
                tokens[position] = token
                if pad_id is not None:
                    tokens = tokens[tokens != pad_id]
                # one mask: special tokens dropped for readability; several: kept, so the other masks show
                sequence = self.tokenizer.decode(tokens.tolist(), skip_special_tokens=single_mask)
                row.append({"score": score, "token": token, "token_str": self.tokenizer.decode([token]),
                            "sequence": sequence})
            result.append(row)
        return result[0] if single_mask else result

    def __call__(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Fill the mask token(s) of a text or of each text of a list.

        Returns, per text: a list of `top_k` dicts (score, token, token_str, sequence), best first; with
        several masks, one such list per mask. A list of one text returns that text's result.
        """
        outputs = super().__call__(inputs, *args, **kwargs)
        if isinstance(inputs, list) and len(inputs) == 1:
            return outputs[0]
        return outputs
