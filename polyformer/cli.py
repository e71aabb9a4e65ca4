"""The `polyformer` command line.

    polyformer convert bert-to-distilbert SRC DST [--layers 0,2,4] [--overwrite]
    polyformer convert llama-meta INPUT_DIR OUTPUT_DIR --model-size 7B [--dtype D --overwrite]
    polyformer demo [--model DIR] [--query TEXT ...] [--top-k K]
    polyformer export onnx MODEL OUT_DIR [--task TASK] [--opset N]
    polyformer distill TEACHER STUDENT_OUT --data FILE ... [--layers 0,2,4 | --student-layers N] [--max-steps N ...]
    polyformer generate MODEL PROMPT [--max-new-tokens N --temperature T --top-p P --num-beams B --infill]
    polyformer run TASK MODEL [INPUT ...] [--batch-size N --device D --opt KEY=VALUE ... --stream]

Each subcommand is a `_add_<name>(subparsers, common)` function that registers its arguments (`common`
holds the options every command takes, such as --quiet) and the function
that runs it (`args.run(args) -> exit status`). Heavy imports (torch, the models) happen inside those
functions, so `polyformer --help` stays instant.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Sequence

logger = logging.getLogger(__name__)

DEMO_MODEL = Path(".cache") / "distilbert-all-MiniLM-L6-v2"  # what `make demo` builds
DEMO_CORPUS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
    "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.",
    "A cheetah is running behind its prey.",
]
DEMO_QUERIES = [
    "A man is eating pasta.",
    "Someone in a gorilla costume is playing a set of drums.",
    "A cheetah chases prey on across a field.",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed, 2 bad usage)."""
    parser = argparse.ArgumentParser(prog="polyformer", description="polyformer command line tools")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND", required=True)
    common = argparse.ArgumentParser(add_help=False)  # options every command also takes after its name
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="log warnings and errors only")
    _add_convert(commands, common)
    _add_demo(commands, common)
    _add_export(commands, common)
    _add_distill(commands, common)
    _add_generate(commands, common)
    _add_run(commands, common)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s %(message)s")
    try:
        return args.run(args)
    except (OSError, ValueError) as e:  # bad input files or arguments: one clear line, no traceback
        print(f"polyformer {args.command}: error: {e}", file=sys.stderr)
        return 1


# --- convert -------------------------------------------------------------------------------------------

def _add_convert(commands, common: argparse.ArgumentParser) -> None:
    convert = commands.add_parser("convert", help="convert a checkpoint folder into another family's format")
    kinds = convert.add_subparsers(title="conversions", dest="conversion", metavar="CONVERSION", required=True)
    bert = kinds.add_parser(
        "bert-to-distilbert", parents=[common], help="initialise a DistilBERT from BERT layers (the DistilBERT paper's student)",
        description="Write a DistilBERT checkpoint folder DST from the BERT checkpoint folder SRC: the chosen "
                    "teacher layers, token-type embedding 0 folded into the position embeddings, no pooler "
                    "or heads, plus the tokenizer files.")
    bert.add_argument("src", type=Path, metavar="SRC", help="BERT checkpoint folder (config.json + weights)")
    bert.add_argument("dst", type=Path, metavar="DST", help="DistilBERT folder to create")
    bert.add_argument("--layers", metavar="I,J,...", help="teacher layers to keep, in order (default: all), "
                                                          "e.g. 0,2,4")
    bert.add_argument("--overwrite", action="store_true", help="replace DST if it exists")
    bert.set_defaults(run=_run_bert_to_distilbert)
    _add_llama_meta(kinds, common)


def _run_bert_to_distilbert(args) -> int:
    from polyformer.models.distilbert.convert_bert import convert_bert_to_distilbert, parse_layers

    layers = None if args.layers is None else parse_layers(args.layers)
    dst = convert_bert_to_distilbert(args.src, args.dst, layers, overwrite=args.overwrite,
                                     progress=False if args.quiet else None)
    print(dst)
    return 0


