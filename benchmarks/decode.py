"""Greedy decoding on CPU, CodeGen-350M's shape: polyformer against transformers 5.23 and CTranslate2 4.8.5.

One run, the same random weights and the same prompts for every engine, next to the machine's memory-read
bandwidth measured in the same run; each engine is loaded and timed in a process of its own
(`EngineProcess`: two runtimes' thread pools in one process slow each other on 2 cores). Run it in the benchmark venv
(benchmarks/make_venv.sh builds .benchvenv/), alone on the machine:

    .benchvenv/bin/python benchmarks/decode.py [--reps 3] [--threads 2] [--new-tokens 128]
        [--engines transformers,ctranslate2,polyformer,polyformer-compiled,polyformer-packed,
                   polyformer-packed-compiled]
        [--dtypes float32,bfloat16,int8,int8-dynamic,int4] [--batches 1,8] [--int8-base bfloat16]

Weights: CodeGen-350M's shape (n_layer 20, n_embd 1024, n_head 16, rotary_dim 32, vocab 51200,
n_positions 2048), random, made and saved once by transformers' CodeGenForCausalLM.save_pretrained
(float32 safetensors) with a word-level tokenizer ("t0".."t51199", so CTranslate2's converter has a
vocabulary); every engine loads that folder:

- transformers: `CodeGenForCausalLM.from_pretrained(folder, dtype=...)`, its default settings, `generate`;
  int8: `quantization_config=TorchAoConfig(Int8WeightOnlyConfig())` (torchao; transformers 5 takes no
  string quant types), on `--int8-base` activations; int8-dynamic: `Int8DynamicActivationInt8WeightConfig()`
  on float32; int4: `Int4WeightOnlyConfig(group_size=128)` on bfloat16.
- ctranslate2: `TransformersConverter(folder).convert(out, quantization=...)`, then
  `Generator(out, device="cpu", compute_type=..., inter_threads=1, intra_threads=threads)` and
  `generate_batch` (greedy `sampling_topk=1`, `min_length = max_length = new tokens`,
  `include_prompt_in_result=False`); int8 and int8-dynamic are both `int8_float32` (int8 weights *and* int8
  dynamically quantized activations in the matmuls, float32 elsewhere, the output layer quantized too). A compute type the CPU
  does not support (CTranslate2 has no bfloat16 on CPU here) gives a row saying so.
- polyformer: `CodeGenForCausalLM.from_pretrained(folder, torch_dtype=...)`, `generate(...)`;
  "polyformer-compiled" is the same model with `generate(compile=True)` (compiled in its warm-up, whose
  time is reported); int8: `quantization_config=polyformer.TorchAoConfig("int8_weight_only")`;
  int8-dynamic: `TorchAoConfig("int8_dynamic_activation_int8_weight", modules_to_not_convert=[])` on
  float32, CTranslate2's int8 (the output layer quantized too; in the compiled step each FBGEMM product is
  one call out of the graph); int4: `TorchAoConfig("int4_weight_only", group_size=128)` on bfloat16 (CTranslate2 has no
  int4 on CPU: a row says so). "polyformer-packed" is another copy of the model with
  `polyformer.pack_linears_(model)` (linear weights in oneDNN's layout), eager; "polyformer-packed-compiled"
  the packed model with `generate(compile=True)` (each packed product one call out of the compiled graph);
  for int8 only the float lm_head is packed.

Inputs: batch 1 is one 32-token prompt; batch 8 is 8 different prompts of 32 down to 20 tokens,
left-padded with attention masks for the torch engines (CTranslate2 takes the unpadded token lists).
Every engine generates exactly `--new-tokens` tokens per row (min = max). `torch.set_num_threads(threads)`,
`torch.inference_mode()`. Per (dtype, batch): each engine is warmed up with a short generate, then the
repetitions are interleaved (every repetition runs every engine once, in a rotating order, with a short
pause between runs so that no runtime's spinning threads overlap the next one); the median time gives new
tokens per second (all rows, prompt time included). The generated ids of every row are compared with
polyformer eager float32's (random weights have near-ties, so bfloat16 / int8 may part from them:
reported, not asserted).

The decoding limit of a dtype is bandwidth / bytes of weights read per decoding step (all linear weights
and biases + lm_head; not the embedding gather, not the KV cache), times the batch (one pass over the
weights serves every row); each row gives its fraction of its own layout's limit.

Each timed run also records the share of the machine's CPUs that other processes used meanwhile
(/proc/stat less this process's own time: the "others' CPU" column; above 10% the report warns), since on
2 cores a busy neighbour skews the engines unevenly.

Compile times are cold: the engine processes share an inductor cache made fresh for the run (torch's
default cache, which keeps compiled kernels across runs, would make a rerun look faster than a user's first
call). Timings never go into the tests. Everything takes ~25 minutes on 2 cores (72 timed generates and six
compilations); the filters rerun parts, `--new-tokens 64` about halves it.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata as md
import logging
import multiprocessing
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from tqdm.auto import tqdm

logger = logging.getLogger("decode")

SHAPE = dict(n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=51200, n_positions=2048, n_ctx=2048,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)
PROMPT = 32
BATCH8_LENGTHS = [32, 30, 29, 27, 25, 23, 22, 20]  # 32 down to 20, about evenly spaced
ENGINES = ("transformers", "ctranslate2", "polyformer", "polyformer-compiled", "polyformer-packed",
           "polyformer-packed-compiled")
DTYPES = ("float32", "bfloat16", "int8", "int8-dynamic", "int4")
INT4_GROUP = 128
PAUSE_S = 0.3  # between timed runs: CTranslate2's OpenMP threads spin ~200 ms after a call
BUSY = 0.10  # other processes' share of the CPUs above which a timed run is flagged


# --- machine -------------------------------------------------------------------------------------------

def cpu_info() -> Dict[str, str]:
    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    wanted = ["avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"]
    present = [f for f in wanted if f in flags]
    absent = [f for f in wanted if f not in flags]
    return {"model": model, "flags": " ".join(present) + (f" (no {', '.join(absent)})" if absent else ""),
            "cores": str(os.cpu_count())}


def loadavg() -> str:
    with contextlib.suppress(OSError), open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
    return "?"


def read_bandwidth(gigabytes: float = 1.5, reps: int = 9) -> float:
    """Memory-read bandwidth in GB/s: median time of `buf.sum()` over a float32 buffer much larger than
    the caches, with torch's current thread count."""
    buf = torch.ones(int(gigabytes * 1e9) // 4, dtype=torch.float32)
    times = []
    with torch.inference_mode():
        for _ in range(reps + 1):
            start = time.perf_counter()
            buf.sum()
            times.append(time.perf_counter() - start)
    del buf
    return gigabytes / statistics.median(times[1:])


# --- bytes read per decoding step ------------------------------------------------------------------------

def linear_shapes() -> List[Tuple[int, int, bool]]:
    """(out, in, has_bias) of every linear layer in model order, lm_head last."""
    e, v = SHAPE["n_embd"], SHAPE["vocab_size"]
    layer = [(3 * e, e, False), (e, e, False), (4 * e, e, True), (e, 4 * e, True)]
    return layer * SHAPE["n_layer"] + [(v, e, True)]


def step_bytes(layout: str) -> int:
    """Bytes of weights read by one decoding step in a layout:
    float32 / bfloat16: every weight and bias in that dtype;
    int8-<base>: int8 weights + one scale per output channel + biases in <base>, lm_head in <base>
        (transformers/torchao and polyformer leave the output layer in floating point);
    int8-ct2: int8 weights + float32 scales and biases, lm_head int8 too (CTranslate2's int8_float32);
    int4-bfloat16: 4-bit weights + a bfloat16 scale and zero per group of INT4_GROUP inputs, biases and
        lm_head in bfloat16."""
    shapes, total = linear_shapes(), 0
    for index, (n, k, bias) in enumerate(shapes):
        head = index == len(shapes) - 1
        if layout in ("float32", "bfloat16"):
            size = torch.finfo(getattr(torch, layout)).bits // 8
            total += (n * k + (n if bias else 0)) * size
        elif layout == "int8-ct2":
            total += n * k + 4 * n + (4 * n if bias else 0)
        elif layout == "int4-bfloat16":
            total += (n * k + n) * 2 if head else n * k // 2 + 2 * 2 * n * (k // INT4_GROUP) + (2 * n if bias else 0)
        else:
            base = torch.finfo(getattr(torch, layout.split("-", 1)[1])).bits // 8
            total += (n * k + (n if bias else 0)) * base if head else n * k + base * n + (base * n if bias else 0)
    return total


# --- inputs ------------------------------------------------------------------------------------------------

@dataclass
class Inputs:
    batch: int
    rows: List[List[int]]  # unpadded prompts
    ids: torch.Tensor  # (B, T) left-padded with 0
    mask: torch.Tensor  # (B, T)


def make_inputs(batch: int, generator: torch.Generator) -> Inputs:
    lengths = [PROMPT] if batch == 1 else BATCH8_LENGTHS[:batch]
    if batch > len(BATCH8_LENGTHS):
        raise ValueError(f"batches above {len(BATCH8_LENGTHS)} are not set up")
    rows = [torch.randint(3, SHAPE["vocab_size"], (n,), generator=generator).tolist() for n in lengths]
    width = max(lengths)
    ids = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row)
        mask[i, width - len(row):] = 1
    return Inputs(batch, rows, ids, mask)


