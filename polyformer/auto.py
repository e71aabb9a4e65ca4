"""Auto classes: pick the family's class from `config.model_type`.

One table, `FAMILIES`, maps a model_type to the prefix of its class names; a family joins with one
line. Class names follow transformers: `<Prefix>Config`, `<Prefix>Model`, `<Prefix>For<Task>`, and
`TF` / `Flax` in front for the other frameworks. Classes are looked up lazily by name on the
`polyformer` package, so nothing is imported before it is used.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Optional, Tuple

from .configuration import PretrainedConfig, config_source, pop_hub_kwargs
from .hub import read_json, resolve_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Family:
    prefix: str  # "DistilBert" -> DistilBertConfig, DistilBertModel, ...
    tokenizer: Optional[str] = None  # slow tokenizer class name; "<name>Fast" is the fast one
    image_processor: Optional[str] = None  # class names for the families that take images
    processor: Optional[str] = None


FAMILIES = {
    "distilbert": Family("DistilBert", tokenizer="DistilBertTokenizer"),
    "canine": Family("Canine", tokenizer="CanineTokenizer"),  # no fast tokenizer: AutoTokenizer takes the slow one
    "codegen": Family("CodeGen", tokenizer="CodeGenTokenizer"),
    "gptj": Family("GPTJ", tokenizer="GPT2Tokenizer"),  # as 4.37's mapping (and GPT-J repos' tokenizer_config.json)
    "llama": Family("Llama", tokenizer="LlamaTokenizer"),
    "mvp": Family("Mvp", tokenizer="MvpTokenizer"),
    "idefics": Family("Idefics", tokenizer="LlamaTokenizer",  # 4.37 names only the fast one
                      image_processor="IdeficsImageProcessor", processor="IdeficsProcessor"),
    "groupvit": Family("GroupViT", tokenizer="CLIPTokenizer",
                       image_processor="CLIPImageProcessor", processor="CLIPProcessor"),
}


def _public(name: str) -> Any:
    import polyformer

    return getattr(polyformer, name, None)


def _public_of_kind(class_name: str, kind: str, key: str, source: str) -> Optional[type]:
    """The polyformer class a file names (None when polyformer has no such name); a ValueError when the
    name is another kind of object (e.g. tokenizer_class "DistilBertModel"): an Auto class only ever
    instantiates classes of its own kind, whatever a downloaded file says.

    Args:
        kind: "tokenizer", "image processor" or "processor".
        key / source: the key and the file (or argument) naming the class, for the message.
    """
    found = _public(class_name)
    if found is None:
        return None
    base = _kind_base(kind)
    if not (isinstance(found, type) and issubclass(found, base)):
        raise ValueError(f"{source} names {key}={class_name!r}, which is not a {kind} class: only {kind} classes "
                         f"(subclasses of {base.__name__}) can be loaded this way")
    return found


def _kind_base(kind: str) -> type:
    if kind == "tokenizer":
        from .tokenization.base import PreTrainedTokenizerBase

        return PreTrainedTokenizerBase
    if kind == "image processor":
        from .image_processing.base import ImageProcessingMixin

        return ImageProcessingMixin
    from .image_processing.processor import ProcessorMixin

    return ProcessorMixin


def _family(model_type: Optional[str]) -> Family:
    if model_type not in FAMILIES:
        raise ValueError(f"unrecognised model_type {model_type!r}; polyformer knows {sorted(FAMILIES)}")
    return FAMILIES[model_type]


class AutoConfig:
    """`AutoConfig.from_pretrained(name)` returns the config class that config.json's model_type names."""

    def __init__(self):
        raise EnvironmentError("AutoConfig is not instantiated; use AutoConfig.from_pretrained(...)")

    @staticmethod
    def config_class(model_type: str) -> type:
        return _public(_family(model_type).prefix + "Config")

    @classmethod
    def for_model(cls, model_type: str, **kwargs: Any) -> PretrainedConfig:
        return cls.config_class(model_type)(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs: Any) -> PretrainedConfig:
        hub_kwargs = pop_hub_kwargs(kwargs)
        config_dict = PretrainedConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        if "model_type" not in config_dict:
            raise ValueError(f"config.json of {os.fspath(pretrained_model_name_or_path)!r} has no model_type; "
                             "load it with the family's config class instead")
        config_dict.setdefault("_name_or_path", os.fspath(pretrained_model_name_or_path))
        return cls.config_class(config_dict["model_type"]).from_dict(
            config_dict, _source=config_source(pretrained_model_name_or_path), **kwargs)


