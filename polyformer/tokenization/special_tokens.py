"""Special tokens: the `bos_token` ... `mask_token` and `additional_special_tokens` attributes, their
`*_id` twins, and adding tokens to the vocabulary; mixed into `PreTrainedTokenizerBase`."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Union

from .encoding import AddedToken, as_added_token, is_added_token

SPECIAL_TOKENS_ATTRIBUTES = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                             "mask_token", "additional_special_tokens"]


def _content(token: Any) -> str:
    return str(token.get("content")) if isinstance(token, dict) else str(token)


def added_token_id(key: Any, token: Any) -> int:
    """An `added_tokens_decoder` key (an int, or its digits as JSON keys are strings) as an int."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and key.strip().lstrip("+-").isdigit():
        return int(key)
    raise ValueError(f"added_tokens_decoder: id {key!r} of token {_content(token)!r} is not an integer")


def check_added_token_ids(decoder: Dict[Any, Any], size: int,
                          other_token: Callable[[int, str], Optional[str]]) -> None:
    """Refuse an `added_tokens_decoder` (tokenizer_config.json's {id: token}) that the vocabulary cannot hold.

    Each id must be an int in [0, size + number of added tokens) (`size`: the vocabulary the tokenizer
    already has), and an id the vocabulary already uses must name that same token (`other_token(id,
    content)`: the vocabulary's token at `id` when it is another one, else None): otherwise the slow
    tokenizer would emit an id the model has no row for, or two tokens would share an id, and the slow
    and fast tokenizers would disagree.
    """
    limit = size + len(decoder)
    for key, token in decoder.items():
        content = _content(token)
        index = added_token_id(key, token)
        if not 0 <= index < limit:
            raise ValueError(f"added_tokens_decoder: id {key!r} of token {content!r} is out of range; ids must lie "
                             f"in [0, {limit}) (a vocabulary of {size} plus {len(decoder)} added tokens)")
        current = other_token(index, content)
        if current is not None:
            raise ValueError(f"added_tokens_decoder: id {index} is given to {content!r} but the vocabulary already "
                             f"uses it for {current!r}")


