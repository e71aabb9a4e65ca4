#!/usr/bin/env bash
# Build the reference virtual environment: transformers 4.37.2, the *test oracle* that the fixture
# scripts in scripts/fixtures/ run in. polyformer itself never imports transformers; only these
# scripts do, and only to write files under tests/fixtures/.
#
# Usage:  scripts/make_reference_venv.sh            # creates .refvenv/ in the repo root
#         REFVENV=/some/path scripts/make_reference_venv.sh
#         PYTHON=python3.11 scripts/make_reference_venv.sh
# Then:   .refvenv/bin/python scripts/fixtures/make_distilbert_fixtures.py
#
# Recipe (see scripts/fixtures/reference-requirements.txt for the pins):
#   1. torch==2.13.0 first and alone (the local CPU wheel);
#   2. the pinned requirements, with a constraint file holding torch==2.13.0 so nothing replaces it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${REFVENV:-$root/.refvenv}"
python="${PYTHON:-python3}"
requirements="$here/fixtures/reference-requirements.txt"
torch_pin="torch==2.13.0"

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as md
assert md.version("transformers") == "4.37.2"
assert md.version("torch").startswith("2.13.0")
PY
then
    echo "reference venv already complete: $venv"
    exit 0
fi

echo "creating reference venv at $venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install "$torch_pin"

constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
echo "$torch_pin" > "$constraints"
"$venv/bin/python" -m pip install -r "$requirements" -c "$constraints"

"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "transformers", "tokenizers", "safetensors"):
    print(f"{name}=={md.version(name)}")
PY
echo "reference venv ready: $venv"
