#!/usr/bin/env bash
# The device run of benchmarks/gpu.py: installs the carried packages, then checks and benchmarks.
#
#   bash benchmarks/gpu.sh OUT [gpu.py flags, e.g. --budget-s 240]
#
# Carried packages (prepared here by benchmarks/gpu_carry.sh into the ignored folder .devcarry/):
#   .devcarry/whl/*.whl   packages equivar needs that the GPU image lacks (ase, vesin, platformdirs)
#   .devcarry/cueq.tar.xz cuequivariance(-torch, -ops-torch-cu13) 0.13.0, unpacked (its wheels are > 64 MB)
#   .devcarry/mace/*.whl  mace-torch 0.3.16 with e3nn 0.4.4 and its other needs (its own path: the
#                         equivar side benchmarks against the image's e3nn)
#   .devcarry/aspirin.npz the first frames of rMD17 aspirin (train split 01)
# Writes OUT/gpu.json, OUT/gpu.md, OUT/gpu.log, OUT/nvidia-smi.txt, OUT/sanitizer.txt.
set -u
OUT=${1:?usage: gpu.sh OUT [flags]}
shift
C=${EQUIVAR_CARRY:-.devcarry}
PY=${PYTHON:-python3}
SITE=/tmp/equivar_site
MACE=/tmp/equivar_mace
mkdir -p "$OUT" "$SITE" "$MACE"
t0=$(date +%s)
pipi() { "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$@"; }
ls "$C"/whl/*.whl >/dev/null 2>&1 && pipi "$SITE" "$C"/whl/*.whl
[ -f "$C/cueq.tar.xz" ] && tar -C "$SITE" -xJf "$C/cueq.tar.xz"
ls "$C"/mace/*.whl >/dev/null 2>&1 && pipi "$MACE" "$C"/mace/*.whl
echo "install: $(( $(date +%s) - t0 )) s"
# cuEquivariance's libcue_ops.so finds libnvrtc & co. by name: put the image's nvidia/* wheel libraries on the path
NV=$("$PY" -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(p) for r in nvidia.__path__ for p in glob.glob(os.path.join(r, "**", "lib*.so*"), recursive=True)})))' 2>/dev/null)
export LD_LIBRARY_PATH="${NV}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv >"$OUT/nvidia-smi.txt" 2>&1
MACE_FLAGS=()
[ -d "$MACE/mace" ] && MACE_FLAGS=(--mace-python "$PY" --mace-path "$MACE:$SITE")
DATA=()
[ -f "$C/aspirin.npz" ] && DATA=(--data "$C/aspirin.npz")
PYTHONPATH="$PWD/src:$SITE" PYTHONUNBUFFERED=1 "$PY" -u benchmarks/gpu.py "$OUT" "${MACE_FLAGS[@]}" "${DATA[@]}" "$@" 2>&1 | tee "$OUT/gpu.log"
# out-of-bounds accesses and races in the Triton kernels (first runs on a GPU): compute-sanitizer on a small
# workload, bounded; skipped with GPU_SANITIZE=0 or where the tool is missing
if [ "${GPU_SANITIZE:-1}" != 0 ] && command -v compute-sanitizer >/dev/null; then
  PYTHONPATH="$PWD/src:$SITE" timeout "${GPU_SANITIZE_S:-90}" compute-sanitizer --tool memcheck --target-processes all \
    "$PY" benchmarks/_gpu_sanitize.py >"$OUT/sanitizer.txt" 2>&1
  echo "compute-sanitizer: exit $? (OUT/sanitizer.txt)"; tail -5 "$OUT/sanitizer.txt"
fi
