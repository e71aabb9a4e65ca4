"""`GenerationConfig`: how `generate()` decodes, and `generation_config.json` (load, save, model defaults).

The attributes, defaults, validation warnings and JSON format are transformers 4.37's, so files written by
either library read back in the other. This module imports no deep-learning framework.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import warnings
from typing import Any, Dict, Optional, Tuple, Union

from ..hub import read_json, resolve_file, write_atomically
from ..saving import save_transaction
from ..value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, NUMBER, POSITIVE_INT, TOKEN_IDS, check_values
from ..push_to_hub import PushToHubMixin

logger = logging.getLogger(__name__)

GENERATION_CONFIG_NAME = "generation_config.json"
FORMAT_VERSION = "4.37.2"  # written as `transformers_version`: the format these files follow
METADATA_FIELDS = ("_from_model_config", "_commit_hash", "_original_object_hash", "transformers_version")

# Every attribute that parametrises generate(), with its default, in the reference's order.
# Types (and ranges) of the values generate() reads; checked by `validate`, so that "abc" in a
# generation_config.json is refused on load rather than raising a TypeError deep inside generate().
_RULES = {
    **{key: NON_NEGATIVE_INT.or_none() for key in ("max_length", "min_length", "min_new_tokens", "top_k",
                                                   "no_repeat_ngram_size", "encoder_no_repeat_ngram_size")},
    **{key: POSITIVE_INT.or_none() for key in ("num_beam_groups", "num_return_sequences")},
    **{key: NUMBER.or_none() for key in ("temperature", "top_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
                                         "diversity_penalty", "repetition_penalty", "encoder_repetition_penalty",
                                         "length_penalty", "guidance_scale", "penalty_alpha")},
    "max_time": NON_NEGATIVE_NUMBER.or_none(),
    **{key: BOOL.or_none() for key in ("do_sample", "use_cache", "renormalize_logits", "remove_invalid_values",
                                       "output_attentions", "output_hidden_states", "output_scores",
                                       "return_dict_in_generate")},
    **{key: TOKEN_IDS for key in ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id",
                                  "forced_bos_token_id", "forced_eos_token_id")},
}

_DEFAULTS: Dict[str, Any] = {
    # length
    "max_length": 20, "max_new_tokens": None, "min_length": 0, "min_new_tokens": None,
    "early_stopping": False, "max_time": None,
    # strategy
    "do_sample": False, "num_beams": 1, "num_beam_groups": 1, "penalty_alpha": None, "use_cache": True,
    # logits manipulation
    "temperature": 1.0, "top_k": 50, "top_p": 1.0, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0,
    "diversity_penalty": 0.0, "repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0,
    "length_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None, "force_words_ids": None,
    "renormalize_logits": False, "constraints": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "remove_invalid_values": False, "exponential_decay_length_penalty": None, "suppress_tokens": None,
    "begin_suppress_tokens": None, "forced_decoder_ids": None, "sequence_bias": None, "guidance_scale": None,
    "low_memory": None,
    # outputs
    "num_return_sequences": 1, "output_attentions": False, "output_hidden_states": False,
    "output_scores": False, "return_dict_in_generate": False,
    # special tokens
    "pad_token_id": None, "bos_token_id": None, "eos_token_id": None,
    # encoder-decoder only
    "encoder_no_repeat_ngram_size": 0, "decoder_start_token_id": None,
    # assisted generation (accepted, not implemented)
    "num_assistant_tokens": 5, "num_assistant_tokens_schedule": "heuristic", "prompt_lookup_num_tokens": None,
    # stop when the text ends with one of these strings (transformers >= 4.39; needs generate(tokenizer=...))
    "stop_strings": None,
    "generation_kwargs": {},
}

# generate() arguments that people put in a GenerationConfig by mistake.
_GENERATE_ARGUMENTS = ("logits_processor", "stopping_criteria", "prefix_allowed_tokens_fn", "synced_gpus",
                       "assistant_model", "streamer", "negative_prompt_ids", "negative_prompt_attention_mask")

# Flags that only matter when sampling / with beams, and their neutral values (validate() warns).
_SAMPLING_ONLY = {"temperature": 1.0, "top_p": 1.0, "typical_p": 1.0, "top_k": 50, "epsilon_cutoff": 0.0,
                  "eta_cutoff": 0.0}
_BEAM_ONLY = {"early_stopping": False, "num_beam_groups": 1, "diversity_penalty": 0.0, "length_penalty": 1.0,
              "constraints": None}

# The model-config keys that older checkpoints used to control generation (reference defaults).
MODEL_CONFIG_GENERATION_DEFAULTS: Dict[str, Any] = {
    "max_length": 20, "min_length": 0, "do_sample": False, "early_stopping": False, "num_beams": 1,
    "num_beam_groups": 1, "diversity_penalty": 0.0, "temperature": 1.0, "top_k": 50, "top_p": 1.0,
    "typical_p": 1.0, "repetition_penalty": 1.0, "length_penalty": 1.0, "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0, "bad_words_ids": None, "num_return_sequences": 1, "output_scores": False,
    "return_dict_in_generate": False, "forced_bos_token_id": None, "forced_eos_token_id": None,
    "remove_invalid_values": False, "exponential_decay_length_penalty": None, "suppress_tokens": None,
    "begin_suppress_tokens": None,
}


class GenerationConfig(PushToHubMixin):
    """What `generate()` does, as in transformers 4.37.

    Length: `max_length` (prompt + new tokens, default 20), `max_new_tokens` (overrides max_length),
    `min_length`, `min_new_tokens`, `max_time` (seconds), `early_stopping` (beams: True, False or "never").
    Strategy: greedy (`num_beams=1, do_sample=False`), multinomial sampling (`do_sample=True`), beam search
    (`num_beams>1`) and beam sampling (both). Logits: `temperature`, `top_k`, `top_p`, `typical_p`,
    `epsilon_cutoff`, `eta_cutoff`, `repetition_penalty`, `encoder_repetition_penalty`, `length_penalty`,
    `no_repeat_ngram_size`, `bad_words_ids`, `sequence_bias`, `forced_bos_token_id`, `forced_eos_token_id`,
    `remove_invalid_values`, `exponential_decay_length_penalty`, `suppress_tokens`, `begin_suppress_tokens`,
    `forced_decoder_ids`, `renormalize_logits`. Outputs: `num_return_sequences`, `output_scores`,
    `output_attentions`, `output_hidden_states`, `return_dict_in_generate`. Tokens: `pad_token_id`,
    `bos_token_id`, `eos_token_id` (an int or a list), `decoder_start_token_id`. Also `stop_strings`
    (a string or list; generation of a row stops when its text ends with one). Unknown keyword arguments
    are kept as attributes (and saved), except in a config made from a model config.

    Example:
        >>> config = GenerationConfig(max_new_tokens=32, do_sample=True, top_p=0.9)
        >>> config.save_pretrained("my-model")          # writes my-model/generation_config.json
        >>> GenerationConfig.from_pretrained("my-model").top_p
        0.9
    """

    def __init__(self, **kwargs: Any) -> None:
        for key, default in _DEFAULTS.items():
            setattr(self, key, kwargs.pop(key, copy.deepcopy(default)))
        self._from_model_config = kwargs.pop("_from_model_config", False)
        self._commit_hash = kwargs.pop("_commit_hash", None)
        self.transformers_version = kwargs.pop("transformers_version", FORMAT_VERSION)
        if not self._from_model_config:  # a model config's other keys are not generation settings
            for key, value in kwargs.items():
                setattr(self, key, value)
        self.validate(is_init=True)

    # --- comparison -------------------------------------------------------------------------------
    def __hash__(self) -> int:
        return hash(self.to_json_string(ignore_metadata=True))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GenerationConfig):
            return False
        return (self.to_json_string(use_diff=False, ignore_metadata=True)
                == other.to_json_string(use_diff=False, ignore_metadata=True))

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string(ignore_metadata=True)}"

    # --- validation -------------------------------------------------------------------------------
    def validate(self, is_init: bool = False) -> None:
        """Raise for values that cannot work, warn (UserWarning) for flags the chosen strategy ignores —
        the reference's checks, plus `num_beams >= 1`, `max_new_tokens >= 0` and the types of the values
        generate() reads (`_RULES`: "abc" for max_length is refused here, naming the key)."""
        check_values(vars(self), _RULES, "generation config")
        if self.early_stopping not in (True, False, "never"):
            raise ValueError(f"`early_stopping` must be a boolean or 'never', but is {self.early_stopping}.")
        if self.num_beams is None:
            warnings.warn("`num_beams` is set to None - defaulting to 1.", UserWarning)
            self.num_beams = 1
        if not isinstance(self.num_beams, int) or isinstance(self.num_beams, bool) or self.num_beams < 1:
            raise ValueError(f"`num_beams` must be an integer >= 1, but is {self.num_beams!r}.")
        if self.max_new_tokens is not None and (not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 0):
            raise ValueError(f"`max_new_tokens` must be a non-negative integer, but is {self.max_new_tokens!r}.")
        where = (" This was detected when initializing the generation config instance, which means the "
                 "corresponding file may hold incorrect parameterization and should be fixed.") if is_init else ""
        if self.do_sample is False:
            for flag, neutral in _SAMPLING_ONLY.items():
                value = getattr(self, flag)
                if value != neutral and not (flag == "top_k" and self.penalty_alpha is not None):
                    warnings.warn(f"`do_sample` is set to `False`. However, `{flag}` is set to `{value}` -- this flag "
                                  "is only used in sample-based generation modes. You should set `do_sample=True` "
                                  f"or unset `{flag}`.{where}", UserWarning)
        if self.num_beams == 1:
            for flag, neutral in _BEAM_ONLY.items():
                value = getattr(self, flag)
                if value != neutral:
                    warnings.warn(f"`num_beams` is set to 1. However, `{flag}` is set to `{value}` -- this flag is "
                                  "only used in beam-based generation modes. You should set `num_beams>1` or unset "
                                  f"`{flag}`.{where}", UserWarning)
        elif self.diversity_penalty != 0.0 or self.num_beam_groups != 1:
            prefix = ("`diversity_penalty` is not 0.0 or `num_beam_groups` is not 1, triggering group beam search. "
                      "In this generation mode, ")
            if self.do_sample is True:
                raise ValueError(prefix + "`do_sample` must be set to `False`")
            if self.num_beams % self.num_beam_groups != 0:
                raise ValueError(prefix + "`num_beams` should be divisible by `num_beam_groups`")
            if self.diversity_penalty == 0.0:
                raise ValueError(prefix + "`diversity_penalty` should be greater than `0.0`, otherwise your "
                                 "groups will be identical.")
        if self.num_return_sequences != 1:
            if self.num_beams == 1 and self.do_sample is False:
                raise ValueError("Greedy methods without beam search do not support `num_return_sequences` different "
                                 f"than 1 (got {self.num_return_sequences}).")
            if self.num_beams > 1 and self.num_return_sequences > self.num_beams:
                raise ValueError(f"`num_return_sequences` ({self.num_return_sequences}) has to be smaller or equal "
                                 f"to `num_beams` ({self.num_beams}).")
        for arg in _GENERATE_ARGUMENTS:
            if hasattr(self, arg):
                raise ValueError(f"Argument `{arg}` is not a valid argument of `GenerationConfig`. It should be "
                                 "passed to `generate()` (or a pipeline) directly.")

    # --- (de)serialisation --------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """Every attribute (metadata included), as JSON would hold it."""
        output = copy.deepcopy({k: v for k, v in self.__dict__.items()
                                if k not in ("_commit_hash", "_original_object_hash")})
        output["transformers_version"] = self.transformers_version or FORMAT_VERSION
        for key in ("torch_dtype",):
            if output.get(key) is not None and not isinstance(output[key], str):
                output[key] = str(output[key]).rsplit(".", 1)[-1]
        return output

    def to_diff_dict(self) -> Dict[str, Any]:
        """Only what differs from `GenerationConfig()` (plus `transformers_version`)."""
        defaults = GenerationConfig().to_dict()
        return {k: v for k, v in self.to_dict().items()
                if k not in defaults or k == "transformers_version" or v != defaults[k]}

    def to_json_string(self, use_diff: bool = True, ignore_metadata: bool = False) -> str:
        config_dict = self.to_diff_dict() if use_diff else self.to_dict()
        if ignore_metadata:
            for key in METADATA_FIELDS:
                config_dict.pop(key, None)
        return json.dumps(config_dict, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: Union[str, os.PathLike], use_diff: bool = True) -> None:
        write_atomically(json_file_path, self.to_json_string(use_diff=use_diff).encode("utf-8"))

    def save_pretrained(self, save_directory: Union[str, os.PathLike], config_file_name: Optional[str] = None,
                        push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write `generation_config.json` (only the non-default values) into `save_directory`.

        As in the reference, a config whose validation warns (e.g. `temperature` set without `do_sample`)
        is refused with a ValueError rather than saved."""
        if push_to_hub:
            raise NotImplementedError("save_pretrained(push_to_hub=True) is not supported; call push_to_hub(repo_id) instead")
        with warnings.catch_warnings(record=True) as caught:
            try:
                self.validate()
            except ValueError as err:
                caught.append(err)
        if caught:
            problems = [str(getattr(w, "message", w)) for w in caught]
            raise ValueError("The generation config instance is invalid -- `.validate()` throws warnings and/or "
                             f"exceptions. Fix these issues to save the configuration.\n\nThrown during validation:\n"
                             f"{problems}")
        save_directory = os.fspath(save_directory)
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file, expected a folder")
        path = os.path.join(save_directory, config_file_name or GENERATION_CONFIG_NAME)
        with save_transaction(save_directory):
            self.to_json_file(path, use_diff=True)
        logger.info("Configuration saved in %s", path)

    @classmethod
    def from_pretrained(cls, pretrained_model_name: Union[str, os.PathLike], config_file_name: Optional[str] = None,
                        cache_dir: Optional[Union[str, os.PathLike]] = None, force_download: bool = False,
                        local_files_only: bool = False, token: Optional[Union[str, bool]] = None,
                        revision: Optional[str] = None, **kwargs: Any) -> Union["GenerationConfig", Tuple]:
        """Read `generation_config.json` from a folder or Hub repo. Keyword arguments that are attributes
        override the file's values (others are set as new attributes, as in the reference); with
        `return_unused_kwargs=True` a (config, unused kwargs) pair comes back."""
        subfolder = kwargs.pop("subfolder", "")
        for key in ("_from_auto", "_from_pipeline", "_commit_hash", "resume_download", "proxies"):
            kwargs.pop(key, None)
        path = resolve_file(pretrained_model_name, config_file_name or GENERATION_CONFIG_NAME, cache_dir=cache_dir,
                            force_download=force_download, local_files_only=local_files_only, token=token,
                            revision=revision, subfolder=subfolder)
        logger.info("loading configuration file %s", path)
        return cls.from_json_file(path, **kwargs)

    @classmethod
    def from_json_file(cls, json_file: Union[str, os.PathLike], **kwargs: Any) -> Union["GenerationConfig", Tuple]:
        """A config from one JSON file; kwargs as in `from_dict`."""
        values = read_json(json_file, GENERATION_CONFIG_NAME)
        try:
            result = cls.from_dict(values, **kwargs)
        except ValueError as err:
            raise ValueError(f"{os.fspath(json_file)}: {err}") from err
        config = result[0] if isinstance(result, tuple) else result
        config._original_object_hash = hash(config)  # lets generate() notice later edits
        return result

    @classmethod
    def from_dict(cls, config_dict: Dict[str, Any], **kwargs: Any) -> Union["GenerationConfig", Tuple]:
        return_unused_kwargs = kwargs.pop("return_unused_kwargs", False)
        kwargs.pop("_from_auto", None)
        kwargs.pop("_from_pipeline", None)
        config = cls(**{**config_dict, **kwargs})
        unused = config.update(**kwargs)
        return (config, unused) if return_unused_kwargs else config

    @classmethod
    def from_model_config(cls, model_config: Any) -> "GenerationConfig":
        """The generation settings a model config holds (special token ids, legacy generation keys)."""
        config_dict = model_config.to_dict()
        config_dict.pop("_from_model_config", None)
        config = cls.from_dict(config_dict, return_unused_kwargs=False, _from_model_config=True)
        # Composite models keep generation attributes in a sub-config: use them where still default.
        defaults = GenerationConfig()
        for sub in ("decoder", "generator", "text_config"):
            sub_dict = config_dict.get(sub)
            if isinstance(sub_dict, dict):
                for attr in config.to_dict():
                    if attr in sub_dict and getattr(config, attr) == getattr(defaults, attr):
                        setattr(config, attr, sub_dict[attr])
        config._original_object_hash = hash(config)
        return config

    def update(self, **kwargs: Any) -> Dict[str, Any]:
        """Set the attributes `kwargs` names that exist; return the others, untouched."""
        used = [key for key in kwargs if hasattr(self, key)]
        for key in used:
            setattr(self, key, kwargs[key])
        return {k: v for k, v in kwargs.items() if k not in used}
