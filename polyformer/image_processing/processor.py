"""`ProcessorMixin`: a processor is an image processor and a tokenizer used together (CLIPProcessor,
IdeficsProcessor). Saving writes both into one folder (each file records the processor's class);
loading reads both back from it; decoding is the tokenizer's.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import json
import os
from typing import Any, Dict, List, Tuple, Union

from ..hub import read_json, resolve_file, write_atomically
from ..saving import save_transaction
from .base import HUB_ARGUMENTS
from ..push_to_hub import PushToHubMixin

__all__ = ["ProcessorMixin", "PROCESSOR_NAME"]

PROCESSOR_NAME = "processor_config.json"


def _public_class(name: str):
    """polyformer's public class called `name`, or None."""
    return getattr(importlib.import_module("polyformer"), name, None)


class ProcessorMixin(PushToHubMixin):
    """Base of the processors. Subclasses name their parts in `attributes` and, for each, the class to load
    it with: `image_processor_class` (a class name) and `tokenizer_class` (a name, or (slow, fast) names)."""

    attributes = ["image_processor", "tokenizer"]
    image_processor_class: str = ""
    tokenizer_class: Union[str, Tuple[str, str]] = ""

    def __init__(self, *args: Any, **kwargs: Any):
        for key in kwargs:
            if key not in self.attributes:
                raise TypeError(f"{type(self).__name__} got an unexpected keyword argument {key!r}")
        for name, value in zip(self.attributes, args):
            if name in kwargs:
                raise TypeError(f"{type(self).__name__} got two values for {name!r}")
            kwargs[name] = value
        missing = [name for name in self.attributes if kwargs.get(name) is None]
        if missing or len(args) > len(self.attributes):
            raise ValueError(f"{type(self).__name__} needs {' and '.join(self.attributes)}; missing: {missing}")
        from ..tokenization.base import PreTrainedTokenizerBase
        from .base import BaseImageProcessor

        expected = {"image_processor": BaseImageProcessor, "tokenizer": PreTrainedTokenizerBase}
        for name, value in kwargs.items():
            if name in expected and not isinstance(value, expected[name]):
                raise TypeError(f"{type(self).__name__}: {name} must be a {expected[name].__name__}, "
                                f"got {type(value).__name__}")
            setattr(self, name, value)

    # -- configuration ------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        """The constructor arguments kept as attributes (not the parts), plus "processor_class"."""
        parameters = set(inspect.signature(type(self).__init__).parameters) - set(self.attributes) | {"auto_map"}
        out = {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key in parameters}
        out["processor_class"] = type(self).__name__
        return out

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def __repr__(self) -> str:
        parts = "\n".join(f"- {name}: {getattr(self, name)!r}" for name in self.attributes)
        return f"{type(self).__name__}:\n{parts}\n\n{self.to_json_string()}"

    @property
    def model_input_names(self) -> List[str]:
        """The tokenizer's input names, then the image processor's."""
        return list(dict.fromkeys(self.tokenizer.model_input_names + self.image_processor.model_input_names))

    # -- files --------------------------------------------------------------------------------
    def save_pretrained(self, save_directory: Union[str, os.PathLike], push_to_hub: bool = False,
                        **kwargs: Any) -> List[str]:
        """Save every part into `save_directory` (tokenizer files, preprocessor_config.json), each marked
        with this processor's class, plus processor_config.json when the processor has options of its own.
        Returns [processor_config.json] when written, else []."""
        if push_to_hub:
            raise NotImplementedError("save_pretrained(push_to_hub=True) is not supported; call push_to_hub(repo_id) instead")
        save_directory = os.fspath(save_directory)
        with save_transaction(save_directory):  # every part's files replace the old ones together
            for name in self.attributes:
                part = getattr(self, name)
                if hasattr(part, "_set_processor_class"):
                    part._set_processor_class(type(self).__name__)
                else:
                    part._processor_class = type(self).__name__
                part.save_pretrained(save_directory)
            if set(self.to_dict()) == {"processor_class"}:
                return []
            path = os.path.join(save_directory, PROCESSOR_NAME)
            write_atomically(path, self.to_json_string().encode("utf-8"))
        return [path]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs: Any):
        """Load every part from a folder or Hub id (the tokenizer's fast class unless `use_fast=False`);
        keyword arguments go to both parts' `from_pretrained`."""
        name = os.fspath(pretrained_model_name_or_path)
        use_fast = kwargs.pop("use_fast", True)
        parts = [cls._part_class(attribute, use_fast).from_pretrained(name, **kwargs) for attribute in cls.attributes]
        hub = {key: kwargs[key] for key in HUB_ARGUMENTS if key in kwargs}
        path = resolve_file(name, PROCESSOR_NAME, required=False, **hub) if not os.path.isfile(name) else None
        values = read_json(path, PROCESSOR_NAME) if path else {}
        values.pop("processor_class", None)
        values.pop("auto_map", None)
        return cls(*parts, **values)

    @classmethod
    def _part_class(cls, attribute: str, use_fast: bool):
        names = getattr(cls, f"{attribute}_class")
        if isinstance(names, (tuple, list)):
            slow, fast = names
            names = [fast, slow] if use_fast else [slow, fast]
        else:
            names = [names]
        for class_name in names:
            found = _public_class(class_name) if class_name else None
            if found is not None:
                return found
        raise ValueError(f"{cls.__name__}: no class {names} to load its {attribute} with")

    # -- decoding -----------------------------------------------------------------------------
    def batch_decode(self, *args: Any, **kwargs: Any) -> List[str]:
        """The tokenizer's `batch_decode`."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        """The tokenizer's `decode`."""
        return self.tokenizer.decode(*args, **kwargs)
