"""ONNX export (`polyformer export onnx MODEL OUT_DIR`): a task's model traced by `torch.onnx.export`.

Each task names the Auto class loaded and the graph's inputs and outputs; batch and sequence axes are
dynamic (named "batch", "sequence", "past_sequence", "num_choices"), so onnxruntime runs any size:

    feature-extraction      input_ids, attention_mask -> last_hidden_state
    fill-mask / text-classification / token-classification -> logits
    question-answering      -> start_logits, end_logits
    multiple-choice         input_ids, attention_mask (batch, num_choices, sequence) -> logits
    text-generation         input_ids, attention_mask, position_ids -> logits
    text-generation-with-past   also past_key_values.{i}.key / .value (batch, kv heads, past_sequence, head dim)
                            -> logits, present.{i}.key / .value (past_sequence + sequence)
    GroupViT (any task)     text_model.onnx: input_ids, attention_mask -> text_embeds (get_text_features);
                            vision_model.onnx: pixel_values -> image_embeds (get_image_features)

The model is loaded with eager attention (what the tracer follows through), and the data-dependent
shortcuts of the masks are off while tracing. CANINE's local attention windows are laid out from the
sequence length in Python, so its sequence axis is fixed at export (`sequence_length`, pad to it).
OUT_DIR also gets config.json and the tokenizer / image processor files, so it loads like a model folder.
"""

from __future__ import annotations

import functools
import logging
import os
import warnings
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 17
TASKS = {
    "feature-extraction": ("AutoModel", ["last_hidden_state"]),
    "fill-mask": ("AutoModelForMaskedLM", ["logits"]),
    "text-classification": ("AutoModelForSequenceClassification", ["logits"]),
    "token-classification": ("AutoModelForTokenClassification", ["logits"]),
    "question-answering": ("AutoModelForQuestionAnswering", ["start_logits", "end_logits"]),
    "multiple-choice": ("AutoModelForMultipleChoice", ["logits"]),
    "text-generation": ("AutoModelForCausalLM", ["logits"]),
    "text-generation-with-past": ("AutoModelForCausalLM", ["logits"]),
}
# the task of a checkpoint's architecture, by the class name's ending
_ARCHITECTURE_TASKS = (("ForMaskedLM", "fill-mask"), ("ForSequenceClassification", "text-classification"),
                       ("ForTokenClassification", "token-classification"), ("ForQuestionAnswering", "question-answering"),
                       ("ForMultipleChoice", "multiple-choice"), ("ForCausalLM", "text-generation-with-past"),
                       ("Model", "feature-extraction"))
FIXED_SEQUENCE_MODELS = ("canine",)  # model_types whose traced graph holds the sequence length


def infer_task(config) -> str:
    """The task of the checkpoint's first architecture (feature-extraction for a bare model)."""
    name = (config.architectures or [""])[0]
    return next((task for ending, task in _ARCHITECTURE_TASKS if name.endswith(ending)), "feature-extraction")


def export_onnx(model: Union[str, os.PathLike], output_dir: Union[str, os.PathLike], task: Optional[str] = None, *,
                opset: int = DEFAULT_OPSET, sequence_length: int = 128, **hub_kwargs) -> List[Path]:
    """Export the checkpoint `model` (folder or Hub id) for `task` (default: from its architecture) into
    `output_dir`; returns the .onnx files written (model.onnx; GroupViT: text_model.onnx, vision_model.onnx)."""
    import torch

    from . import auto
    from .configuration import PretrainedConfig

    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    if not isinstance(opset, int) or not 14 <= opset <= 20:
        raise ValueError(f"opset must be an int from 14 to 20, got {opset!r}")
    name = os.fspath(model)
    config = auto.AutoConfig.from_pretrained(name, **hub_kwargs)
    task = task or infer_task(config)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.model_type == "groupvit":
        model = auto.AutoModel.from_pretrained(name, attn_implementation="eager", **hub_kwargs).eval()
        graphs = _groupvit_graphs(model)
    else:
        class_name, outputs = TASKS[task]
        model = getattr(auto, class_name).from_pretrained(name, attn_implementation="eager", **hub_kwargs).eval()
        fixed = config.model_type in FIXED_SEQUENCE_MODELS
        length = min(sequence_length, getattr(config, "max_position_embeddings", sequence_length)) if fixed else 8
        graphs = [("model.onnx",) + _task_graph(model, task, outputs, length, fixed)]
    written = []
    for filename, module, args, input_names, output_names, axes in graphs:
        path = out / filename
        logger.info("exporting %s (%s) to %s, opset %d", type(model).__name__, task, path, opset)
        with torch.no_grad(), warnings.catch_warnings():
            # the tracer warns at each Python branch on a tensor: the input checks, and the shortcuts that
            # tracing turns off (masks.py); the tests run the graphs at other sizes than the traced ones
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                              dynamic_axes=axes, opset_version=opset, do_constant_folding=True, dynamo=False)
        written.append(path)
    model.config.save_pretrained(out)
    _save_preprocessors(name, out, hub_kwargs)
    return written


# --- graphs --------------------------------------------------------------------------------------------------