class _SpecialToken:
    """`tok.cls_token`: the token as a str (None when unset); settable to a str or an AddedToken."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, tok, owner=None):
        if tok is None:
            return self
        value = tok._special_tokens.get(self.name)
        return None if value is None else str(value)

    def __set__(self, tok, value):
        if value is not None and not isinstance(value, str) and not is_added_token(value):
            raise ValueError(f"{self.name} must be a str or an AddedToken, got {type(value).__name__}")
        tok._special_tokens[self.name] = value


class _SpecialTokenId:
    """`tok.cls_token_id`: the id of the matching special token (None when unset); settable by id."""

    def __set_name__(self, owner, name):
        self.token = name[: -len("_id")]

    def __get__(self, tok, owner=None):
        if tok is None:
            return self
        token = getattr(tok, self.token)
        return None if token is None else tok.convert_tokens_to_ids(token)

    def __set__(self, tok, value):
        tok._special_tokens[self.token] = None if value is None else tok.convert_ids_to_tokens(value)


class SpecialTokensMixin:
    """The special-token attributes. Each is a str (None when unset) and can be set to a str or an
    AddedToken; `<name>_id` gives (and sets, by id) its vocabulary id."""

    SPECIAL_TOKENS_ATTRIBUTES = SPECIAL_TOKENS_ATTRIBUTES

    bos_token = _SpecialToken()
    eos_token = _SpecialToken()
    unk_token = _SpecialToken()
    sep_token = _SpecialToken()
    pad_token = _SpecialToken()
    cls_token = _SpecialToken()
    mask_token = _SpecialToken()
    bos_token_id = _SpecialTokenId()
    eos_token_id = _SpecialTokenId()
    unk_token_id = _SpecialTokenId()
    sep_token_id = _SpecialTokenId()
    pad_token_id = _SpecialTokenId()
    cls_token_id = _SpecialTokenId()
    mask_token_id = _SpecialTokenId()

    def _init_special_tokens(self, kwargs: Dict[str, Any]) -> None:
        """Set the special-token attributes given in `kwargs` (not yet added to the vocabulary)."""
        self._pad_token_type_id = 0
        self._special_tokens: Dict[str, Any] = {name: None for name in SPECIAL_TOKENS_ATTRIBUTES[:-1]}
        self._additional_special_tokens: List[Any] = []
        for key in SPECIAL_TOKENS_ATTRIBUTES:
            value = kwargs.get(key)
            if value is None:
                continue
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)) or not all(isinstance(t, str) or is_added_token(t)
                                                                   for t in value):
                    raise TypeError(f"additional_special_tokens must be a list of str or AddedToken, got {value!r}")
                self._additional_special_tokens = list(value)
            else:
                setattr(self, key, value)

    @property
    def additional_special_tokens(self) -> List[str]:
        return [str(token) for token in self._additional_special_tokens]

    @additional_special_tokens.setter
    def additional_special_tokens(self, value: Optional[Iterable[Any]]) -> None:
        self._additional_special_tokens = list(value or [])

    @property
    def additional_special_tokens_ids(self) -> List[int]:
        return self.convert_tokens_to_ids(self.additional_special_tokens)

    @additional_special_tokens_ids.setter
    def additional_special_tokens_ids(self, values: Iterable[int]) -> None:
        self._additional_special_tokens = [self.convert_ids_to_tokens(value) for value in values]

    @property
    def pad_token_type_id(self) -> int:
        return self._pad_token_type_id

    @property
    def special_tokens_map(self) -> Dict[str, Union[str, List[str]]]:
        """The set special-token attributes, as strings (e.g. {"cls_token": "[CLS]", ...})."""
        return {name: getattr(self, name) for name in SPECIAL_TOKENS_ATTRIBUTES if getattr(self, name)}

    @property
    def special_tokens_map_extended(self) -> Dict[str, Any]:
        """Like `special_tokens_map`, keeping AddedToken objects as they were given."""
        raw = dict(self._special_tokens, additional_special_tokens=self._additional_special_tokens)
        return {name: raw[name] for name in SPECIAL_TOKENS_ATTRIBUTES if raw[name]}

    @property
    def all_special_tokens_extended(self) -> List[Any]:
        """Every special token once (str or AddedToken), in attribute order."""
        tokens, seen = [], set()
        for value in self.special_tokens_map_extended.values():
            for token in value if isinstance(value, (list, tuple)) else [value]:
                if str(token) not in seen:
                    seen.add(str(token))
                    tokens.append(token)
        return tokens

    @property
    def all_special_tokens(self) -> List[str]:
        return [str(token) for token in self.all_special_tokens_extended]

    @property
    def all_special_ids(self) -> List[int]:
        return self.convert_tokens_to_ids(self.all_special_tokens)

    def add_special_tokens(self, special_tokens_dict: Dict[str, Any],
                           replace_additional_special_tokens: bool = True) -> int:
        """Set special-token attributes (e.g. {"pad_token": "[PAD]"}) and add the tokens to the vocabulary.

        `additional_special_tokens` replaces the current list unless `replace_additional_special_tokens`
        is False (the replaced tokens stay in the vocabulary). Returns the number of new vocabulary entries.
        """
        if not special_tokens_dict:
            return 0
        to_add: List[Any] = []
        for key, value in special_tokens_dict.items():
            if key not in SPECIAL_TOKENS_ATTRIBUTES:
                raise ValueError(f"{key!r} is not a special token attribute; "
                                 f"expected one of {SPECIAL_TOKENS_ATTRIBUTES}")
            if key == "additional_special_tokens":
                if not isinstance(value, (list, tuple)):
                    raise TypeError(f"additional_special_tokens must be a list, got {type(value).__name__}")
                new = [_special(token) for token in value
                       if replace_additional_special_tokens or str(token) not in self.additional_special_tokens]
                if replace_additional_special_tokens and new:
                    self._additional_special_tokens = list(new)
                else:
                    self._additional_special_tokens.extend(new)
                to_add += new
            else:
                token = _special(value, argument=key)
                setattr(self, key, token)
                if token not in to_add:
                    to_add.append(token)
        return self.add_tokens(to_add, special_tokens=True)

    def add_tokens(self, new_tokens: Union[str, AddedToken, List[Union[str, AddedToken]]],
                   special_tokens: bool = False) -> int:
        """Add tokens (str or AddedToken) that are never split; returns how many are new to the vocabulary."""
        if not new_tokens:
            return 0
        if not isinstance(new_tokens, (list, tuple)):
            new_tokens = [new_tokens]
        for token in new_tokens:
            if not isinstance(token, str) and not is_added_token(token):
                raise TypeError(f"add_tokens expects str or AddedToken values, got {type(token).__name__}: {token!r}")
        return self._add_tokens(list(new_tokens), special_tokens=special_tokens)

    def _add_tokens(self, new_tokens: List[Any], special_tokens: bool = False) -> int:
        raise NotImplementedError

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        raise NotImplementedError

    @property
    def added_tokens_encoder(self) -> Dict[str, int]:
        """Added token content -> id, by id."""
        return {token.content: index for index, token in sorted(self.added_tokens_decoder.items())}

    def get_added_vocab(self) -> Dict[str, int]:
        return self.added_tokens_encoder


def _special(value: Any, argument: str = "additional_special_tokens") -> AddedToken:
    """A special token as an AddedToken (str -> not normalized, no stripping)."""
    if isinstance(value, str):
        return AddedToken(value, rstrip=False, lstrip=False, normalized=False, special=True)
    if is_added_token(value):
        return as_added_token(value)
    raise ValueError(f"{argument} must be a str or an AddedToken, got {type(value).__name__}: {value!r}")


def special_token(value: Any) -> Any:
    """A special token given as a str becomes AddedToken(normalized=False, special=True), as model
    tokenizers make their bos / eos / unk / pad tokens; None and AddedToken objects stay as they are."""
    return _special(value) if isinstance(value, str) else value
