#!/usr/bin/env bash
# Prepare .devcarry/ (ignored) in the repository root for benchmarks/gpu.sh on a GPU machine without a
# package index: wheels for CPython 3.12 / manylinux x86_64, cuEquivariance unpacked and xz-compressed
# (its two wheels are 73 MB, over the 64 MB a device call carries), and 10 aspirin frames.
#
#   bash benchmarks/gpu_carry.sh [path/to/rmd17_aspirin_train_01.npz]
set -eu
C=.devcarry
PIP=${PIP:-python3 -m pip}
DATA=${1:-../shared/data/rmd17/rmd17_aspirin_train_01.npz}
mkdir -p $C/whl $C/mace /tmp/equivar_cueq_whl
P="--no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d"
PLAT="--platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64"
$PIP download $P $C/whl $PLAT ase vesin platformdirs
$PIP download $P $C/mace $PLAT mace-torch==0.3.16 e3nn==0.4.4 torch-ema prettytable wcwidth matscipy configargparse GitPython gitdb smmap lmdb orjson
$PIP wheel --no-deps -w $C/mace python-hostlist
if [ ! -f $C/cueq.tar.xz ]; then
  $PIP download $P /tmp/equivar_cueq_whl $PLAT cuequivariance==0.13.0 cuequivariance-torch==0.13.0 cuequivariance-ops-cu13==0.13.0 cuequivariance-ops-torch-cu13==0.13.0
  rm -rf /tmp/equivar_cueq_site && mkdir /tmp/equivar_cueq_site
  for f in /tmp/equivar_cueq_whl/*.whl; do python3 -m zipfile -e "$f" /tmp/equivar_cueq_site; done
  rm -f /tmp/equivar_cueq_site/cuequivariance_ops/triton/cache/*.json  # precompiled tuning tables of another op
  tar -C /tmp/equivar_cueq_site -cf - . | xz -6 -T2 >$C/cueq.tar.xz
fi
python3 - "$DATA" <<'PY'
import sys, numpy as np
d = np.load(sys.argv[1])
np.savez(".devcarry/aspirin.npz", **{k: (d[k][:10] if d[k].ndim and d[k].shape[0] == 1000 else d[k]) for k in d.files})
PY
du -sh $C
