"""`polyformer run TASK MODEL [INPUT ...]`: run a pipeline from the command line.

Inputs come from the arguments, else from stdin, one per line (a line holding a JSON string is decoded,
so a prompt can carry newlines; a JSON object line becomes a dict input, e.g. question answering's
{"question": ..., "context": ...}). Each result is printed as one JSON line. Task options are given as
`--opt key=value`, the value read as JSON when it parses (5, true, null, [..], {..}, "..."), else as text.
With --stream a text-generation pipeline prints the new tokens as they come instead (one line per input).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, Iterator, List, Optional


def parse_option(text: str) -> tuple:
    """'key=value' -> (key, value): the value as JSON when it parses, else the text itself."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--opt expects key=value (e.g. max_new_tokens=20); got {text!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = {"True": True, "False": False, "None": None}.get(raw, raw)
    return key.strip().replace("-", "_"), value


def parse_input(text: str) -> Any:
    """One input line or argument: a JSON string or object is decoded, anything else is the text."""
    stripped = text.strip()
    if stripped[:1] in ('"', "{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            return text
        if isinstance(value, (str, dict)):
            return value
    return text


def _inputs(args_inputs: List[str], stdin) -> Iterator[Any]:
    if args_inputs:
        for text in args_inputs:
            yield parse_input(text)
        return
    for line in stdin:
        line = line.rstrip("\n")
        if line.strip():
            yield parse_input(line)


def to_jsonable(value: Any) -> Any:
    """Pipeline results with tensors / numpy values / enums turned into plain JSON values."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "value") and hasattr(value, "name"):  # an enum
        return value.value
    return value


def add_run(commands, common: argparse.ArgumentParser) -> None:
    run = commands.add_parser(
        "run", parents=[common], help="run a task pipeline (text-generation, fill-mask, ...) on inputs",
        description="Build pipeline(TASK, model=MODEL) and run it on each INPUT (or each stdin line), printing one "
                    "JSON line per result. A JSON string input is decoded (for prompts with newlines); a JSON object "
                    "input is passed as a dict.")
    run.add_argument("task", metavar="TASK", help="task name or alias (text-generation, summarization, ner, ...)")
    run.add_argument("model", metavar="MODEL", help="model folder or Hub id")
    run.add_argument("inputs", nargs="*", metavar="INPUT", help="inputs (default: one per stdin line)")
    run.add_argument("--batch-size", type=int, default=1, help="inputs per model call (default: %(default)s)")
    run.add_argument("--device", help="cpu, cuda, cuda:1 or a CUDA index (default: cpu)")
    run.add_argument("--dtype", help="torch dtype to load the model in: float32, bfloat16, float16, auto")
    run.add_argument("--framework", choices=("pt", "tf"), default=None,
                     help="pt (PyTorch, the default) or tf: run the model's TensorFlow class")
    run.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE",
                     help="a task option, e.g. --opt max_new_tokens=20 --opt return_full_text=false (repeatable)")
    run.add_argument("--stream", action="store_true",
                     help="text-generation: print the new tokens as they are generated instead of JSON")
    run.set_defaults(run=run_command)


def _device(text: Optional[str]) -> Any:
    if text is None:
        return None
    return int(text) if text.lstrip("-").isdigit() else text


def run_command(args, stdout=None, stdin=None) -> int:
    from . import TASK_ALIASES, pipeline

    stdout = stdout or sys.stdout
    stdin = stdin or sys.stdin
    options: Dict[str, Any] = dict(parse_option(text) for text in args.opt)
    task = TASK_ALIASES.get(args.task, args.task)
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.stream and task != "text-generation":
        raise ValueError(f"--stream is for text-generation; the task here is {task!r}")
    pipe = pipeline(args.task, model=args.model, device=_device(args.device), torch_dtype=args.dtype,
                    framework=getattr(args, "framework", None))
    inputs = _inputs(args.inputs, stdin)
    if args.stream:
        from ..generation.streamers import TextStreamer

        for text in inputs:
            streamer = TextStreamer(pipe.tokenizer, skip_prompt=True, skip_special_tokens=True)
            pipe(text, streamer=streamer, **options)  # TextStreamer prints, and ends with a newline
            stdout.flush()
        return 0
    if args.batch_size > 1 and pipe.tokenizer is not None and pipe.tokenizer.pad_token_id is None:
        pipe.tokenizer.pad_token = pipe.tokenizer.eos_token  # batching needs a pad token
        if task == "text-generation":
            pipe.tokenizer.padding_side = "left"
    for result in pipe(inputs, batch_size=args.batch_size, **options):
        print(json.dumps(to_jsonable(result), ensure_ascii=False), file=stdout, flush=True)
    return 0

