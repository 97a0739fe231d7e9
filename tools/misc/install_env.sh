#!/usr/bin/env bash
# Create (or update) the virtual environment with the whole mmitpn stack.
#
# Usage: tools/misc/install_env.sh [VENV_DIR]   (default: .venv at the repository root)
#
# mmcv 2.1.0 has no wheels on PyPI, so it is compiled with CPU ops (set FORCE_CUDA=1 on a GPU
# machine). The three traps of that build are handled here: no build isolation (it needs the
# installed torch and a setuptools that still ships pkg_resources), a C++20 compiler wrapper
# (torch >= 2.14 headers), and a cached ops-less wheel (checked after install, rebuilt once).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${1:-$root/.venv}"
python="${PYTHON:-python3}"

log() { printf '[install_env] %s\n' "$*"; }

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

log "installing torch and build tools"
"${pip[@]}" install -q -r "$root/requirements/build.txt"

export CXX="$root/tools/misc/cxx20"
export MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="${CFLAGS:--g0}"

log "installing the OpenMMLab stack (mmcv compiles once, about 8 minutes on 2 cores)"
"${pip[@]}" install -q --no-build-isolation \
  -r "$root/requirements/mminstall.txt" -r "$root/requirements/runtime.txt" \
  -r "$root/requirements/optional.txt" -r "$root/requirements/tests.txt" \
  -r "$root/requirements/docs.txt"

check_ops() { "$venv/bin/python" -c 'from mmcv.ops import nms, RoIAlign' 2>/dev/null; }
if ! check_ops; then
  log "mmcv has no compiled ops (a cached ops-less wheel?): rebuilding it"
  "${pip[@]}" cache remove mmcv >/dev/null 2>&1 || true
  "${pip[@]}" install -q --no-build-isolation --no-cache-dir --force-reinstall --no-deps mmcv==2.1.0
  check_ops || { log "ERROR: 'from mmcv.ops import nms, RoIAlign' still fails"; exit 1; }
fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian's dataset-fashion-mnist (the classification demo data)"
    apt-get install -y -q dataset-fashion-mnist >/dev/null ||
      { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
  else
    log "note: for the classification demo run: sudo apt-get install dataset-fashion-mnist"
  fi
fi

log "installing mmitpn in editable mode"
"${pip[@]}" install -q --no-build-isolation --no-deps -e "$root"
"$venv/bin/python" -c 'import mmitpn, mmcv.ops; print("[install_env] ok: mmitpn", mmitpn.__version__)'