# --- engines ------------------------------------------------------------------------------------------------

@dataclass
class Engine:
    name: str  # engine as printed
    kind: str  # one of ENGINES
    dtype: str  # one of DTYPES
    layout: str  # for step_bytes
    process: Optional["EngineProcess"] = None  # the engine, loaded in a process of its own
    note: str = ""
    error: str = ""
    warmup_s: Dict[int, float] = field(default_factory=dict)


def torch_dtype(dtype: str, int8_base: str) -> torch.dtype:
    return {"int8": getattr(torch, int8_base), "int8-dynamic": torch.float32, "int4": torch.bfloat16}.get(dtype) \
        or getattr(torch, dtype)


def torch_runner(model, compile_step: bool = False) -> Callable[[Inputs, int], torch.Tensor]:
    extra = {"compile": True} if compile_step else {}

    def run(inputs: Inputs, new: int) -> torch.Tensor:
        with torch.inference_mode():
            out = model.generate(inputs.ids, attention_mask=inputs.mask, max_new_tokens=new, min_new_tokens=new,
                                 do_sample=False, num_beams=1, pad_token_id=0, **extra)
        return out[:, inputs.ids.shape[1]:]

    return run


TORCHAO_CONFIGS = {"int8": ("Int8WeightOnlyConfig", {}), "int8-dynamic": ("Int8DynamicActivationInt8WeightConfig", {}),
                   "int4": ("Int4WeightOnlyConfig", {"group_size": INT4_GROUP})}  # transformers' quantized rows