def _add_llama_meta(kinds, common: argparse.ArgumentParser) -> None:
    from polyformer.models.llama.convert_meta import DTYPES, NUM_SHARDS  # plain tables (no torch import)

    meta = kinds.add_parser(
        "llama-meta", parents=[common], help="Meta's LLaMA / Llama 2 / Code Llama release -> a Llama folder",
        description="Write a transformers-layout Llama folder OUTPUT_DIR (config.json, generation_config.json, "
                    "weights, tokenizer files) from Meta's release in INPUT_DIR: params.json and "
                    "consolidated.NN.pth in INPUT_DIR or INPUT_DIR/MODEL_SIZE, tokenizer.model beside them. "
                    "The model-parallel shards are merged and the query/key rows reordered for transformers' "
                    "rotary embedding; rope_theta > 10000 (Code Llama) gives 16384 positions and Code Llama "
                    "tokenizer files.")
    meta.add_argument("input_dir", type=Path, metavar="INPUT_DIR", help="Meta's release folder")
    meta.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR", help="Llama folder to create")
    meta.add_argument("--model-size", required=True, choices=sorted(NUM_SHARDS), help="the release's size (it "
                      "fixes the number of consolidated files; 'f': Llama 2 chat)")
    meta.add_argument("--dtype", default="bfloat16", choices=DTYPES,
                      help="dtype of the written weights (default: %(default)s, as transformers' script)")
    meta.add_argument("--max-shard-size", default="5GB", help="largest weight file (default: %(default)s)")
    meta.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists")
    meta.set_defaults(run=_run_llama_meta)


def _run_llama_meta(args) -> int:
    from polyformer.models.llama.convert_meta import convert_llama_meta

    out = convert_llama_meta(args.input_dir, args.output_dir, args.model_size, dtype=args.dtype,
                             max_shard_size=args.max_shard_size, overwrite=args.overwrite,
                             progress=False if args.quiet else None)
    print(out)
    return 0


# --- export --------------------------------------------------------------------------------------------

def _add_export(commands, common: argparse.ArgumentParser) -> None:
    from polyformer.onnx_export import DEFAULT_OPSET, TASKS  # plain tables (no torch import)

    export = commands.add_parser("export", help="export a model for another runtime")
    formats = export.add_subparsers(title="formats", dest="format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx", parents=[common], help="an ONNX graph (torch.onnx.export) that onnxruntime runs",
        description="Trace MODEL's task model into OUT_DIR/model.onnx (GroupViT: text_model.onnx and "
                    "vision_model.onnx) with dynamic batch and sequence axes, and save config.json and the "
                    "tokenizer / image processor files beside it. Decoders: text-generation-with-past (the "
                    "default for a causal LM) takes and returns the key/value cache.")
    onnx.add_argument("model", metavar="MODEL", help="model folder or Hub id")
    onnx.add_argument("output_dir", type=Path, metavar="OUT_DIR", help="folder for the graph (created if needed)")
    onnx.add_argument("--task", choices=sorted(TASKS), help="default: from the checkpoint's architecture")
    onnx.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default: %(default)s)")
    onnx.add_argument("--sequence-length", type=int, default=128,
                      help="CANINE only: the fixed sequence length of its graph (default: %(default)s)")
    onnx.set_defaults(run=_run_export_onnx)


def _run_export_onnx(args) -> int:
    from polyformer.onnx_export import export_onnx

    for path in export_onnx(args.model, args.output_dir, args.task, opset=args.opset,
                            sequence_length=args.sequence_length):
        print(path)
    return 0


# --- demo ----------------------------------------------------------------------------------------------

def _add_demo(commands, common: argparse.ArgumentParser) -> None:
    demo = commands.add_parser(
        "demo", parents=[common], help="sentence embeddings and semantic search with a DistilBERT folder",
        description="Embed a few sentences with DistilBertModel (attention-masked mean pooling, then L2 "
                    "normalisation, as sentence-transformers' all-MiniLM-L6-v2 does) and rank them against "
                    "each query by cosine similarity. `make demo` builds the default model: it fetches "
                    "all-MiniLM-L6-v2 and converts it with `polyformer convert bert-to-distilbert`.")
    demo.add_argument("--model", type=Path, default=DEMO_MODEL, help="DistilBERT folder (default: %(default)s)")
    demo.add_argument("--query", action="append", help="a query (repeatable; default: three examples)")
    demo.add_argument("--top-k", type=int, default=3, help="matches shown per query (default: %(default)s)")
    demo.set_defaults(run=_run_demo)


def mean_pool(last_hidden_state, attention_mask):
    """Mean of the attended token vectors, as sentence-transformers' Pooling(mean): (B, T, C) -> (B, C)."""
    import torch

    mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)  # (B, T, 1)
    return (last_hidden_state * mask).sum(1) / torch.clamp(mask.sum(1), min=1e-9)


def sentence_embeddings(model, tokenizer, texts: Sequence[str], normalize: bool = True):
    """all-MiniLM-L6-v2's sentence embeddings: model -> mean_pool -> L2 normalisation. Returns (N, C)."""
    import torch

    batch = tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    pooled = mean_pool(hidden, batch["attention_mask"])
    return torch.nn.functional.normalize(pooled, p=2, dim=1) if normalize else pooled


