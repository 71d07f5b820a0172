#!/usr/bin/env bash
# The README's main-job command: makes (once) a virtual environment with torch and this project's
# requirements, then runs the command line (`python -m fom_pipeline`) with the arguments given.
#
#   bash scripts/animate.sh --source_image PHOTO --driving_video VIDEO --multi_person --relative --adapt_scale
#
# Env: FOM_VENV (default ~/.cache/fom-multiface/venv). Weights are looked up in models/ and
# downloaded there on first use (PaddleGAN's vox-cpk.pdparams, face-alignment's S3FD).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${FOM_VENV:-$HOME/.cache/fom-multiface/venv}"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
fi
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[animate.sh] installing torch (once; large download)" >&2
  "$PY" -m pip install -q torch
fi
STAMP="$VENV/.fom-req-$(sha256sum "$REPO/requirements.txt" | cut -c1-16)"
if [ ! -f "$STAMP" ]; then
  echo "[animate.sh] installing requirements.txt" >&2
  "$PY" -m pip install -q -r "$REPO/requirements.txt"
  rm -f "$VENV"/.fom-req-*; touch "$STAMP"
fi
cd "$REPO"
exec "$PY" -m fom_pipeline "$@"
