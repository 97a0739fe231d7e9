#!/usr/bin/env bash
# Create (or update) the virtual environment with the whole mmitpn stack.
#
# Usage: tools/misc/install_env.sh [--stack upstream|onedl] [VENV_DIR]
#   (default: the upstream stack into .venv at the repository root)
#
# --stack onedl installs the maintained fork (requirements/onedl.txt: onedl-mmcv, -mmengine,
# -mmdetection, -mmsegmentation, -mmpretrain; same import names, same torch) instead of
# requirements/mminstall.txt and the upstream mmdet/mmsegmentation/mmpretrain pins. Its
# workarounds are applied only where a probe of that stack finds them needed: setuptools<81 where
# mmcv's setup.py or the installed OpenMMLab code imports pkg_resources, and the C++20 compiler
# wrapper where torch's headers refuse C++17 and mmcv's setup.py asks for an older standard.
#
# mmcv 2.1.0 has no wheels on PyPI, so it is compiled with CPU ops (set FORCE_CUDA=1 on a GPU
# machine). The three traps of that build are handled here: no build isolation (it needs the
# installed torch and a setuptools that still ships pkg_resources), a C++20 compiler wrapper
# (torch >= 2.14 headers), and a cached ops-less wheel (checked after install, rebuilt once).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
stack=upstream
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack="${2:-}"; shift 2 || shift ;;
    --stack=*) stack="${1#*=}"; shift ;;
    *) venv="$1"; shift ;;
  esac
done
python="${PYTHON:-python3}"

log() { printf '[install_env] %s\n' "$*"; }

case "$stack" in
  upstream | onedl) ;;
  *) log "ERROR: --stack '$stack' is unknown: use --stack upstream or --stack onedl"; exit 2 ;;
esac

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

export MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="${CFLAGS:--g0}"

if [ "$stack" = upstream ]; then
  log "installing torch and build tools"
  "${pip[@]}" install -q -r "$root/requirements/build.txt"
  export CXX="$root/tools/misc/cxx20"
  log "installing the OpenMMLab stack (mmcv compiles once, about 8 minutes on 2 cores)"
  "${pip[@]}" install -q --no-build-isolation \
    -r "$root/requirements/mminstall.txt" -r "$root/requirements/runtime.txt" \
    -r "$root/requirements/optional.txt" -r "$root/requirements/tests.txt" \
    -r "$root/requirements/docs.txt"
  mmcv_pin=mmcv==2.1.0
else
  log "installing torch and build tools (setuptools uncapped until a probe asks for <81)"
  grep -v '^setuptools' "$root/requirements/build.txt" > "$venv/build-onedl.txt"
  "${pip[@]}" install -q -r "$venv/build-onedl.txt" 'setuptools>=77.0.3'
  mmcv_pin="$(grep '^onedl-mmcv' "$root/requirements/onedl.txt")"
  sdist="$(mktemp -d)"
  "${pip[@]}" download -q --no-deps --no-binary :all: -d "$sdist" "$mmcv_pin"
  tar -xzf "$sdist"/*.tar.gz -C "$sdist"
  setup_py="$(ls "$sdist"/*/setup.py)"
  if grep -qE '^\s*(import|from) pkg_resources' "$setup_py"; then
    log "probe: $mmcv_pin's setup.py imports pkg_resources: installing setuptools<81"
    "${pip[@]}" install -q 'setuptools>=77.0.3,<81'
  fi
  torch_include="$("$venv/bin/python" -c 'import torch.utils.cpp_extension as c; print(c.include_paths()[0])')"
  if ! echo '#include <ATen/ATen.h>' | "${MMITPN_REAL_CXX:-g++}" -std=c++17 -E -x c++ \
      -I"$torch_include" -I"$torch_include/torch/csrc/api/include" - >/dev/null 2>&1 &&
    grep -q -- "-std=c++1[147]" "$setup_py"; then
    log "probe: torch's headers refuse C++17 and $mmcv_pin asks for it: compiling with tools/misc/cxx20"
    export CXX="$root/tools/misc/cxx20"
  fi
  rm -rf "$sdist"
  # The upstream names of the fork's packages are left out (they would install a second copy).
  grep -hvE '^(mmcv|mmengine|mmdet|mmsegmentation|mmpretrain)([=<>~ ]|$)' \
    "$root/requirements/runtime.txt" "$root/requirements/optional.txt" \
    "$root/requirements/tests.txt" "$root/requirements/docs.txt" > "$venv/rest-onedl.txt"
  log "installing the onedl OpenMMLab stack (onedl-mmcv compiles once)"
  "${pip[@]}" install -q --no-build-isolation -r "$root/requirements/onedl.txt" -r "$venv/rest-onedl.txt"
  site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  if grep -rqlE '^\s*(import|from) pkg_resources' \
      "$site"/{mmcv,mmengine,mmdet,mmseg,mmpretrain} 2>/dev/null; then
    log "probe: the installed OpenMMLab code imports pkg_resources: installing setuptools<81"
    "${pip[@]}" install -q 'setuptools>=77.0.3,<81'
  fi
fi

check_ops() { "$venv/bin/python" -c 'from mmcv.ops import nms, RoIAlign' 2>/dev/null; }
if ! check_ops; then
  log "mmcv has no compiled ops (a cached ops-less wheel?): rebuilding it"
  "${pip[@]}" cache remove "${mmcv_pin%%=*}" >/dev/null 2>&1 || true
  "${pip[@]}" install -q --no-build-isolation --no-cache-dir --force-reinstall --no-deps "$mmcv_pin"
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
