#!/usr/bin/env bash
# Create (or update) the virtual environment with the whole mmitpn stack.
#
# Usage: tools/misc/install_env.sh [--stack upstream|onedl] [--cuda auto|yes|no] [--dry-run]
#                                  [VENV_DIR]
#   (default: the upstream stack into .venv at the repository root, CUDA ops where a GPU is seen)
#
# The interpreter that creates a new environment is $PYTHON (default python3).
#
# mmcv (2.1.0 upstream, onedl-mmcv on the fork) has no wheels on PyPI and is compiled here.
# --cuda auto (the default) compiles its CUDA ops when nvidia-smi lists a visible GPU, for the
# compute capabilities of the visible GPUs; --cuda yes compiles them anyway (for
# TORCH_CUDA_ARCH_LIST, default "8.0;9.0": A100, H100, H200), --cuda no never. FORCE_CUDA=1 / 0
# in the environment counts as --cuda yes / no. For a CUDA build, the CUDA compiler of torch's
# CUDA version is taken from CUDA_HOME or PATH, else installed into the environment
# (requirements/cuda.txt). --dry-run prints these decisions and changes nothing.
#
# --stack onedl installs the maintained fork (requirements/onedl.txt: onedl-mmcv, -mmengine,
# -mmdetection, -mmsegmentation, -mmpretrain; same import names, same torch) instead of
# requirements/mminstall.txt and the upstream mmdet/mmsegmentation/mmpretrain pins. Its
# workarounds are applied only where a probe of that stack finds them needed: setuptools<81 where
# mmcv's setup.py or the installed OpenMMLab code imports pkg_resources, the C++20 compiler
# wrappers where torch's headers refuse C++17 and mmcv's setup.py asks for an older standard, and
# the `mmsegmentation` alias distribution where mmengine cannot resolve `mmseg::` configs.
#
# The traps of the mmcv build handled here: no build isolation (it needs the installed torch and
# a setuptools that still ships pkg_resources), C++20 wrappers for the host compiler and nvcc
# (torch >= 2.14 headers; tools/misc/cxx20, tools/misc/nvcc20), and a cached wheel of the wrong
# kind (ops-less, or CPU-only where CUDA was asked for: checked after install, rebuilt once).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
stack=upstream
cuda_mode=
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack="${2:-}"; shift 2 || shift ;;
    --stack=*) stack="${1#*=}"; shift ;;
    --cuda) cuda_mode="${2:-}"; shift 2 || shift ;;
    --cuda=*) cuda_mode="${1#*=}"; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) printf '[install_env] ERROR: unknown option %s (see --help)\n' "$1"; exit 2 ;;
    *) venv="$1"; shift ;;
  esac
done
python="${PYTHON:-python3}"

log() { printf '[install_env] %s\n' "$*"; }

case "$stack" in
  upstream | onedl) ;;
  *) log "ERROR: --stack '$stack' is unknown: use --stack upstream or --stack onedl"; exit 2 ;;
esac

# --- CUDA or CPU ops: the decision ------------------------------------------------------------
default_archs="8.0;9.0"
# Compute capabilities of the visible GPUs, one per line, sorted and unique; fails when none.
visible_gpu_caps() {
  command -v nvidia-smi >/dev/null 2>&1 || return 1
  case "${CUDA_VISIBLE_DEVICES-unset}" in
    "" | -1) return 1 ;;
  esac
  local select=()
  [ "${CUDA_VISIBLE_DEVICES-unset}" = unset ] || select=(-i "$CUDA_VISIBLE_DEVICES")
  local caps
  caps="$(nvidia-smi "${select[@]}" --query-gpu=compute_cap --format=csv,noheader 2>/dev/null)" ||
    caps="$(nvidia-smi "${select[@]}" -L 2>/dev/null | grep -q '^GPU ' && echo unknown)" || return 1
  caps="$(printf '%s\n' "$caps" | tr -d ' \r' | grep -E '^([0-9]+\.[0-9]+|unknown)$' |
    sort -u -t. -k1,1n -k2,2n)" || return 1
  [ -n "$caps" ] && printf '%s\n' "$caps"
}