def _run_demo(args) -> int:
    if not (args.model / "config.json").is_file():
        print(f"polyformer demo: no model in {args.model}. Build the default one with `make demo`, or:\n"
              "  python scripts/fetch_minilm.py\n"
              f"  python -m polyformer convert bert-to-distilbert .cache/all-MiniLM-L6-v2 {DEMO_MODEL}\n"
              f"  python -m polyformer demo --model {DEMO_MODEL}", file=sys.stderr)
        return 1
    from polyformer import AutoTokenizer, DistilBertModel

    tokenizer = AutoTokenizer.from_pretrained(str(args.model))
    model = DistilBertModel.from_pretrained(str(args.model)).eval()
    queries = args.query or DEMO_QUERIES
    corpus = sentence_embeddings(model, tokenizer, DEMO_CORPUS)  # (N, C), unit rows
    scores = sentence_embeddings(model, tokenizer, queries) @ corpus.T  # (Q, N) cosine similarities
    config = model.config
    print(f"{args.model}: DistilBertModel, {config.n_layers} layers, dim {config.dim}; "
          f"{len(DEMO_CORPUS)} sentences embedded")
    for query, row in zip(queries, scores):
        print(f"\nquery: {query}")
        top = row.topk(min(args.top_k, len(DEMO_CORPUS)))
        for score, index in zip(top.values.tolist(), top.indices.tolist()):
            print(f"  {score:.4f}  {DEMO_CORPUS[index]}")
    return 0


# --- distill -------------------------------------------------------------------------------------------

def _add_distill(commands, common) -> None:
    from polyformer.distillation.cli import add_distill  # argparse only: torch is imported when it runs

    add_distill(commands, common)


# --- run -----------------------------------------------------------------------------------------------

def _add_run(commands, common) -> None:
    from polyformer.pipelines.cli import add_run  # argparse only: no framework is imported

    add_run(commands, common)


# --- generate ------------------------------------------------------------------------------------------

def _add_generate(commands, common) -> None:
    gen = commands.add_parser(
        "generate", parents=[common], help="generate text with a causal LM (CodeGen, GPT-J, Llama, ...)",
        description="Load MODEL (a folder or Hub id) with AutoModelForCausalLM and its tokenizer, continue PROMPT "
                    "and stream the new tokens as they come. With --infill, PROMPT holds <FILL_ME> and a Code "
                    "Llama tokenizer builds the infilling prompt; the filled-in text is printed at the end.")
    gen.add_argument("model", metavar="MODEL", help="model folder or Hub id")
    gen.add_argument("prompt", metavar="PROMPT", help="the text to continue")
    gen.add_argument("--max-new-tokens", type=int, default=64, help="tokens to generate (default: %(default)s)")
    gen.add_argument("--temperature", type=float, help="sample with this temperature (default: greedy)")
    gen.add_argument("--top-p", type=float, help="nucleus sampling threshold in (0, 1]")
    gen.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    gen.add_argument("--num-beams", type=int, default=1, help="beam search width (default: %(default)s)")
    gen.add_argument("--seed", type=int, default=0, help="random seed for sampling (default: %(default)s)")
    gen.add_argument("--infill", action="store_true", help="fill in <FILL_ME> in PROMPT (Code Llama)")
    gen.add_argument("--dtype", default="auto", help="torch dtype to load in: auto, float32, bfloat16, float16")
    gen.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    import torch

    from polyformer import AutoModelForCausalLM, AutoTokenizer, TextStreamer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=args.dtype)
    if args.infill and "<FILL_ME>" not in args.prompt:
        raise ValueError("--infill needs a PROMPT containing <FILL_ME>")
    inputs = tokenizer(args.prompt, return_tensors="pt")
    sampling = args.temperature is not None or args.top_p is not None or args.top_k is not None
    kwargs = dict(max_new_tokens=args.max_new_tokens, num_beams=args.num_beams, do_sample=sampling)
    kwargs.update({k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p),
                                     ("top_k", args.top_k)) if v is not None})
    if args.infill and getattr(tokenizer, "eot_id", None) is not None:
        eos = model.generation_config.eos_token_id
        kwargs["eos_token_id"] = [*(eos if isinstance(eos, list) else [eos] if eos is not None else []), tokenizer.eot_id]
    if args.num_beams == 1:  # beams are only known at the end
        kwargs["streamer"] = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        output = model.generate(**inputs, **kwargs)
    new_text = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    if args.num_beams > 1:
        print(new_text)
    if args.infill:
        print("\n--- filled in ---\n" + args.prompt.replace("<FILL_ME>", new_text))
    return 0
