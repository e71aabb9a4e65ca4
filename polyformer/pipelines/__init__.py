"""`pipeline(task, model=...)`: a ready-to-call task pipeline, as transformers 4.37's factory.

`TASKS` lists every task polyformer's model families serve: the module and class implementing it
(imported only when used), the Auto model classes that load a model for it, the model classes that can
serve it, and 4.37's default Hub model. `TASK_ALIASES` maps 4.37's alternative names.

PyTorch models serve every task; TensorFlow models (framework="tf", or a TF model object) serve the tasks
whose TF classes exist: DistilBERT's fill-mask, text-classification, token-classification,
question-answering, zero-shot-classification and feature-extraction, GPT-J's text-generation (and its
classification / QA heads), GroupViT's zero-shot-image-classification. TensorFlow is imported only then.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    module: str  # module under polyformer.pipelines
    impl: str  # pipeline class name in that module
    auto: Tuple[str, ...]  # polyformer Auto classes tried in order to load a model by name
    serves: Optional[Tuple[str, ...]]  # model class-name endings that serve the task (None: any model)
    default: Optional[str] = None  # 4.37's default Hub model when `model` is left out
    type: str = "text"  # "text", "image" or "multimodal": which preprocessors the task loads


TASKS: Dict[str, Task] = {
    "feature-extraction": Task(".feature_extraction", "FeatureExtractionPipeline", ("AutoModel",), None,
                               "distilbert-base-cased", "multimodal"),
    "text-classification": Task(".text_classification", "TextClassificationPipeline",
                                ("AutoModelForSequenceClassification",), ("ForSequenceClassification",),
                                "distilbert-base-uncased-finetuned-sst-2-english"),
    "token-classification": Task(".token_classification", "TokenClassificationPipeline",
                                 ("AutoModelForTokenClassification",), ("ForTokenClassification",),
                                 "dbmdz/bert-large-cased-finetuned-conll03-english"),
    "question-answering": Task(".question_answering", "QuestionAnsweringPipeline",
                               ("AutoModelForQuestionAnswering",), ("ForQuestionAnswering",),
                               "distilbert-base-cased-distilled-squad"),
    "fill-mask": Task(".fill_mask", "FillMaskPipeline", ("AutoModelForMaskedLM",), ("ForMaskedLM",),
                      "distilroberta-base"),
    "summarization": Task(".text2text_generation", "SummarizationPipeline", ("AutoModelForSeq2SeqLM",),
                          ("ForConditionalGeneration",), "sshleifer/distilbart-cnn-12-6"),
    "text2text-generation": Task(".text2text_generation", "Text2TextGenerationPipeline", ("AutoModelForSeq2SeqLM",),
                                 ("ForConditionalGeneration",), "t5-base"),
    "text-generation": Task(".text_generation", "TextGenerationPipeline", ("AutoModelForCausalLM",),
                            ("ForCausalLM",), "gpt2"),
    "zero-shot-classification": Task(".zero_shot_classification", "ZeroShotClassificationPipeline",
                                     ("AutoModelForSequenceClassification",), ("ForSequenceClassification",),
                                     "facebook/bart-large-mnli"),
    "zero-shot-image-classification": Task(".zero_shot_image_classification", "ZeroShotImageClassificationPipeline",
                                           ("AutoModel",), ("GroupViTModel", "CLIPModel"),
                                           "openai/clip-vit-base-patch32", "multimodal"),
}
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}

# where each public pipeline name lives (module under this package)
_EXPORTS = {
    "Pipeline": ".base", "ChunkPipeline": ".base", "PipelineException": ".base", "pad_collate": ".base",
    "ReturnType": ".text_generation", "TextGenerationPipeline": ".text_generation",
    "Text2TextGenerationPipeline": ".text2text_generation", "SummarizationPipeline": ".text2text_generation",
    "FeatureExtractionPipeline": ".feature_extraction",
    "TokenClassificationPipeline": ".token_classification", "AggregationStrategy": ".token_classification",
    "QuestionAnsweringPipeline": ".question_answering", "SquadExample": ".question_answering",
    "QuestionAnsweringArgumentHandler": ".question_answering",
    "FillMaskPipeline": ".fill_mask", "TextClassificationPipeline": ".text_classification",
    "ZeroShotClassificationPipeline": ".zero_shot_classification",
    "ZeroShotImageClassificationPipeline": ".zero_shot_image_classification",
}

_MODEL_ONLY_KWARGS = ("torch_dtype", "device_map", "quantization_config", "attn_implementation", "low_cpu_mem_usage",
                      "load_in_8bit", "load_in_4bit", "max_memory", "offload_folder", "use_safetensors")


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)


def get_supported_tasks() -> List[str]:
    """Every task name `pipeline` accepts, aliases included, sorted."""
    return sorted([*TASKS, *TASK_ALIASES])


def check_task(task: str) -> Tuple[str, Task, None]:
    """(normalised task name, its Task, None): aliases resolved.

    Raises:
        KeyError: `task` is not a known task (the message lists the known ones), as the reference.
    """
    if not isinstance(task, str):
        raise ValueError(f"task must be a string such as 'text-generation'; got {task!r}")
    name = TASK_ALIASES.get(task, task)
    if name in TASKS:
        return name, TASKS[name], None
    raise KeyError(f"Unknown task {task}, available tasks are {get_supported_tasks()}")


def _task_entry(task: str) -> Tuple[str, Task]:
    try:
        name, entry, _ = check_task(task)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    return name, entry


def _pipeline_class(entry: Task) -> type:
    return getattr(importlib.import_module(entry.module, __name__), entry.impl)


def _serves(entry: Task, model_class: type) -> bool:
    return entry.serves is None or model_class.__name__.endswith(entry.serves)


_ARCHITECTURE_TASKS = (  # class-name ending -> task, for a task left out (first match wins)
    ("ForCausalLM", "text-generation"), ("ForConditionalGeneration", "text2text-generation"),
    ("ForMaskedLM", "fill-mask"), ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"), ("ForQuestionAnswering", "question-answering"),
    ("GroupViTModel", "zero-shot-image-classification"), ("Model", "feature-extraction"),
)


def _task_of_class(class_name: str) -> Optional[str]:
    for ending, task in _ARCHITECTURE_TASKS:
        if class_name.removeprefix("TF").removeprefix("Flax").endswith(ending):
            return task
    return None


def infer_task(model: Any, config: Any = None, token: Any = None) -> str:
    """The task for `model` when `pipeline` is given none.

    A Hub id asks the Hub for the repo's `pipeline_tag` (as transformers 4.37 does). A local folder or a
    model object (which 4.37 refuses) is read from its class / config.json's `architectures` instead.

    Raises:
        RuntimeError: no task can be inferred.
    """
    if isinstance(model, str):
        if not os.path.isdir(model) and config is None:
            try:
                from huggingface_hub import model_info

                tag = model_info(model, token=token).pipeline_tag
            except Exception as e:  # offline, unknown repo, ...
                raise RuntimeError(f"Instantiating a pipeline without a task set raised an error: {e}") from e
            if tag is None:
                raise RuntimeError(f"The model {model} does not seem to have a correct `pipeline_tag` set to infer the "
                                   "task automatically; pass the task")
            return tag
        names = list(getattr(config, "architectures", None) or [])
    else:
        names = [type(model).__name__]
    for name in names:
        task = _task_of_class(name)
        if task is not None:
            return task
    raise RuntimeError(f"cannot infer the task of {model!r} (its architectures: {names}); pass the task, one of "
                       f"{get_supported_tasks()}")


def _load_model(name: str, entry: Task, task: str, config: Any, hub_kwargs: Dict[str, Any],
                model_kwargs: Dict[str, Any], framework: str = "pt"):
    """Load `name` with the task's Auto classes (their TF ones for framework "tf"), else with a class its
    config's `architectures` names that serves the task (as 4.37 tries both)."""
    import polyformer

    prefix = "TF" if framework == "tf" else ""
    errors = []
    for auto_name in entry.auto:
        auto_name = prefix + auto_name
        auto_cls = getattr(polyformer, auto_name, None)
        if auto_cls is None:
            errors.append(f"polyformer has no {auto_name}")
            continue
        try:
            model_cls = auto_cls.model_class(config)
        except ValueError as e:
            errors.append(str(e))
            continue
        if _serves(entry, model_cls):
            return model_cls.from_pretrained(name, config=config, **hub_kwargs, **model_kwargs)
        errors.append(f"{auto_name} gives {model_cls.__name__}")
    for arch in getattr(config, "architectures", None) or []:
        if arch.startswith(("TF", "Flax")):
            continue
        model_cls = getattr(polyformer, prefix + arch, None)
        if model_cls is not None and _serves(entry, model_cls):
            return model_cls.from_pretrained(name, config=config, **hub_kwargs, **model_kwargs)
    kind = "TensorFlow class" if framework == "tf" else "class"
    raise ValueError(f"model {name!r} (model_type {getattr(config, 'model_type', None)!r}) cannot serve the task "
                     f"{task!r} with framework={framework!r}: polyformer has no {kind} of that family for it "
                     f"({'; '.join(errors)})")


