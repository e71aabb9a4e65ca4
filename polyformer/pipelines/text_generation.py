"""`TextGenerationPipeline`: continue a prompt with a causal LM (task "text-generation").

    generator = pipeline("text-generation", model="codellama/CodeLlama-7b-hf")
    generator("def f(x):\\n    <FILL_ME>\\n    return y", max_new_tokens=32, return_type=ReturnType.NEW_TEXT)
    -> [{"generated_text": "..."}]

A prompt is tokenized without special tokens (no BOS) unless `add_special_tokens=True`, as 4.37. A Code
Llama prompt holding `<FILL_ME>` is split by its tokenizer into the infilling format. A list of prompts
gives a list of result lists; with `batch_size` > 1 prompts are padded on the left (whatever the
tokenizer's `padding_side`, so batched results equal one-by-one ones) and the tokenizer needs a pad token.
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Dict, List, Optional

from .base import Pipeline, pad_collate, stop_token_id
from .frameworks import to_numpy

logger = logging.getLogger(__name__)


class ReturnType(enum.IntEnum):
    """What each generated sequence comes back as: 0 its token ids, 1 only the new text, 2 prompt + new
    text. An int equal to one of these values is accepted too (the Code Llama docs pass `return_type=1`)."""

    TENSORS = 0
    NEW_TEXT = 1
    FULL_TEXT = 2


def _return_type(value: Any) -> ReturnType:
    try:
        return ReturnType(value)
    except ValueError:
        raise ValueError(f"return_type must be a ReturnType (or 0 tensors, 1 new text, 2 full text); got {value!r}") \
            from None


class TextGenerationPipeline(Pipeline):
    """Generate text from a prompt with a causal LM (any `...ForCausalLM`).

    Call options (also accepted by the constructor as defaults):
        return_full_text: False: only the new text (default True: prompt + new text).
        return_tensors: True: the token ids (`generated_token_ids`) instead of text.
        return_text: True: text (the default); exclusive with the two options above.
        return_type: a `ReturnType` (or its int), overriding the three above.
        prefix: text put before the prompt (and dropped from nothing: it counts as prompt).
        handle_long_generation: "hole": cut the prompt's left so prompt + new tokens fit
            `tokenizer.model_max_length`.
        stop_sequence: stop at the first token of this text.
        clean_up_tokenization_spaces: passed to `decode` (default True).
        add_special_tokens / truncation / padding / max_length: tokenizer options (max_length also limits
            generation).
        **generate_kwargs: passed to `model.generate` (max_new_tokens, do_sample, num_beams,
            num_return_sequences, streamer, ...).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not type(self.model).__name__.endswith("ForCausalLM"):
            logger.error("The model '%s' is not supported for text-generation: it needs a causal LM (...ForCausalLM)",
                         type(self.model).__name__)
        if "prefix" not in self._preprocess_params:
            prefix = getattr(self.model.config, "prefix", None)
            if prefix is not None:
                pre, fwd, _ = self._sanitize_parameters(prefix=prefix, **self._forward_params)
                self._preprocess_params = {**self._preprocess_params, **pre}
                self._forward_params = {**self._forward_params, **fwd}

    def _sanitize_parameters(self, return_full_text: Optional[bool] = None, return_tensors: Optional[bool] = None,
                             return_text: Optional[bool] = None, return_type: Any = None,
                             clean_up_tokenization_spaces: Optional[bool] = None, prefix: Optional[str] = None,
                             handle_long_generation: Optional[str] = None, stop_sequence: Optional[str] = None,
                             add_special_tokens: bool = False, truncation: Any = None, padding: Any = False,
                             max_length: Optional[int] = None, **generate_kwargs: Any):
        preprocess_params: Dict[str, Any] = {"add_special_tokens": add_special_tokens, "truncation": truncation,
                                             "padding": padding, "max_length": max_length}
        if max_length is not None:
            generate_kwargs["max_length"] = max_length
        if prefix is not None:
            preprocess_params["prefix"] = prefix
        if prefix:
            prefix_ids = self.tokenizer(prefix, padding=False, add_special_tokens=add_special_tokens)["input_ids"]
            generate_kwargs["prefix_length"] = len(prefix_ids)
        if handle_long_generation is not None:
            if handle_long_generation != "hole":
                raise ValueError(f"{handle_long_generation} is not a valid value for `handle_long_generation` "
                                 "parameter expected [None, 'hole']")
            preprocess_params["handle_long_generation"] = handle_long_generation
        preprocess_params.update(generate_kwargs)
        forward_params = generate_kwargs

        postprocess_params: Dict[str, Any] = {}
        if return_full_text is not None and return_type is None:
            if return_text is not None:
                raise ValueError("`return_text` is mutually exclusive with `return_full_text`")
            if return_tensors is not None:
                raise ValueError("`return_full_text` is mutually exclusive with `return_tensors`")
            return_type = ReturnType.FULL_TEXT if return_full_text else ReturnType.NEW_TEXT
        if return_tensors is not None and return_type is None:
            if return_text is not None:
                raise ValueError("`return_text` is mutually exclusive with `return_tensors`")
            return_type = ReturnType.TENSORS
        if return_type is not None:
            postprocess_params["return_type"] = _return_type(return_type)
        if clean_up_tokenization_spaces is not None:
            postprocess_params["clean_up_tokenization_spaces"] = clean_up_tokenization_spaces
        if stop_sequence is not None:
            generate_kwargs["eos_token_id"] = stop_token_id(self.tokenizer, stop_sequence)
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, text_inputs: Any, **kwargs: Any) -> Any:
        """Continue a prompt (or each prompt of a list); see the class docstring for the options.

        Returns:
            For one prompt a list of dicts, one per returned sequence, with `generated_text` (or
            `generated_token_ids` for ReturnType.TENSORS); for a list of prompts a list of those lists.
        """
        return super().__call__(text_inputs, **kwargs)

    def _collate(self):
        """Batches of prompts are padded on the left whatever the tokenizer's `padding_side`: a decoder-only
        model continues each row from its last real token (4.37 pads CodeGen's right-padding tokenizer on
        the right, and its batched results then differ from the one-by-one ones)."""
        return pad_collate(self.tokenizer, padding_side="left")

    def preprocess(self, prompt_text: str, prefix: str = "", handle_long_generation: Optional[str] = None,
                   add_special_tokens: bool = False, truncation: Any = None, padding: Any = False,
                   max_length: Optional[int] = None, **generate_kwargs: Any) -> Dict[str, Any]:
        if isinstance(prompt_text, dict):
            raise ValueError("text-generation takes prompt strings; chat messages (dicts with role / content) are not "
                             "supported, as in transformers 4.37: format the chat into a prompt string first")
        if not isinstance(prompt_text, str):
            raise ValueError(f"text-generation takes a prompt string or a list of them; got {type(prompt_text).__name__}")
        inputs = self.tokenizer(prefix + prompt_text, return_tensors=self.framework, truncation=truncation,
                                padding=padding, max_length=max_length, add_special_tokens=add_special_tokens)
        inputs = dict(inputs)
        inputs["prompt_text"] = prompt_text
        if handle_long_generation == "hole":
            cur_len = inputs["input_ids"].shape[-1]
            if "max_new_tokens" in generate_kwargs:
                new_tokens = generate_kwargs["max_new_tokens"]
            else:
                new_tokens = generate_kwargs.get("max_length", self.model.config.max_length) - cur_len
                if new_tokens < 0:
                    raise ValueError("We cannot infer how many new tokens are expected")
            if cur_len + new_tokens > self.tokenizer.model_max_length:
                keep_length = self.tokenizer.model_max_length - new_tokens
                if keep_length <= 0:
                    raise ValueError("We cannot use `hole` to handle this generation the number of desired tokens "
                                     "exceeds the models max length")
                inputs["input_ids"] = inputs["input_ids"][:, -keep_length:]
                if "attention_mask" in inputs:
                    inputs["attention_mask"] = inputs["attention_mask"][:, -keep_length:]
        return inputs

    def _forward(self, model_inputs: Dict[str, Any], **generate_kwargs: Any) -> Dict[str, Any]:
        input_ids = model_inputs["input_ids"]
        attention_mask = model_inputs.get("attention_mask")
        if input_ids.shape[1] == 0:  # an empty prompt: generate from BOS
            input_ids = attention_mask = None
            in_b = 1
        else:
            in_b = input_ids.shape[0]
        prompt_text = model_inputs.pop("prompt_text")
        generate_kwargs = dict(generate_kwargs)
        prefix_length = generate_kwargs.pop("prefix_length", 0)
        if prefix_length > 0:  # the prefix counts against max_length / min_length, not the new tokens
            config = generate_kwargs.get("generation_config")
            if "max_new_tokens" not in generate_kwargs and getattr(config, "max_new_tokens", None) is None:
                generate_kwargs["max_length"] = (generate_kwargs.get("max_length") or self.model.config.max_length) \
                    + prefix_length
            if ("min_new_tokens" not in generate_kwargs and getattr(config, "min_new_tokens", None) is None
                    and "min_length" in generate_kwargs):
                generate_kwargs["min_length"] += prefix_length
        sequences = to_numpy(self.model.generate(input_ids=input_ids, attention_mask=attention_mask,
                                                 **generate_kwargs))
        sequences = sequences.reshape(in_b, -1, *sequences.shape[1:])  # (B, returned per prompt, L)
        return {"generated_sequence": sequences, "input_ids": input_ids, "prompt_text": prompt_text}

    def postprocess(self, model_outputs: Dict[str, Any], return_type: ReturnType = ReturnType.FULL_TEXT,
                    clean_up_tokenization_spaces: bool = True) -> List[Dict[str, Any]]:
        return_type = _return_type(return_type)
        input_ids = model_outputs["input_ids"]
        prompt_text = model_outputs["prompt_text"]
        records = []
        for sequence in model_outputs["generated_sequence"][0].tolist():
            if return_type == ReturnType.TENSORS:
                records.append({"generated_token_ids": sequence})
                continue
            text = self.tokenizer.decode(sequence, skip_special_tokens=True,
                                         clean_up_tokenization_spaces=clean_up_tokenization_spaces)
            # the prompt's decoded length, so what follows it is the new text
            prompt_length = 0 if input_ids is None else len(self.tokenizer.decode(
                to_numpy(input_ids[0]).tolist(), skip_special_tokens=True,
                clean_up_tokenization_spaces=clean_up_tokenization_spaces))
            new_text = text[prompt_length:]
            records.append({"generated_text": prompt_text + new_text if return_type == ReturnType.FULL_TEXT
                            else new_text})
        return records