def load_transformers(folder: str, dtype: str, int8_base: str) -> Tuple[Callable, str]:
    import transformers

    kwargs, note = {}, ""
    if dtype in TORCHAO_CONFIGS:
        name, options = TORCHAO_CONFIGS[dtype]
        try:
            import torchao.quantization
        except ImportError as error:
            raise RuntimeError(f"torchao not installed ({error})") from error
        kwargs["quantization_config"] = transformers.TorchAoConfig(getattr(torchao.quantization, name)(**options))
        note = f"torchao {md.version('torchao')} {name}({options or ''}), {torch_dtype(dtype, int8_base)} activations"
    model = transformers.CodeGenForCausalLM.from_pretrained(folder, dtype=torch_dtype(dtype, int8_base), **kwargs)
    return torch_runner(model.eval()), note


def load_polyformer(folder: str, dtype: str, int8_base: str, *, kind: str) -> Tuple[Callable, str]:
    """kind: "polyformer" (eager), "polyformer-compiled" (generate(compile=True)), "polyformer-packed" and
    "polyformer-packed-compiled" (the same after pack_linears_)."""
    import polyformer

    packed = kind.startswith("polyformer-packed")
    kwargs, note = {}, ""
    if dtype == "int8":
        kwargs["quantization_config"] = polyformer.TorchAoConfig("int8_weight_only")
        note = f"TorchAoConfig('int8_weight_only'), {int8_base} activations"
    elif dtype == "int8-dynamic":  # the output layer quantized too, as CTranslate2 does
        kwargs["quantization_config"] = polyformer.TorchAoConfig("int8_dynamic_activation_int8_weight",
                                                                 modules_to_not_convert=[])
        note = "TorchAoConfig('int8_dynamic_activation_int8_weight', modules_to_not_convert=[]): lm_head in int8 too"
    elif dtype == "int4":
        kwargs["quantization_config"] = polyformer.TorchAoConfig("int4_weight_only", group_size=INT4_GROUP)
        note = f"TorchAoConfig('int4_weight_only', group_size={INT4_GROUP}), bfloat16"
    model = polyformer.CodeGenForCausalLM.from_pretrained(folder, torch_dtype=torch_dtype(dtype, int8_base), **kwargs)
    if packed:
        polyformer.pack_linears_(model)
        note = (note + ", " if note else "") + "pack_linears_"
    return torch_runner(model, compile_step=kind.endswith("-compiled")), note