case "${cuda_mode:-}" in
  "")
    case "${FORCE_CUDA:-}" in
      1) cuda_mode=yes; cuda_reason="FORCE_CUDA=1" ;;
      0) cuda_mode=no; cuda_reason="FORCE_CUDA=0" ;;
      "") cuda_mode=auto ;;
      *) log "ERROR: FORCE_CUDA='$FORCE_CUDA': use 1 (CUDA ops) or 0 (CPU ops)"; exit 2 ;;
    esac ;;
  auto | yes | no) cuda_reason="--cuda $cuda_mode" ;;
  *) log "ERROR: --cuda '$cuda_mode' is unknown: use --cuda auto, yes or no"; exit 2 ;;
esac
gpu_caps=""
if [ "$cuda_mode" = auto ]; then
  if gpu_caps="$(visible_gpu_caps)"; then
    cuda_mode=yes
    cuda_reason="nvidia-smi lists visible GPUs of compute capability $(echo $gpu_caps | tr ' ' ,)"
  else
    cuda_mode=no
    cuda_reason="no visible GPU: nvidia-smi missing, failing or listing none"
  fi
fi
if [ "$cuda_mode" = yes ]; then
  if [ -n "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    archs="$TORCH_CUDA_ARCH_LIST"; archs_reason="TORCH_CUDA_ARCH_LIST"
  elif [ -n "$gpu_caps" ] && ! printf '%s\n' "$gpu_caps" | grep -q unknown; then
    archs="$(echo $gpu_caps | tr ' ' ';')"; archs_reason="the visible GPUs"
  else
    archs="$default_archs"; archs_reason="default: A100 sm_80, H100 and H200 sm_90"
  fi
  for arch in $(echo "$archs" | tr ';,' '  '); do
    case "$arch" in
      [0-6].* | 7.[0-4]*)
        log "ERROR: compute capability $arch is below 7.5, which CUDA 13 (torch 2.14.1+cu130)" \
          "no longer compiles for: set TORCH_CUDA_ARCH_LIST to 7.5 or newer, or use --cuda no"
        exit 2 ;;
    esac
  done
  export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$archs"
  log "mmcv ops: CUDA for TORCH_CUDA_ARCH_LIST=\"$archs\" ($archs_reason; $cuda_reason)"
else
  export FORCE_CUDA=0
  log "mmcv ops: CPU only ($cuda_reason)"
fi
log "stack: $stack, environment: $venv, interpreter for a new one: $python"
[ "$dry_run" = 1 ] && exit 0

if [ ! -x "$venv/bin/python" ]; then
  log "creating virtual environment $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-2}" CFLAGS="${CFLAGS:--g0}"
# mmcv's setup.py compiles CUDA ops whenever torch sees a GPU, whatever FORCE_CUDA says.
[ "$FORCE_CUDA" = 1 ] || export CUDA_VISIBLE_DEVICES=