class _AutoModelBase:
    """Shared by every AutoModel*: `suffix` is the class-name ending, `framework` its prefix."""

    suffix = "Model"
    framework = ""

    def __init__(self):
        raise EnvironmentError(f"{type(self).__name__} is not instantiated; use .from_pretrained or .from_config")

    @classmethod
    def model_class(cls, config: PretrainedConfig) -> type:
        name = cls.framework + _family(config.model_type).prefix + cls.suffix
        model_cls = _public(name)
        if model_cls is None:
            raise ValueError(f"{cls.__name__} has no class for model_type {config.model_type!r} (looked for {name})")
        return model_cls

    @classmethod
    def from_config(cls, config: PretrainedConfig, **kwargs: Any):
        """A randomly initialised model of the right class for `config`."""
        if "attn_implementation" in kwargs:
            config._attn_implementation = kwargs.pop("attn_implementation")
        return cls.model_class(config)(config, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args: Any, **kwargs: Any):
        config = kwargs.pop("config", None)
        if config is None:
            hub_kwargs = {k: kwargs[k] for k in pop_hub_kwargs(dict(kwargs))}
            config = AutoConfig.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return cls.model_class(config).from_pretrained(pretrained_model_name_or_path, *model_args, config=config, **kwargs)


def _auto(name: str, suffix: str, doc: str) -> type:
    return type(name, (_AutoModelBase,), {"suffix": suffix, "__doc__": doc, "__module__": __name__})


AutoModel = _auto("AutoModel", "Model", "The bare model of the config's family.")
AutoModelForMaskedLM = _auto("AutoModelForMaskedLM", "ForMaskedLM", "A masked-LM head model.")
AutoModelForSequenceClassification = _auto(
    "AutoModelForSequenceClassification", "ForSequenceClassification", "A sequence-classification head model.")
AutoModelForMultipleChoice = _auto("AutoModelForMultipleChoice", "ForMultipleChoice", "A multiple-choice head model.")
AutoModelForTokenClassification = _auto(
    "AutoModelForTokenClassification", "ForTokenClassification", "A token-classification head model.")
AutoModelForQuestionAnswering = _auto(
    "AutoModelForQuestionAnswering", "ForQuestionAnswering", "An extractive question-answering head model.")
AutoModelForCausalLM = _auto("AutoModelForCausalLM", "ForCausalLM", "A causal (next-token) language-model head model.")
AutoModelForSeq2SeqLM = _auto("AutoModelForSeq2SeqLM", "ForConditionalGeneration",
                              "An encoder-decoder (sequence-to-sequence) language-model head model.")


class AutoTokenizer:
    """`AutoTokenizer.from_pretrained(name)`: the class named by tokenizer_config.json's `tokenizer_class`
    (else by config.json's), else the family's tokenizer from config.json's model_type; the fast one unless
    use_fast=False. A name ending in "Fast" gives the fast class either way, as in the reference."""

    def __init__(self):
        raise EnvironmentError("AutoTokenizer is not instantiated; use AutoTokenizer.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *inputs: Any, use_fast: bool = True, **kwargs: Any):
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs[k] for k in pop_hub_kwargs(dict(kwargs))}
        slow, fast = cls._class_names(name, kwargs.pop("tokenizer_type", None), hub_kwargs)
        for class_name in ((fast, slow) if use_fast else (slow, fast)):
            tokenizer_cls = (_public_of_kind(class_name, "tokenizer", "tokenizer_class", name)
                             if class_name else None)
            if tokenizer_cls is not None:
                return tokenizer_cls.from_pretrained(name, *inputs, **kwargs)
        raise ValueError(f"tokenizer class {slow or fast!r} of {name!r} is not available in polyformer")

    @staticmethod
    def _class_names(name: str, tokenizer_type: Optional[str], hub_kwargs: dict) -> Tuple[Optional[str], Optional[str]]:
        """(slow, fast) class names to try; slow is None when the files name a fast class."""
        class_name = None
        if tokenizer_type is not None:
            class_name = _family(tokenizer_type).tokenizer
        else:
            path = resolve_file(name, "tokenizer_config.json", required=False, **hub_kwargs)
            source = "tokenizer_config.json"
            if path is not None:
                class_name = read_json(path, "tokenizer_config.json").get("tokenizer_class")
            config_dict = None
            if class_name is None:
                config_dict = PretrainedConfig.get_config_dict(name, **hub_kwargs)
                class_name, source = config_dict.get("tokenizer_class"), "config.json"
            if class_name is not None and not isinstance(class_name, str):
                raise ValueError(f"{source} of {name!r}: tokenizer_class must be a class name (a str), "
                                 f"got {class_name!r}")
            if class_name is None or _public_of_kind(class_name.removesuffix("Fast"), "tokenizer", "tokenizer_class",
                                                     f"{source} of {name!r}") is None:
                if class_name is not None:
                    logger.info("tokenizer_class %s is unknown; using config.json's model_type", class_name)
                if config_dict is None:
                    config_dict = PretrainedConfig.get_config_dict(name, **hub_kwargs)
                class_name = _family(config_dict.get("model_type")).tokenizer
        if class_name is None:
            raise ValueError(f"no tokenizer is known for {name!r}")
        slow = class_name.removesuffix("Fast")
        return (None if class_name.endswith("Fast") else slow), slow + "Fast"