CT2_COMPUTE = {"float32": "float32", "bfloat16": "bfloat16", "int8": "int8_float32", "int8-dynamic": "int8_float32"}


def load_ctranslate2(folder: str, dtype: str, threads: int, workdir: str) -> Tuple[Callable, str]:
    import ctranslate2

    if dtype not in CT2_COMPUTE:
        raise RuntimeError(f"CTranslate2 {ctranslate2.__version__} has no {dtype} compute type on CPU")
    compute = CT2_COMPUTE[dtype]
    supported = ctranslate2.get_supported_compute_types("cpu")
    if compute not in supported:
        raise RuntimeError(f"compute_type {compute!r} not supported on this CPU by CTranslate2 "
                           f"{ctranslate2.__version__} (supported: {', '.join(sorted(supported))})")
    out = os.path.join(workdir, f"ct2-{compute}")
    if not os.path.isdir(out):
        start = time.perf_counter()
        ctranslate2.converters.TransformersConverter(folder).convert(out, quantization=compute)
        logger.info("CTranslate2 conversion to %s: %.1f s", compute, time.perf_counter() - start)
    generator = ctranslate2.Generator(out, device="cpu", compute_type=compute, inter_threads=1, intra_threads=threads)

    def run(inputs: Inputs, new: int) -> torch.Tensor:
        prompts = [[f"t{i}" for i in row] for row in inputs.rows]
        results = generator.generate_batch(prompts, beam_size=1, sampling_topk=1, max_length=new, min_length=new,
                                           include_prompt_in_result=False)
        ids = [r.sequences_ids[0] for r in results]
        if any(len(row) != new for row in ids):
            raise RuntimeError(f"CTranslate2 generated {[len(row) for row in ids]} tokens, not {new}")
        return torch.tensor(ids)

    return run, f"compute_type {generator.compute_type}"


def save_model(folder: str) -> None:
    import transformers
    from tokenizers import Tokenizer, models

    torch.manual_seed(0)
    model = transformers.CodeGenForCausalLM(transformers.CodeGenConfig(**SHAPE))
    model.save_pretrained(folder)  # float32 safetensors
    vocab = {f"t{i}": i for i in range(SHAPE["vocab_size"])}
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")),
        bos_token="t1", eos_token="t2", unk_token="t0", pad_token="t0")
    tokenizer.save_pretrained(folder)


