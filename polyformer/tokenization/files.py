"""Reading and writing a tokenizer's configuration files.

- tokenizer_config.json: the constructor's keyword arguments (unknown keys are kept and written back),
  `added_tokens_decoder` (id -> AddedToken state), `model_max_length`, `tokenizer_class`, ...;
- special_tokens_map.json: the special-token attributes (read only for files older than 4.34, which
  have no `added_tokens_decoder`);
- added_tokens.json: legacy {token: id} of added tokens;
- tokenizer.json: its `added_tokens` are read for legacy files, and transformers 5.x folders.

Files written by transformers 4.x and 5.x load (5.x writes `extra_special_tokens` instead of
`additional_special_tokens`, and may write no special_tokens_map.json nor vocabulary file).
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, Dict, Optional, Tuple

from ..hub import read_json, resolve_file, resolve_named_file, write_json
from .encoding import AddedToken, as_added_token, is_added_token
from .special_tokens import SPECIAL_TOKENS_ATTRIBUTES, added_token_id

logger = logging.getLogger(__name__)

CONFIG_FILES = {
    "added_tokens_file": "added_tokens.json",
    "special_tokens_map_file": "special_tokens_map.json",
    "tokenizer_config_file": "tokenizer_config.json",
    "tokenizer_file": "tokenizer.json",
}
_IGNORED_LOAD_KWARGS = ("trust_remote_code", "_from_auto", "_from_pipeline", "_commit_hash", "resume_download",
                        "proxies", "user_agent", "use_fast", "tokenizer_type")


def load_pretrained_kwargs(cls, name: str, kwargs: Dict[str, Any], hub: Dict[str, Any]) -> Dict[str, Any]:
    """The keyword arguments `cls(...)` needs to rebuild the tokenizer saved at `name` (a folder or a
    Hub id); `kwargs` (the user's) override the saved values."""
    kwargs = dict(kwargs)
    if "use_auth_token" in kwargs:
        hub["token"] = kwargs.pop("use_auth_token")
    for key in _IGNORED_LOAD_KWARGS:
        kwargs.pop(key, None)
    if os.path.isfile(name):
        if len(cls.vocab_files_names) != 1:
            raise ValueError(f"{cls.__name__}.from_pretrained needs a folder or a Hub id, not the file {name!r}")
        resolved = {next(iter(cls.vocab_files_names)): name}
    else:
        names = {**cls.vocab_files_names, **CONFIG_FILES}
        resolved = {key: resolve_file(name, filename, required=False, **hub) for key, filename in names.items()}
    if all(path is None for path in resolved.values()):
        wanted = ", ".join(sorted({**cls.vocab_files_names, **CONFIG_FILES}.values()))
        raise OSError(f"cannot load a {cls.__name__} from {name!r}: none of {wanted} is there")

    config: Dict[str, Any] = {}
    if resolved.get("tokenizer_config_file"):
        config = read_json(resolved["tokenizer_config_file"])
        _contain_named_files(cls, name, config, hub)
    saved_class = config.pop("tokenizer_class", None)
    if saved_class and saved_class.replace("Fast", "") != cls.__name__.replace("Fast", ""):
        logger.warning("%s was saved as a %s; loading it as a %s may tokenize differently",
                       name, saved_class, cls.__name__)
    if resolved.get("tokenizer_file") is None:
        config.pop("tokenizer_file", None)
    _merge_extra_special_tokens(config)
    config.update(kwargs)
    for key in list(cls.vocab_files_names) + ["tokenizer_file"]:
        path = resolved.get(key)
        current = config.get(key)
        if path is not None and not (isinstance(current, str) and os.path.isfile(current)):
            config[key] = path  # a saved path from another machine, or none: use the resolved file
    config["name_or_path"] = name

    decoder: Dict[int, AddedToken] = {}
    if "added_tokens_decoder" in config:
        for index, state in config["added_tokens_decoder"].items():
            token = AddedToken(**state) if isinstance(state, dict) else as_added_token(state)
            decoder[added_token_id(index, state)] = token
    else:  # files older than transformers 4.34, or written by 5.x
        decoder = _legacy_added_tokens(config, kwargs, resolved)
    config["added_tokens_decoder"] = decoder
    config = _tokens_from_json(config)
    by_content = {token.content: token for token in decoder.values()}
    for key in SPECIAL_TOKENS_ATTRIBUTES[:-1]:
        if config.get(key) is not None and str(config[key]) in by_content:
            config[key] = by_content[str(config[key])]
    return config


def _contain_named_files(cls, name: str, config: Dict[str, Any], hub: Dict[str, Any]) -> None:
    """The files tokenizer_config.json names (`vocab_file`, `merges_file`, `tokenizer_file`, ...) are read
    only inside the folder or repo (`hub.resolve_named_file`: UnsafePathError otherwise); a path that
    does not exist (saved on another machine) is dropped, so the folder's own file is used."""
    for key in list(cls.vocab_files_names) + ["tokenizer_file"]:
        if key in config:
            path = resolve_named_file(name, config[key], f"tokenizer_config.json's {key}", **hub)
            if path is None:
                del config[key]
            else:
                config[key] = path


def _merge_extra_special_tokens(config: Dict[str, Any]) -> None:
    """transformers 5.x names the additional special tokens `extra_special_tokens` (a list; 4.4x wrote a
    dict of named tokens)."""
    extra = config.pop("extra_special_tokens", None)
    if isinstance(extra, dict):
        extra = list(extra.values())
    if extra:
        current = list(config.get("additional_special_tokens") or [])
        config["additional_special_tokens"] = current + [t for t in extra if str(t) not in map(str, current)]


def _legacy_added_tokens(config: Dict[str, Any], user_kwargs: Dict[str, Any],
                         resolved: Dict[str, Optional[str]]) -> Dict[int, AddedToken]:
    """Special tokens from special_tokens_map.json; added tokens from added_tokens.json and tokenizer.json."""
    if resolved.get("special_tokens_map_file"):
        for key, value in read_json(resolved["special_tokens_map_file"]).items():
            if user_kwargs.get(key):
                continue
            if key == "additional_special_tokens" and isinstance(value, list):
                current = list(config.get("additional_special_tokens") or [])
                for token in value:
                    token = _special_from_json(token)
                    if str(token) not in map(str, current):
                        current.append(token)
                value = current
            else:
                value = _special_from_json(value)
            config[key] = value
    decoder: Dict[int, AddedToken] = {}
    if resolved.get("added_tokens_file"):
        specials = set()
        for key in SPECIAL_TOKENS_ATTRIBUTES[:-1]:
            if config.get(key) is not None:
                specials.add(str(_special_from_json(config[key])))
        specials.update(str(_special_from_json(t)) for t in config.get("additional_special_tokens") or [])
        for content, index in read_json(resolved["added_tokens_file"]).items():
            special = content in specials
            decoder[int(index)] = AddedToken(content, normalized=not special, special=special)
    if resolved.get("tokenizer_file"):
        for state in read_json(resolved["tokenizer_file"]).get("added_tokens", []):
            index = int(state["id"])
            decoder[index] = AddedToken(**{k: v for k, v in state.items() if k != "id"})
    return dict(sorted(decoder.items()))


def _special_from_json(value: Any) -> Any:
    if isinstance(value, dict):
        state = {k: v for k, v in value.items() if k != "__type"}
        return AddedToken(**{**state, "special": True})
    return value


def _tokens_from_json(value: Any) -> Any:
    """Turn {"__type": "AddedToken", ...} dicts (older tokenizer_config.json files) into AddedToken."""
    if isinstance(value, dict):
        if value.get("__type") == "AddedToken":
            return AddedToken(**{k: v for k, v in value.items() if k != "__type"})
        return {key: _tokens_from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tokens_from_json(item) for item in value]
    return value


def _tokens_to_json(value: Any, with_type: bool) -> Any:
    """AddedToken -> its state (with "__type" for tokenizer_config.json, without "special" otherwise)."""
    if is_added_token(value):
        state = dict(value.__getstate__())
        if with_type:
            state["__type"] = "AddedToken"
        else:
            state.pop("special", None)
        return state
    if isinstance(value, dict):
        return {key: _tokens_to_json(item, with_type) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tokens_to_json(item, with_type) for item in value]
    return value


def save_tokenizer_config(tok, directory: str, prefix: Optional[str]) -> Tuple[str, ...]:
    """Write tokenizer_config.json and special_tokens_map.json for `tok`; returns their paths."""
    config = copy.deepcopy(tok.init_kwargs)
    for key in set(tok.init_kwargs) | {"model_max_length", "clean_up_tokenization_spaces"}:
        try:
            config[key] = copy.deepcopy(getattr(tok, key))
        except AttributeError:
            pass
    config.update(tok.special_tokens_map)
    if tok.chat_template is not None:
        config["chat_template"] = tok.chat_template
    if tok.init_inputs:
        config["init_inputs"] = list(tok.init_inputs)
    for key in list(tok.vocab_files_names) + ["name_or_path", "special_tokens_map_file", "tokenizer_file"]:
        config.pop(key, None)
    config = _tokens_to_json(config, with_type=True)
    config["added_tokens_decoder"] = {index: dict(token.__getstate__())
                                      for index, token in sorted(tok.added_tokens_decoder.items())}
    name = type(tok).__name__
    config["tokenizer_class"] = name[:-4] if name.endswith("Fast") and name != "PreTrainedTokenizerFast" else name
    if getattr(tok, "_processor_class", None) is not None:
        config["processor_class"] = tok._processor_class
    config_path = prefixed(directory, prefix, "tokenizer_config.json")
    write_json(config_path, config)
    map_path = prefixed(directory, prefix, "special_tokens_map.json")
    write_json(map_path, _tokens_to_json(tok.special_tokens_map_extended, with_type=False))
    return config_path, map_path


def prefixed(directory: str, prefix: Optional[str], filename: str) -> str:
    """`directory/prefix-filename` (or `directory/filename`)."""
    return os.path.join(directory, f"{prefix}-{filename}" if prefix else filename)