def _json_value(name: str, filename: str, key: str, hub_kwargs: dict) -> Optional[str]:
    """`key` of the folder's `filename`, or None when either is absent."""
    path = resolve_file(name, filename, required=False, **hub_kwargs)
    return None if path is None else read_json(path, filename).get(key)


def _model_type(name: str, hub_kwargs: dict) -> Optional[str]:
    """config.json's model_type, or None when the folder has no config.json."""
    return _json_value(name, "config.json", "model_type", hub_kwargs)


class AutoImageProcessor:
    """`AutoImageProcessor.from_pretrained(name)`: the class named by preprocessor_config.json's
    `image_processor_type` (or its older `feature_extractor_type`, "...FeatureExtractor" read as
    "...ImageProcessor"), else the family's image processor from config.json's model_type. A folder
    without preprocessor_config.json raises FileNotFoundError (an OSError, as the reference's)."""

    def __init__(self):
        raise EnvironmentError("AutoImageProcessor is not instantiated; use AutoImageProcessor.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs: Any):
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs[k] for k in pop_hub_kwargs(dict(kwargs))}
        path = resolve_file(name, "preprocessor_config.json", **hub_kwargs)  # FileNotFoundError when absent
        values = read_json(path, "preprocessor_config.json")
        class_name = values.get("image_processor_type")
        if class_name is None and values.get("feature_extractor_type"):
            class_name = values["feature_extractor_type"].replace("FeatureExtractor", "ImageProcessor")
        if class_name is None:
            model_type = _model_type(name, hub_kwargs)
            class_name = _family(model_type).image_processor if model_type else None
        if class_name is not None and not isinstance(class_name, str):
            raise ValueError(f"preprocessor_config.json of {name!r}: image_processor_type must be a class name (a "
                             f"str), got {class_name!r}")
        processor_cls = (_public_of_kind(class_name, "image processor", "image_processor_type",
                                         f"preprocessor_config.json of {name!r}") if class_name else None)
        if processor_cls is None:
            raise ValueError(f"no image processor is known for {name!r}"
                             + (f" (it names {class_name!r}, which polyformer does not provide)" if class_name else
                                ": its preprocessor_config.json names none (image_processor_type) and it has no "
                                "config.json model_type of a vision family"))
        return processor_cls.from_pretrained(name, **kwargs)


class AutoProcessor:
    """`AutoProcessor.from_pretrained(name)`: the processor class that the folder's files name
    (`processor_class` in processor_config.json, preprocessor_config.json or tokenizer_config.json), else
    the family's processor from config.json's model_type (GroupViT: CLIPProcessor, IDEFICS: IdeficsProcessor).
    A text-only model gets its tokenizer (AutoTokenizer), as in the reference. A folder holding only
    preprocessor_config.json gets its image processor (the reference documents this fallback but raises
    OSError for want of a config.json)."""

    def __init__(self):
        raise EnvironmentError("AutoProcessor is not instantiated; use AutoProcessor.from_pretrained(...)")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs: Any):
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = {k: kwargs[k] for k in pop_hub_kwargs(dict(kwargs))}
        class_name = None
        source = None
        for filename in ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json"):
            class_name = _json_value(name, filename, "processor_class", hub_kwargs)
            if class_name is not None:
                source = f"{filename} of {name!r}"
                if not isinstance(class_name, str):
                    raise ValueError(f"{source}: processor_class must be a class name (a str), got {class_name!r}")
                break
        if class_name is None:
            model_type = _model_type(name, hub_kwargs)
            class_name = FAMILIES[model_type].processor if model_type in FAMILIES else None
        if class_name is not None:
            processor_cls = _public_of_kind(class_name, "processor", "processor_class", source or repr(name))
            if processor_cls is None:
                raise ValueError(f"{name!r} names processor class {class_name!r}, which polyformer does not provide")
            return processor_cls.from_pretrained(name, **kwargs)
        if resolve_file(name, "preprocessor_config.json", required=False, **hub_kwargs) is not None:
            return AutoImageProcessor.from_pretrained(name, **kwargs)
        return AutoTokenizer.from_pretrained(name, **kwargs)