# --- measuring ---------------------------------------------------------------------------------------------

def compare(ids: torch.Tensor, reference: Optional[torch.Tensor]) -> str:
    if reference is None:
        return "no reference"
    equal = (ids == reference)
    rows = int(equal.all(dim=1).sum())
    text = f"{rows}/{ids.shape[0]}"
    if rows < ids.shape[0]:
        first = min(int((~row).int().argmax()) for row in equal if not bool(row.all()))
        text += f", first diff at token {first}"
    return text


@dataclass
class Row:
    engine: Engine
    batch: int
    times: List[float] = field(default_factory=list)
    others: List[float] = field(default_factory=list)  # other processes' share of the CPUs, per run
    ids: Optional[torch.Tensor] = None
    error: str = ""


def busy_seconds() -> Tuple[float, float]:
    """(CPU seconds all processes have run, CPU seconds this process has run): /proc/stat, os.times()."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:8]]  # user nice system idle iowait irq softirq
    busy = sum(fields) - fields[3] - fields[4]
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system + own.children_user + own.children_system


def timed(run: Callable[[Inputs, int], torch.Tensor], inputs: Inputs, new: int) -> Tuple[float, torch.Tensor, float]:
    """Seconds of one generate, its new ids, and the share of the machine's CPUs that other processes
    used meanwhile (on a shared 2-core machine anything else running skews the timing)."""
    time.sleep(PAUSE_S)
    all_before, own_before = busy_seconds()
    start = time.perf_counter()
    ids = run(inputs, new)
    seconds = time.perf_counter() - start
    all_after, own_after = busy_seconds()
    others = (all_after - all_before) - (own_after - own_before)
    return seconds, ids, max(others, 0.0) / (seconds * (os.cpu_count() or 1))


# --- one process per engine ----------------------------------------------------------------------------------

def load_engine(*, kind: str, folder: str, dtype: str, int8_base: str, threads: int,
                workdir: str) -> Tuple[Callable[[Inputs, int], torch.Tensor], str]:
    """(run(inputs, new) -> new ids (B, N), note) of one engine."""
    if kind == "transformers":
        return load_transformers(folder, dtype, int8_base)
    if kind == "ctranslate2":
        return load_ctranslate2(folder, dtype, threads, workdir)
    return load_polyformer(folder, dtype, int8_base, kind=kind)


def serve(conn, n_layer: int, load_args: Dict) -> None:
    """An engine's process: load the engine, then answer timed runs, (inputs, new) -> ("ok", timed(...)),
    until sent None."""
    SHAPE["n_layer"] = n_layer
    torch.set_num_threads(load_args["threads"])
    quiet_libraries()
    try:
        run, note = load_engine(**load_args)
    except Exception as error:  # noqa: BLE001 - reported in the table
        conn.send(("error", f"{type(error).__name__}: {error}".splitlines()[0][:200]))
        return
    conn.send(("ok", note))
    for message in iter(conn.recv, None):
        try:
            conn.send(("ok", timed(run, *message)))
        except Exception as error:  # noqa: BLE001
            conn.send(("error", f"{type(error).__name__}: {error}".splitlines()[0][:200]))


class EngineProcess:
    """One engine loaded in a process of its own (spawned), timed there. Two runtimes in one process
    (torch's OpenMP threads, CTranslate2's) leave idle threads spinning against the engine being timed:
    on 2 cores, polyformer's int8-dynamic step measured 41 tokens/s alone and 20 beside a CTranslate2
    generator, and CTranslate2 lost too. Waiting for a request, a process uses no CPU."""

    def __init__(self, **load_args):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, SHAPE["n_layer"], load_args), daemon=True)
        self.process.start()
        status, self.note = self.conn.recv()
        if status != "ok":
            self.close()
            raise RuntimeError(self.note)

    def timed(self, inputs: Inputs, new: int) -> Tuple[float, torch.Tensor, float]:
        """timed() of the engine's run, in its process."""
        self.conn.send((inputs, new))
        status, value = self.conn.recv()
        if status != "ok":
            raise RuntimeError(value)
        return value

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=60)
        if self.process.is_alive():
            self.process.kill()


