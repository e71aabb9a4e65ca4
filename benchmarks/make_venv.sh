#!/usr/bin/env bash
# Build the benchmark virtual environment: polyformer beside what a user would otherwise pick today,
# transformers 5.23.0 and CTranslate2 4.8.5 (plus torchao for int8 weight-only), all on torch 2.13.0 (CPU).
# benchmarks/decode.py and benchmarks/load_memory.py run in it. Speed is compared against these; the
# transformers 4.37.2 reference venv (scripts/make_reference_venv.sh) stays the oracle for numbers.
#
# Usage:  benchmarks/make_venv.sh            # creates .benchvenv/ in the repo root
#         BENCHVENV=/some/path benchmarks/make_venv.sh
#         PYTHON=python3.11 benchmarks/make_venv.sh
# Then:   .benchvenv/bin/python benchmarks/decode.py
#
# Recipe:
#   1. torch==2.13.0 first and alone (the local CPU wheel; a looser pin pulls gigabytes of CUDA packages);
#   2. the pins below, with a constraint file holding torch==2.13.0 so nothing replaces it;
#   3. torchao: the newest of TORCHAO_VERSIONS that imports cleanly with torch 2.13.0 (left out if none);
#   4. polyformer itself, editable, without its dependencies (transformers brings them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${BENCHVENV:-$root/.benchvenv}"
python="${PYTHON:-python3}"
torch_pin="torch==2.13.0"
pins=(transformers==5.23.0 ctranslate2==4.8.5 tqdm sentencepiece Pillow)
torchao_versions=(${TORCHAO_VERSIONS:-0.18.0 0.17.0 0.16.0 0.15.0 0.14.1 0.13.0})
marker="$venv/.benchvenv-complete"

if [[ -x "$venv/bin/python" && -f "$marker" ]] && "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("torch").startswith("2.13.0")
assert md.version("transformers") == "5.23.0"
assert md.version("ctranslate2") == "4.8.5"
import polyformer, transformers, ctranslate2, tqdm  # noqa: F401
PY
then
    echo "benchmark venv already complete: $venv"
    exit 0
fi

echo "creating benchmark venv at $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install "$torch_pin"

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "$torch_pin" > "$constraints"
"$venv/bin/python" -m pip install "${pins[@]}" -c "$constraints"

# torchao ships kernels built against one torch release: with another one it skips its C++ extensions
# ("incompatible torch version") or fails to import. Keep the first version that imports, does not say
# so, and whose int8 weight-only linear agrees with the float one. (Its warnings about CUDA-only
# libraries, _C_cutlass_90a / _C_mxfp8, and a missing triton are expected on a CPU-only machine.)
torchao_ok=""
for version in "${torchao_versions[@]}"; do
    if "$venv/bin/python" -m pip install "torchao==$version" -c "$constraints" >/dev/null 2>&1 \
        && "$venv/bin/python" - <<'PY'
import logging, warnings
messages = []
class Catch(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())
logging.getLogger().addHandler(Catch())
logging.getLogger().setLevel(logging.WARNING)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import torch, torchao
    from torchao.quantization import quantize_, Int8WeightOnlyConfig
messages += [str(w.message) for w in caught]
bad = [m for m in messages if "incompatible" in m.lower() or "skipping import" in m.lower()]
assert not bad, bad
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(256, 256))
x = torch.randn(2, 256)
want = model(x)
quantize_(model, Int8WeightOnlyConfig())
got = model(x)
assert torch.allclose(got, want, atol=0.02, rtol=0.02), (got - want).abs().max()
print(f"torchao {torchao.__version__} works with torch {torch.__version__}")
PY
    then
        torchao_ok="$version"
        break
    fi
    echo "torchao==$version does not work with $torch_pin; trying an older one"
done
if [[ -z "$torchao_ok" ]]; then
    "$venv/bin/python" -m pip uninstall -y torchao >/dev/null 2>&1 || true
    echo "WARNING: no torchao in (${torchao_versions[*]}) works with $torch_pin: left out (no int8 for transformers)"
fi

"$venv/bin/python" -m pip install -e "$root" --no-deps

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "transformers", "ctranslate2", "torchao", "tokenizers", "safetensors", "polyformer"):
    try:
        print(f"{name}=={md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: not installed")
import polyformer, transformers, ctranslate2  # noqa: F401
PY
touch "$marker"
echo "benchmark venv ready: $venv"