# Points CUDA_HOME at a CUDA compiler of torch's CUDA major version: CUDA_HOME, nvcc on PATH or
# /usr/local/cuda, else requirements/cuda.txt installed into the environment (with the headers
# of torch's CUDA wheels beside it).
setup_cuda_toolchain() {
  local torch_cuda home version pinned found=""
  torch_cuda="$("$venv/bin/python" -c 'import torch; print(torch.version.cuda or "")')"
  if [ -z "$torch_cuda" ]; then
    log "ERROR: the installed torch is a CPU build: CUDA ops need torch's CUDA build" \
      "(requirements/build.txt), or run with --cuda no"
    exit 1
  fi
  for home in "${CUDA_HOME:-}" "$(dirname "$(dirname "$(command -v nvcc || echo /none/bin/nvcc)")")" \
    /usr/local/cuda; do
    # (a wrapper script on PATH can sit outside its toolkit: the headers must be there too)
    [ -n "$home" ] && [ -x "$home/bin/nvcc" ] && [ -f "$home/include/cuda_runtime.h" ] || continue
    version="$("$home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
    if [ "${version%%.*}" = "${torch_cuda%%.*}" ]; then
      found="$home"
      break
    fi
    log "note: $home/bin/nvcc is CUDA $version, torch is built with CUDA $torch_cuda: not used"
  done
  if [ -z "$found" ]; then
    pinned="$(sed -n "s/.*torch.version.cuda == '\([0-9.]*\)'.*/\1/p" "$root/requirements/cuda.txt")"
    if [ "$torch_cuda" != "$pinned" ]; then
      log "ERROR: no CUDA $torch_cuda compiler found and requirements/cuda.txt pins CUDA" \
        "$pinned: set CUDA_HOME to a CUDA $torch_cuda toolkit, or run with --cuda no"
      exit 1
    fi
    log "installing the CUDA $torch_cuda compiler into the environment (requirements/cuda.txt)"
    "${pip[@]}" install -q -r "$root/requirements/cuda.txt"
    found="$site/nvidia/cu${torch_cuda%%.*}"
  fi
  export CUDA_HOME="$found"
  log "CUDA compiler: $CUDA_HOME/bin/nvcc ($("$CUDA_HOME/bin/nvcc" --version | grep -o 'release [0-9.]*'))"
  # torch links the extension with -lcudart; the runtime wheels ship only libcudart.so.<major>.
  if [ ! -e "$CUDA_HOME/lib64/libcudart.so" ] && [ ! -e "$CUDA_HOME/lib/libcudart.so" ]; then
    mkdir -p "$venv/cuda-link"
    ln -sf "$(ls "$CUDA_HOME"/lib*/libcudart.so.[0-9]* | head -n 1)" "$venv/cuda-link/libcudart.so"
    export LIBRARY_PATH="$venv/cuda-link${LIBRARY_PATH:+:$LIBRARY_PATH}"
  fi
}

# Whether mmengine parses a config whose base is the scope's own `_base_/default_runtime.py`
# (mmdet, mmseg and mmpretrain all ship one).
base_config_resolves() {
  local probe
  probe="$(mktemp -d)"
  printf "_base_ = ['%s::_base_/default_runtime.py']\n" "$1" > "$probe/probe.py"
  if "$venv/bin/python" -c 'import sys; from mmengine.config import Config; Config.fromfile(sys.argv[1])' \
    "$probe/probe.py" >/dev/null 2>&1; then
    rm -rf "$probe"
    return 0
  fi
  rm -rf "$probe"
  return 1
}

# The C++20 wrappers for the host compiler and, in a CUDA build, nvcc (last -std wins / rewritten).
use_cxx20() {
  export CXX="$root/tools/misc/cxx20"
  [ "$FORCE_CUDA" = 1 ] && export PYTORCH_NVCC="$root/tools/misc/nvcc20"
  return 0
}

if [ "$stack" = upstream ]; then
  log "installing torch and build tools"
  "${pip[@]}" install -q -r "$root/requirements/build.txt"
  [ "$FORCE_CUDA" = 1 ] && setup_cuda_toolchain
  use_cxx20
  if [ "$FORCE_CUDA" = 1 ]; then
    log "installing the OpenMMLab stack (mmcv compiles once; with CUDA ops about 40 s of CPU per CUDA file" \
      "and two archs, 59 CUDA files)"
  else
    log "installing the OpenMMLab stack (mmcv compiles once, about 8 minutes on 2 cores)"
  fi
  "${pip[@]}" install -q --no-build-isolation \
    -r "$root/requirements/mminstall.txt" -r "$root/requirements/runtime.txt" \
    -r "$root/requirements/optional.txt" -r "$root/requirements/tests.txt" \
    -r "$root/requirements/docs.txt"
  mmcv_pin=mmcv==2.1.0