def quiet_libraries() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("transformers", "torchao", "torch._dynamo", "torch._inductor"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--warmup-tokens", type=int, default=8)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--int8-base", default="bfloat16", choices=["bfloat16", "float32"],
                        help="activation / lm_head dtype of the torch engines' int8 weight-only models")
    parser.add_argument("--bandwidth-gb", type=float, default=1.5, help="size of the bandwidth buffer")
    parser.add_argument("--n-layer", type=int, default=SHAPE["n_layer"], help="fewer layers: a quick smoke run only")
    args = parser.parse_args()
    SHAPE["n_layer"] = args.n_layer
    quiet_libraries()

    engines = [e for e in args.engines.split(",") if e]
    dtypes = [d for d in DTYPES if d in args.dtypes.split(",")]  # float32 first: it holds the reference ids
    batches = [int(b) for b in args.batches.split(",")]
    if set(engines) - set(ENGINES) or set(args.dtypes.split(",")) - set(DTYPES):
        parser.error(f"engines are {ENGINES}, dtypes {DTYPES}")
    torch.set_num_threads(args.threads)
    new = args.new_tokens
    started = datetime.datetime.now()
    load_before = loadavg()
    if load_before != "?" and float(load_before.split()[0]) > 0.5 * (os.cpu_count() or 1):
        logger.warning("load average %s: something else is running; timings will be skewed", load_before)

    logger.info("measuring memory-read bandwidth (%.1f GB float32 buffer, %d threads)", args.bandwidth_gb,
                args.threads)
    bandwidth = [read_bandwidth(args.bandwidth_gb)]
    logger.info("bandwidth: %.1f GB/s", bandwidth[0])

    generator = torch.Generator().manual_seed(0)
    inputs = {b: make_inputs(b, generator) for b in batches}
    rows: List[Row] = []
    reference: Dict[int, torch.Tensor] = {}
    compile_notes: List[str] = []

    with tempfile.TemporaryDirectory(prefix="polyformer-decode-") as workdir:
        folder = os.path.join(workdir, "codegen-350m-random")
        # compile times as a first run sees them: the engine processes (spawned, so they inherit it) get an
        # inductor cache of this run's own, not the one earlier runs filled
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(workdir, "inductor-cache")
        start = time.perf_counter()
        save_model(folder)
        logger.info("random CodeGen-350M-shape model saved in %.1f s", time.perf_counter() - start)

        if "float32" not in dtypes or "polyformer" not in engines:
            logger.info("computing the reference ids (polyformer eager float32)")
            process = EngineProcess(kind="polyformer", folder=folder, dtype="float32", int8_base=args.int8_base,
                                    threads=args.threads, workdir=workdir)
            for b in batches:
                reference[b] = process.timed(inputs[b], new)[1]
            process.close()

        for dtype in dtypes:
            loaded: List[Engine] = []
            for kind in engines:
                name = {"transformers": "transformers " + md.version("transformers"),
                        "ctranslate2": "CTranslate2 " + md.version("ctranslate2"),
                        "polyformer": "polyformer (eager)",
                        "polyformer-compiled": "polyformer (compiled)",
                        "polyformer-packed": "polyformer (packed)",
                        "polyformer-packed-compiled": "polyformer (packed, compiled)"}[kind]
                layout = {"int8": "int8-ct2" if kind == "ctranslate2" else f"int8-{args.int8_base}",
                          "int8-dynamic": "int8-float32" if kind == "transformers" else "int8-ct2",
                          "int4": "int4-bfloat16"}.get(dtype, dtype)
                engine = Engine(name, kind, dtype, layout)
                start = time.perf_counter()
                try:
                    engine.process = EngineProcess(kind=kind, folder=folder, dtype=dtype, int8_base=args.int8_base,
                                                   threads=args.threads, workdir=workdir)
                    engine.note = engine.process.note
                    logger.info("%s %s loaded in %.1f s", name, dtype, time.perf_counter() - start)
                except Exception as error:  # noqa: BLE001 - reported in the table
                    engine.error = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                    logger.warning("%s %s: %s", name, dtype, engine.error)
                loaded.append(engine)

            for b in batches:
                group = [Row(e, b, error=e.error) for e in loaded]
                rows += group
                for row in group:
                    if row.error:
                        continue
                    try:
                        row.engine.warmup_s[b] = row.engine.process.timed(inputs[b], args.warmup_tokens)[0]
                        if row.engine.kind.endswith("-compiled"):
                            again = row.engine.process.timed(inputs[b], args.warmup_tokens)[0]  # a recompile shows here
                            compile_notes.append(f"{row.engine.name}, {dtype}, batch {b}: first call {row.engine.warmup_s[b]:.1f} s "
                                                 f"(compiling), second {again:.2f} s")
                            logger.info("compiled %s batch %d: first call %.1f s, second %.2f s", dtype, b,
                                        row.engine.warmup_s[b], again)
                    except Exception as error:  # noqa: BLE001
                        row.error = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                        logger.warning("%s %s batch %d warm-up: %s", row.engine.name, dtype, b, row.error)
                live = [r for r in group if not r.error]
                for rep in tqdm(range(args.reps), desc=f"{dtype} batch {b}", unit="rep"):
                    turn = rep % max(len(live), 1)
                    for row in live[turn:] + live[:turn]:  # a rotating order
                        if row.error:
                            continue
                        try:
                            t, ids, others = row.engine.process.timed(inputs[b], new)
                        except Exception as error:  # noqa: BLE001
                            row.error = f"{type(error).__name__}: {error}".splitlines()[0][:200]
                            logger.warning("%s %s batch %d: %s", row.engine.name, dtype, b, row.error)
                            continue
                        row.times.append(t)
                        row.others.append(others)
                        if row.ids is None:
                            row.ids = ids
                            if row.engine.kind == "polyformer" and dtype == "float32":
                                reference[b] = ids
                for row in group:  # a partial result, in case the run is cut short
                    if row.times:
                        logger.info("%s %s batch %d: %.1f tokens/s (median of %d), ids %s", row.engine.name, dtype, b,
                                    b * new / statistics.median(row.times), len(row.times),
                                    compare(row.ids, reference.get(b)))
            for engine in loaded:  # the models go; the rows keep times and ids
                if engine.process is not None:
                    engine.process.close()
                    engine.process = None

    bandwidth.append(read_bandwidth(args.bandwidth_gb))
    logger.info("bandwidth at the end: %.1f GB/s", bandwidth[1])
    report(args, rows, reference, bandwidth, compile_notes, started, load_before, loadavg(), new)