def pipeline(task: Optional[str] = None, model: Any = None, config: Any = None, tokenizer: Any = None,
             feature_extractor: Any = None, image_processor: Any = None, framework: Optional[str] = None,
             revision: Optional[str] = None, use_fast: bool = True, token: Any = None, device: Any = None,
             device_map: Any = None, torch_dtype: Any = None, trust_remote_code: Optional[bool] = None,
             model_kwargs: Optional[Dict[str, Any]] = None, pipeline_class: Optional[type] = None, **kwargs: Any):
    """Build the pipeline for `task`, as transformers 4.37's `pipeline`.

    Args:
        task: a task name or alias (see `get_supported_tasks()`); None: inferred from the model.
        model: a folder, a Hub id or a loaded model; None: the task's default Hub model.
        config: a config (object, folder or Hub id) to load the model with.
        tokenizer: a tokenizer object, a name to load, or (name, kwargs); None: loaded from the model's
            name (required with a model object, for the tasks that need one).
        feature_extractor / image_processor: likewise, for the tasks that take images.
        framework: "pt" or "tf"; None: the model object's framework, PyTorch for a name. "tf" loads the
            task's TensorFlow class (TFAutoModelFor...), from tf_model.h5 or the PyTorch weights.
        revision / token: where to read a Hub model from.
        use_fast: load the fast tokenizer when there is one.
        device: an int (CUDA index; -1 CPU), a string ("cpu", "cuda:1") or a torch.device; for TensorFlow an
            int (GPU index; -1 CPU) or "cpu" / "gpu:N", as 4.37.
        device_map / torch_dtype: passed to the model's `from_pretrained` (and torch_dtype to the pipeline);
            PyTorch only.
        trust_remote_code: polyformer never runs code from a checkpoint; True is refused.
        model_kwargs: more keyword arguments for the model's `from_pretrained`.
        pipeline_class: a Pipeline subclass to build instead of the task's class.
        **kwargs: passed to the pipeline class (batch_size, task options such as max_new_tokens, ...).

    Raises:
        ValueError: an unknown task or framework, a model that cannot serve the task (in that framework),
            conflicting arguments.
        RuntimeError: neither task nor model; a tokenizer without a model; a task that cannot be inferred.
    """
    from ..configuration import PretrainedConfig

    from .frameworks import check_framework, check_framework_name

    check_framework_name(framework)
    if trust_remote_code:
        raise ValueError("trust_remote_code=True: polyformer never runs code from a checkpoint")
    model_kwargs = dict(model_kwargs or {})
    if "use_auth_token" in model_kwargs:
        if token is not None:
            raise ValueError("`token` and `use_auth_token` are both specified; pass only `token`")
        token = model_kwargs.pop("use_auth_token")
    if task is None and model is None:
        raise RuntimeError("Impossible to instantiate a pipeline without either a task or a model being specified. "
                           "Please provide a task class or a model")
    if model is None and (tokenizer is not None or feature_extractor is not None):
        raise RuntimeError("a tokenizer or feature_extractor was given without the model it belongs to: pass "
                           "`model` too")
    if task is not None:
        _task_entry(task)  # an unknown task fails before anything is loaded
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    hub_kwargs = {k: v for k, v in (("revision", revision), ("token", token)) if v is not None}
    for key in ("cache_dir", "local_files_only", "force_download", "subfolder"):
        if key in model_kwargs:
            hub_kwargs[key] = model_kwargs.pop(key)

    from ..auto import AutoConfig

    if isinstance(config, (str, os.PathLike)):
        config = AutoConfig.from_pretrained(config, **hub_kwargs)
    elif config is None and isinstance(model, str):
        config = AutoConfig.from_pretrained(model, **hub_kwargs)
    elif config is not None and not isinstance(config, PretrainedConfig):
        raise ValueError(f"config must be a PretrainedConfig, a folder or a Hub id; got {type(config).__name__}")

    if task is None:
        task = infer_task(model, config if isinstance(model, str) and os.path.isdir(model) else None, token)
    normalized_task, entry = _task_entry(task)
    if pipeline_class is None:
        pipeline_class = _pipeline_class(entry)

    if model is None:
        if entry.default is None:
            raise ValueError(f"task {normalized_task!r} has no default model: pass `model`")
        model = entry.default
        logger.warning("No model was supplied, defaulted to %s (https://huggingface.co/%s). Using a pipeline without "
                       "specifying a model name in production is not recommended.", model, model)
        if config is None:
            config = AutoConfig.from_pretrained(model, **hub_kwargs)

    if device_map is not None:
        if "device_map" in model_kwargs:
            raise ValueError("pass device_map either as pipeline(device_map=...) or in model_kwargs, not both")
        if device is not None:
            logger.warning("Both `device` and `device_map` are specified. `device` will override `device_map`. "
                           "Please remove `device` and keep `device_map`.")
        model_kwargs["device_map"] = device_map
    if torch_dtype is not None:
        if "torch_dtype" in model_kwargs:
            raise ValueError("pass torch_dtype either as pipeline(torch_dtype=...) or in model_kwargs, not both")
        model_kwargs["torch_dtype"] = torch_dtype

    model_name = model if isinstance(model, str) else None
    if isinstance(model, str):
        framework = framework or "pt"
        if framework == "tf":
            _check_tf_load_kwargs(model_kwargs)
        model = _load_model(model, entry, normalized_task, config, hub_kwargs, model_kwargs, framework)
    else:
        framework = check_framework(framework, model)
        if not _serves(entry, type(model)):
            raise ValueError(f"model {type(model).__name__} cannot serve the task {normalized_task!r}: it needs a "
                             f"model class ending in {' or '.join(entry.serves)}")
    model_config = model.config

    from ..auto import FAMILIES, AutoImageProcessor, AutoTokenizer

    family = FAMILIES.get(getattr(model_config, "model_type", None))
    load_tokenizer = entry.type != "image" and (family is None or family.tokenizer is not None
                                                or model_config.model_type == "gptj")
    load_image_processor = entry.type != "text" and (image_processor is not None or (
        family is not None and family.image_processor is not None))
    name_for_files = model_name or (config if isinstance(config, str) else None)

    if load_tokenizer:
        if tokenizer is None:
            if name_for_files is None:
                raise ValueError(f"the {normalized_task} pipeline needs a tokenizer: a model object was given, so pass "
                                 "`tokenizer` (a tokenizer object or the name to load it from)")
            tokenizer = name_for_files
        if isinstance(tokenizer, (str, os.PathLike, tuple)):
            if isinstance(tokenizer, tuple):
                identifier, tokenizer_kwargs = tokenizer[0], dict(tokenizer[1])
                use_fast = tokenizer_kwargs.pop("use_fast", use_fast)
            else:
                identifier = tokenizer
                tokenizer_kwargs = {k: v for k, v in model_kwargs.items() if k not in _MODEL_ONLY_KWARGS}
            tokenizer = AutoTokenizer.from_pretrained(identifier, use_fast=use_fast, **hub_kwargs, **tokenizer_kwargs)
    if load_image_processor:
        if image_processor is None:
            if name_for_files is not None:
                image_processor = name_for_files
            elif feature_extractor is not None and hasattr(feature_extractor, "preprocess"):
                image_processor = feature_extractor
            else:
                raise ValueError(f"the {normalized_task} pipeline needs an image processor: a model object was given, "
                                 "so pass `image_processor` (an object or the name to load it from)")
        if isinstance(image_processor, (str, os.PathLike)):
            image_processor = AutoImageProcessor.from_pretrained(image_processor, **hub_kwargs)

    if tokenizer is not None:
        kwargs["tokenizer"] = tokenizer
    if feature_extractor is not None:
        kwargs["feature_extractor"] = feature_extractor
    if image_processor is not None:
        kwargs["image_processor"] = image_processor
    if torch_dtype is not None:
        kwargs["torch_dtype"] = torch_dtype
    if device is not None:
        kwargs["device"] = device
    return pipeline_class(model=model, framework=framework, task=task, **kwargs)


def _check_tf_load_kwargs(model_kwargs: Dict[str, Any]) -> None:
    """TensorFlow models take none of PyTorch's loading options (dtype, device_map, quantization...)."""
    torch_only = sorted(k for k in model_kwargs if k in _MODEL_ONLY_KWARGS)
    if torch_only:
        raise ValueError(f"{', '.join(torch_only)}: PyTorch loading options, which a TensorFlow model "
                         "(framework='tf') does not take; leave them out")