else
  log "installing torch and build tools (setuptools uncapped until a probe asks for <81)"
  grep -v '^setuptools' "$root/requirements/build.txt" > "$venv/build-onedl.txt"
  "${pip[@]}" install -q -r "$venv/build-onedl.txt" 'setuptools>=77.0.3'
  [ "$FORCE_CUDA" = 1 ] && setup_cuda_toolchain
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
    log "probe: torch's headers refuse C++17 and $mmcv_pin asks for it: compiling with" \
      "tools/misc/cxx20 (and tools/misc/nvcc20)"
    use_cxx20
  fi
  rm -rf "$sdist"
  # The upstream names of the fork's packages are left out (they would install a second copy).
  grep -hvE '^(mmcv|mmengine|mmdet|mmsegmentation|mmpretrain)([=<>~ ]|$)' \
    "$root/requirements/runtime.txt" "$root/requirements/optional.txt" \
    "$root/requirements/tests.txt" "$root/requirements/docs.txt" > "$venv/rest-onedl.txt"
  log "installing the onedl OpenMMLab stack (onedl-mmcv compiles once)"
  "${pip[@]}" install -q --no-build-isolation -r "$root/requirements/onedl.txt" -r "$venv/rest-onedl.txt"
  if grep -rqlE '^\s*(import|from) pkg_resources' \
      "$site"/{mmcv,mmengine,mmdet,mmseg,mmpretrain} 2>/dev/null; then
    log "probe: the installed OpenMMLab code imports pkg_resources: installing setuptools<81"
    "${pip[@]}" install -q 'setuptools>=77.0.3,<81'
  fi
  # mmengine resolves `mmseg::` configs through the distribution `mmsegmentation`; the fork's is
  # `onedl-mmsegmentation` (same module mmseg). Where that fails, a metadata-only distribution
  # `mmsegmentation` is installed that names the fork as its provider.
  if ! base_config_resolves mmseg; then
    version="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("onedl-mmsegmentation"))')"
    log "probe: mmengine cannot resolve mmseg:: configs: installing the alias distribution" \
      "mmsegmentation $version (requires onedl-mmsegmentation==$version, top level mmseg)"
    "$venv/bin/python" "$root/tools/misc/alias_dist.py" mmsegmentation onedl-mmsegmentation mmseg
  fi
  for scope in mmdet mmseg mmpretrain; do
    base_config_resolves "$scope" ||
      { log "ERROR: mmengine cannot resolve $scope:: configs on this stack"; exit 1; }
  done
fi

compiled_cuda() {
  "$venv/bin/python" -c 'from mmcv.ops import get_compiling_cuda_version as v; print(v())' 2>/dev/null
}
check_ops() {
  "$venv/bin/python" -c 'from mmcv.ops import nms, RoIAlign' 2>/dev/null || return 1
  [ "$FORCE_CUDA" = 0 ] || [ "$(compiled_cuda)" != "not available" ]
}
if ! check_ops; then
  log "mmcv has no compiled ops or no CUDA ops (a cached wheel of another build?): rebuilding it"
  "${pip[@]}" cache remove "${mmcv_pin%%=*}" >/dev/null 2>&1 || true
  "${pip[@]}" install -q --no-build-isolation --no-cache-dir --force-reinstall --no-deps "$mmcv_pin"
  check_ops || { log "ERROR: 'from mmcv.ops import nms, RoIAlign' still fails or has no CUDA ops"; exit 1; }
fi
cuda_built="$(compiled_cuda)"
if [ "$cuda_built" = "not available" ]; then
  log "built: mmcv ops for the CPU only"
else
  ext="$("$venv/bin/python" -c 'import mmcv._ext as e; print(e.__file__)')"
  archs_built="TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-unknown}"
  if [ -x "${CUDA_HOME:-/none}/bin/cuobjdump" ]; then
    archs_built="$("$CUDA_HOME/bin/cuobjdump" --list-elf "$ext" | grep -o 'sm_[0-9a-z]*' | sort -u | tr '\n' ' ')"
  fi
  log "built: mmcv ops for the CPU and CUDA $cuda_built (${archs_built% }), $ext"
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