# --- report ------------------------------------------------------------------------------------------------

def version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def report(args, rows: List[Row], reference, bandwidth, compile_notes, started, load_before, load_after,
           new: int) -> None:
    cpu = cpu_info()
    bw = max(bandwidth)
    print()
    print(f"## decode.py, {started:%Y-%m-%d %H:%M}")
    print()
    print(f"- CPU: {cpu['model']}, {cpu['cores']} cores; flags: {cpu['flags']}")
    print(f"- torch {torch.__version__}, transformers {version('transformers')}, ctranslate2 {version('ctranslate2')}, "
          f"torchao {version('torchao')}, polyformer {version('polyformer')}; python {platform.python_version()}")
    shape = "CodeGen-350M shape" if SHAPE["n_layer"] == 20 else f"CodeGen-350M shape but {SHAPE['n_layer']} layers"
    print(f"- {args.threads} threads, {shape} (random weights), greedy, prompt {PROMPT} tokens (batch 8: "
          f"{BATCH8_LENGTHS[0]}..{BATCH8_LENGTHS[-1]}, left-padded), {new} new tokens per row, median of {args.reps}; "
          f"load average before {load_before}, after {load_after}")
    print(f"- memory-read bandwidth (`buf.sum()` over {args.bandwidth_gb:g} GB float32, {args.threads} threads): "
          f"{bandwidth[0]:.1f} GB/s at the start, {bandwidth[1]:.1f} GB/s at the end; limits use {bw:.1f} GB/s")
    print()
    layouts = sorted({r.engine.layout for r in rows}, key=lambda l: -step_bytes(l))
    print("| weights layout | MB read per step | limit, batch 1 (tokens/s) |")
    print("|---|---|---|")
    for layout in layouts:
        size = step_bytes(layout)
        print(f"| {layout} | {size / 1e6:.0f} | {bw * 1e9 / size:.1f} |")
    print()
    print("| engine | dtype | batch | tokens/s | ms/step | vs transformers | vs CTranslate2 | of limit "
          "| ids = polyformer fp32 | ids = transformers, same dtype | others' CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    def speed(row: Row) -> Optional[float]:
        return row.batch * new / statistics.median(row.times) if row.times and not row.error else None

    for row in rows:
        e = row.engine
        same = [r for r in rows if r.engine.dtype == e.dtype and r.batch == row.batch]
        tps = speed(row)
        if tps is None:
            print(f"| {e.name} | {e.dtype} | {row.batch} | - | - | - | - | - | {'not run' if row.error else 'no timing'} "
                  "| - | - |")
            continue
        ref_t = next((speed(r) for r in same if r.engine.kind == "transformers"), None)
        ref_c = next((speed(r) for r in same if r.engine.kind == "ctranslate2"), None)
        ids_t = next((r.ids for r in same if r.engine.kind == "transformers" and r.ids is not None), None)
        limit = row.batch * bw * 1e9 / step_bytes(e.layout)
        ms = statistics.median(row.times) / new * 1e3
        print(f"| {e.name} | {e.dtype} | {row.batch} | {tps:.1f} | {ms:.1f} | "
              f"{f'{tps / ref_t:.2f}' if ref_t else 'n/a'} | {f'{tps / ref_c:.2f}' if ref_c else 'n/a'} | "
              f"{tps / limit:.0%} | {compare(row.ids, reference.get(row.batch))} | "
              f"{'-' if e.kind == 'transformers' or ids_t is None else compare(row.ids, ids_t)} | "
              f"{max(row.others):.0%} |")
    print()
    print("(tokens/s: new tokens of all rows per second, prompt included; of limit: against batch x the layout's "
          "limit; others' CPU: the most that other processes used of the machine's CPUs during one of the timed "
          "runs)")
    print()
    notes = {}
    for row in rows:
        if row.engine.note:
            notes[(row.engine.name, row.engine.dtype)] = row.engine.note
    for (name, dtype), note in notes.items():
        print(f"- {name}, {dtype}: {note}")
    if any(r.engine.kind == "ctranslate2" and r.batch > 1 for r in rows):
        print("- CTranslate2, batch > 1: forwards the prompts up to the shortest one's length at once, then feeds "
              "the rest of each longer prompt one token per step (its design for prompts of different lengths)")
    for note in compile_notes:
        print(f"- compiled warm-up: {note}")
    busy = [(r, o) for r in rows for o in r.others if o > BUSY]
    if busy:
        print(f"- WARNING: other processes used more than {BUSY:.0%} of the CPUs during {len(busy)} of the timed runs "
              f"(up to {max(o for _, o in busy):.0%}): with {os.cpu_count()} cores, a busy neighbour slows the engines "
              "unevenly (every parallel op waits for a time slice, so engines with many small ops lose most); "
              "rerun those rows on a quiet machine")
    errors = {(r.engine.name, r.engine.dtype): r.error for r in rows if r.error}
    for (name, dtype), error in errors.items():
        print(f"- {name}, {dtype}: not run: {error}")


if __name__ == "__main__":
    main()
