#!/usr/bin/env bash
# Create .venv and install the project with the CPU build of torch. A second run returns at
# once when nothing changed: the install is skipped while .venv/.install-stamp matches the
# hash of pyproject.toml, EXTRAS and the Python version (FORCE=1 reinstalls anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev}
STAMP=.venv/.install-stamp
[ -x .venv/bin/python ] || "$PY" -m venv .venv
want=$( { cat pyproject.toml; echo "extras=$EXTRAS"; .venv/bin/python -V; } | sha256sum | cut -d' ' -f1)
if [ "${FORCE:-0}" != 1 ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x .venv/bin/rag ]; then
    echo "setup: .venv is current (pyproject.toml and EXTRAS=$EXTRAS unchanged); skipping the install"
    exit 0
fi
rm -f "$STAMP"
. .venv/bin/activate
python -m pip install -q --upgrade pip
# The CPU build first: letting pip choose torch freely pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[$EXTRAS]"
echo "$want" > "$STAMP"
