"""`Text2TextGenerationPipeline` and `SummarizationPipeline`: generate text from text with an
encoder-decoder model (tasks "text2text-generation" and "summarization"; MVP in polyformer).

    summarizer = pipeline("summarization", model="RUCAIBox/mvp")
    summarizer("Summarize: ...", max_length=60) -> [{"summary_text": "..."}]

One text gives a list of result dicts (one per returned sequence); a list of texts gives one dict per text
when each has a single result, else a list of lists. An item that is itself a list of texts is tokenized
as one padded batch.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Dict, List, Optional

from ..tokenization.encoding import TruncationStrategy
from .base import Pipeline, stop_token_id

logger = logging.getLogger(__name__)


class ReturnType(enum.IntEnum):
    """What each generated sequence comes back as here: 0 its token ids (a tensor), 1 its text."""

    TENSORS = 0
    TEXT = 1


class Text2TextGenerationPipeline(Pipeline):
    """Generate text with a sequence-to-sequence model (`...ForConditionalGeneration`).

    Call options (also accepted by the constructor as defaults):
        return_tensors: True: the token ids (`generated_token_ids`, a tensor) instead of text.
        return_text: accepted for compatibility (text is the default).
        return_type: a `ReturnType` (or its int).
        clean_up_tokenization_spaces: passed to `decode` (default False).
        truncation: tokenizer truncation of the input (default: none).
        stop_sequence: stop at the first token of this text.
        **generate_kwargs: passed to `model.generate` (max_length, min_length, num_beams, ...).
    """

    return_name = "generated"  # result keys: "<return_name>_text" / "<return_name>_token_ids"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not getattr(self.model.config, "is_encoder_decoder", False):
            logger.error("The model '%s' is not supported for %s: it needs an encoder-decoder model",
                         type(self.model).__name__, self.task or "text2text-generation")

    def _sanitize_parameters(self, return_tensors: Optional[bool] = None, return_text: Optional[bool] = None,
                             return_type: Any = None, clean_up_tokenization_spaces: Optional[bool] = None,
                             truncation: Any = None, stop_sequence: Optional[str] = None, **generate_kwargs: Any):
        preprocess_params: Dict[str, Any] = {}
        if truncation is not None:
            preprocess_params["truncation"] = truncation
        forward_params = generate_kwargs
        postprocess_params: Dict[str, Any] = {}
        if return_tensors is not None and return_type is None:
            return_type = ReturnType.TENSORS if return_tensors else ReturnType.TEXT
        if return_type is not None:
            try:
                postprocess_params["return_type"] = ReturnType(return_type)
            except ValueError:
                raise ValueError(f"return_type must be a ReturnType (0 tensors, 1 text); got {return_type!r}") from None
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        if stop_sequence is not None:
            generate_kwargs["eos_token_id"] = stop_token_id(self.tokenizer, stop_sequence)
        return preprocess_params, forward_params, postprocess_params

    def check_inputs(self, input_length: int, min_length: int, max_length: int) -> bool:
        """Warn about length settings that look wrong for the task (nothing for plain text2text)."""
        return True

    def _parse_and_tokenize(self, inputs: Any, truncation: Any) -> Dict[str, Any]:
        prefix = getattr(self.model.config, "prefix", None) or ""
        if isinstance(inputs, list):
            if self.tokenizer.pad_token_id is None:
                raise ValueError("Please make sure that the tokenizer has a pad_token_id when using a batch input")
            texts, padding = [prefix + text for text in inputs], True
        elif isinstance(inputs, str):
            texts, padding = prefix + inputs, False
        else:
            raise ValueError(f"text2text inputs must be a string or a list of strings; got {type(inputs).__name__}")
        encoded = dict(self.tokenizer(texts, padding=padding, truncation=truncation, return_tensors="pt"))
        encoded.pop("token_type_ids", None)
        return encoded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Generate from a text or a list of texts; see the class docstring for the options.

        Returns:
            A list of dicts with `<return_name>_text` (or `<return_name>_token_ids`), one per returned
            sequence; for a list of texts, each with one result, the list of those dicts.
        """
        if not args:
            raise ValueError(f"{type(self).__name__} needs its input text(s) as the first argument")
        result = super().__call__(*args, **kwargs)
        if (isinstance(args[0], list) and all(isinstance(item, str) for item in args[0])
                and all(len(res) == 1 for res in result)):
            return [res[0] for res in result]
        return result

    def preprocess(self, inputs: Any, truncation: Any = TruncationStrategy.DO_NOT_TRUNCATE, **kwargs: Any):
        return self._parse_and_tokenize(inputs, truncation=truncation, **kwargs)

    def _forward(self, model_inputs: Dict[str, Any], **generate_kwargs: Any) -> Dict[str, Any]:
        in_b, input_length = model_inputs["input_ids"].shape
        self.check_inputs(input_length, generate_kwargs.get("min_length", self.model.config.min_length),
                          generate_kwargs.get("max_length", self.model.config.max_length))
        output_ids = self.model.generate(**model_inputs, **generate_kwargs)
        out_b = output_ids.shape[0]
        return {"output_ids": output_ids.reshape(in_b, out_b // in_b, *output_ids.shape[1:])}

    def postprocess(self, model_outputs: Dict[str, Any], return_type: ReturnType = ReturnType.TEXT,
                    clean_up_tokenization_spaces: bool = False) -> List[Dict[str, Any]]:
        return_type = ReturnType(return_type)
        records = []
        for output_ids in model_outputs["output_ids"][0]:
            if return_type == ReturnType.TENSORS:
                records.append({f"{self.return_name}_token_ids": output_ids})
            else:
                records.append({f"{self.return_name}_text": self.tokenizer.decode(
                    output_ids, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces)})
        return records


class SummarizationPipeline(Text2TextGenerationPipeline):
    """Summarize texts (task "summarization"); results under `summary_text` / `summary_token_ids`.
    Warns when max_length is below min_length, or not below the input's length."""

    return_name = "summary"

    def check_inputs(self, input_length: int, min_length: int, max_length: int) -> bool:
        if max_length < min_length:
            logger.warning(f"Your min_length={min_length} must be inferior than your max_length={max_length}.")
        if input_length < max_length:
            logger.warning(f"Your max_length is set to {max_length}, but your input_length is only {input_length}. "
                           "Since this is a summarization task, where outputs shorter than the input are typically "
                           "wanted, you might consider decreasing max_length manually, e.g. "
                           f"summarizer('...', max_length={input_length // 2})")
        return True