def _task_graph(model, task: str, outputs: List[str], length: int, fixed_sequence: bool):
    """(module, example inputs, input names, output names, dynamic axes) of one task's graph."""
    import torch

    batch = {0: "batch"}
    seq = {} if fixed_sequence else {1: "sequence"}
    ids = torch.randint(5, min(getattr(model.config, "vocab_size", 100), 100), (2, length))
    mask = torch.ones_like(ids)
    mask[1, length // 2:] = 0  # a padded row, so the traced graph applies the mask
    if task.startswith("text-generation"):
        return _decoder_graph(model, ids, mask, with_past=task.endswith("with-past"))
    if task == "multiple-choice":
        ids, mask = ids[:, None].expand(2, 3, length).contiguous(), mask[:, None].expand(2, 3, length).contiguous()
        axes = {0: "batch", 1: "num_choices", **({} if fixed_sequence else {2: "sequence"})}
        return _Wrapped(model, outputs), (ids, mask), ["input_ids", "attention_mask"], outputs, \
            {"input_ids": axes, "attention_mask": axes, "logits": {0: "batch", 1: "num_choices"}}
    axes = {"input_ids": {**batch, **seq}, "attention_mask": {**batch, **seq}}
    per_token = task in ("feature-extraction", "token-classification", "fill-mask", "question-answering")
    axes.update({o: {**batch, **seq} if per_token else dict(batch) for o in outputs})
    return _Wrapped(model, outputs), (ids, mask), ["input_ids", "attention_mask"], outputs, axes


@functools.lru_cache(maxsize=None)
def _module():
    import torch

    class Wrapped(torch.nn.Module):
        """model(input_ids, attention_mask, ...) -> the named output fields, as a tuple."""

        def __init__(self, model, outputs: Sequence[str], method: Optional[str] = None, names=("input_ids", "attention_mask")):
            super().__init__()
            self.model, self.outputs, self.method, self.names = model, list(outputs), method, names

        def forward(self, *args):
            call = getattr(self.model, self.method) if self.method else self.model
            result = call(**dict(zip(self.names, args)), **({} if self.method else {"return_dict": True}))
            if self.method:
                return result
            return tuple(getattr(result, o) for o in self.outputs)

    class Decoder(torch.nn.Module):
        """(input_ids, attention_mask, position_ids, *past k/v) -> (logits, *present k/v)."""

        def __init__(self, model, with_past: bool):
            super().__init__()
            self.model, self.with_past = model, with_past

        def forward(self, input_ids, attention_mask, position_ids, *past):
            past_key_values = tuple((past[2 * i], past[2 * i + 1]) for i in range(len(past) // 2)) if past else None
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             past_key_values=past_key_values, use_cache=self.with_past, return_dict=True)
            if not self.with_past:
                return out.logits
            return (out.logits,) + tuple(t for layer in out.past_key_values for t in layer[:2])

    return Wrapped, Decoder


def _Wrapped(model, outputs, method=None, names=("input_ids", "attention_mask")):
    return _module()[0](model, outputs, method, names)


def _decoder_graph(model, ids, mask, with_past: bool):
    import torch

    decoder = _module()[1](model, with_past)
    inputs = ["input_ids", "attention_mask", "position_ids"]
    axes = {n: {0: "batch", 1: "sequence"} for n in inputs}
    axes["logits"] = {0: "batch", 1: "sequence"}
    mask = torch.ones_like(ids)
    mask[1, :2] = 0  # left padding, as generate() pads
    if not with_past:
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return decoder, (ids, mask, positions), inputs, ["logits"], axes
    layers = model.config.num_hidden_layers
    past_length = 3
    with torch.no_grad():  # the past of a real prefix, so the traced values are plausible
        prefix = model(input_ids=ids[:, :past_length], use_cache=True, return_dict=True).past_key_values
    past = [t for layer in prefix for t in layer[:2]]
    full_mask = torch.ones(ids.shape[0], past_length + ids.shape[1], dtype=torch.long)
    full_mask[1, :2] = 0
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)[:, past_length:]
    names = [f"{kind}.{i}.{kv}" for i in range(layers) for kind, kv in
             [("past_key_values", "key"), ("past_key_values", "value")]]
    presents = [f"present.{i}.{kv}" for i in range(layers) for kv in ("key", "value")]
    axes["attention_mask"] = {0: "batch", 1: "past_sequence + sequence"}
    axes.update({n: {0: "batch", 2: "past_sequence"} for n in names})
    axes.update({n: {0: "batch", 2: "past_sequence + sequence"} for n in presents})
    return decoder, (ids, full_mask, positions, *past), inputs + names, ["logits"] + presents, axes


def _groupvit_graphs(model) -> List[Tuple]:
    import torch

    vision = model.config.vision_config
    ids = torch.randint(5, min(model.config.text_config.vocab_size, 100), (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 4:] = 0
    pixels = torch.randn(2, vision.num_channels, vision.image_size, vision.image_size)
    text = _Wrapped(model, ["text_embeds"], "get_text_features")
    image = _Wrapped(model, ["image_embeds"], "get_image_features", names=("pixel_values",))
    seq = {0: "batch", 1: "sequence"}
    return [("text_model.onnx", text, (ids, mask), ["input_ids", "attention_mask"], ["text_embeds"],
             {"input_ids": seq, "attention_mask": seq, "text_embeds": {0: "batch"}}),
            ("vision_model.onnx", image, (pixels,), ["pixel_values"], ["image_embeds"],
             {"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})]


def _save_preprocessors(name: str, out: Path, hub_kwargs: Dict) -> None:
    """The tokenizer and image processor files beside the graph, where the checkpoint has them."""
    from . import auto

    for cls in (auto.AutoTokenizer, auto.AutoImageProcessor):
        try:
            part = cls.from_pretrained(name, **hub_kwargs)
        except (OSError, ValueError, KeyError) as error:
            logger.info("no %s saved with the ONNX graph: %s", cls.__name__, error)
            continue
        part.save_pretrained(out)
