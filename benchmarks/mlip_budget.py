#!/usr/bin/env python
"""Accuracy at equal CPU budget: equivar vs mace-torch 0.3.16 (default: rMD17 ethanol, split 01).

Both packages train the same scaled-down MACE (32 channels, max_L 1, max_ell 3,
correlation 3, 2 interactions, r_max 5 Å, 8 Bessel functions, p = 5, radial
MLP [64, 64, 64], batch 5, float32, AMSGrad lr 0.01, E:F weights 1:1000,
EMA 0.99, ReduceLROnPlateau 50/0.8, gradient clipping 10, weight decay 0) on
the same 95/5 train/valid split of the training file (default
``rmd17_ethanol_train_01.npz``: 950/50; equivar's seeded ``random_split``,
seed 0), each through its own command line tool, with
1 torch thread, at the same time (pinned to different cores when two are
available), for ``--budget-s`` CPU-seconds of training each. The final models
(EMA weights of the best validation epoch, as each package saves them) are
then evaluated on the test file (default the 1000 frames of
``rmd17_ethanol_test_01.npz``), and the MAEs are computed here, the same way
for both, against the test file's labels.

Data (``--train``, ``--test``): rMD17 ``.npz`` (keys ``nuclear_charges``,
``coords``, ``energies``, ``forces`` in kcal/mol) or anything ASE reads
(extxyz: energies in eV under ``--energy-key``, forces in eV/Å under
``--forces-key``; e.g. BOTNet's 3BPA). Test frames that also occur in the
training file (same elements and positions to 1e-6 Å) are left out of the
test errors, and the output says how many. ``--name`` labels the table and
the JSON (default: from the training file's name).

Budget rule, the same on both sides: process CPU seconds (all threads) spent
inside the per-epoch training loops (loader, forward, loss, backward,
clipping, optimizer, EMA), excluding start-up, per-epoch validation and
checkpoint writing. Training stops after the step that crosses the budget;
the partial epoch is then validated as usual and the best-validation model
is kept.
- equivar: ``equivar train -c configs/rmd17_ethanol.yaml --set
  training.max_cpu_s=B`` (the trainer's own accounting, checked after each
  step). If the installed equivar has no ``max_cpu_s``, ``max_time_s=B``
  (wall-clock seconds of training steps) is used instead and the output says so.
- mace-torch: ``mace_run_train`` (its ``main()``, run through a small wrapper
  in mace's interpreter that only adds accounting around
  ``mace.tools.train.train_one_epoch`` and a clean stop). This script reads
  the process's CPU time from ``/proc/<pid>/stat``, subtracts what was spent
  outside the training loops (reported by the wrapper in a status file), and
  sends SIGINT once the budget is used; the wrapper then stops before the
  next step, mace validates the partial epoch, and its own end-of-training
  code loads the latest checkpoint (the best validation loss so far, saved
  with the EMA weights) and writes ``mace.model``, which
  ``mace_eval_configs`` evaluates on the test set.

The data are converted to extxyz (kcal/mol x 0.0433641 = eV) in a temporary
directory, never inside the repository. E0s: least squares on the 950
training frames on both sides (mace ``--E0s average``; equivar
``e0s: least_squares``, minimum-norm, the same fit). Stage two (MACE's
``--swa``; in equivar's config as ``stage_two_start``) is off on both sides;
``--equivar-stage-two`` keeps it on the equivar side only (then the recipes
differ, and the output says so).

    python3.11 -m venv /tmp/macevenv && /tmp/macevenv/bin/pip install torch==2.13.0 mace-torch==0.3.16
    .venv/bin/python benchmarks/mlip_budget.py --budget-s 1800 --json budget.json
    .venv/bin/python benchmarks/mlip_budget.py --budget-s 60        # quick end-to-end check (~4 min)
    .venv/bin/python benchmarks/mlip_budget.py --name rmd17_aspirin_01 \
        --train ../shared/data/rmd17/rmd17_aspirin_train_01.npz --test ../shared/data/rmd17/rmd17_aspirin_test_01.npz
    .venv/bin/python benchmarks/mlip_budget.py --name 3bpa_300K \
        --train ../shared/data/botnet/3bpa/train_300K.xyz --test ../shared/data/botnet/3bpa/test_300K.xyz
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "rmd17")
TRAIN_FILE = os.path.join(DATA, "rmd17_ethanol_train_01.npz")
TEST_FILE = os.path.join(DATA, "rmd17_ethanol_test_01.npz")
CONFIG = os.path.join(ROOT, "configs", "rmd17_ethanol.yaml")
KCAL = 0.0433641  # eV per kcal/mol (DESIGN.md, ../shared/data/README)
SEED = 0
VALID_FRACTION = 0.05
BATCH = 5
CLK_TCK = os.sysconf("SC_CLK_TCK")

MACE_ARGS = [
    "--name",
    "mace",
    "--seed",
    str(SEED),
    "--device",
    "cpu",
    "--default_dtype",
    "float32",
    "--energy_key",
    "REF_energy",
    "--forces_key",
    "REF_forces",
    "--E0s",
    "average",
    "--model",
    "MACE",
    "--num_channels",
    "32",
    "--max_L",
    "1",
    "--max_ell",
    "3",
    "--correlation",
    "3",
    "--num_interactions",
    "2",
    "--r_max",
    "5.0",
    "--num_radial_basis",
    "8",
    "--num_cutoff_basis",
    "5",
    "--radial_MLP",
    "[64, 64, 64]",
    "--batch_size",
    str(BATCH),
    "--valid_batch_size",
    "10",
    "--optimizer",
    "adam",
    "--amsgrad",
    "--lr",
    "0.01",
    "--weight_decay",
    "0.0",
    "--energy_weight",
    "1.0",
    "--forces_weight",
    "1000.0",
    "--loss",
    "weighted",
    "--ema",
    "--ema_decay",
    "0.99",
    "--scheduler",
    "ReduceLROnPlateau",
    "--lr_factor",
    "0.8",
    "--scheduler_patience",
    "50",
    "--clip_grad",
    "10.0",
    "--error_table",
    "PerAtomMAE",
    "--eval_interval",
    "1",
    "--max_num_epochs",
    "100000",
    "--patience",
    "100000",
    "--plot",
    "False",
    "--save_cpu",
]

# Runs in mace's interpreter: mace_run_train's main() with CPU accounting around the training loops and a
# clean stop on SIGINT (before the next training step). Nothing else about mace's training is changed.
MACE_WRAPPER = r"""
import json, logging, os, signal, sys, time
import torch
torch.set_num_threads(1)
torch.set_num_interop_threads(1)
import mace.tools as tools_pkg
T = sys.modules["mace.tools.train"]
STATUS = os.environ["MLIP_BUDGET_STATUS"]
st = {"done_cpu": 0.0, "entry_cpu": None, "train_wall": 0.0, "steps": 0, "epochs_done": 0, "stopped": False,
      "first_step_wall": None, "stop_wall": None}
flag = {"stop": False}

def write():
    with open(STATUS + ".tmp", "w") as f:
        json.dump(st, f)
    os.replace(STATUS + ".tmp", STATUS)

class Stop(Exception):
    pass

def on_sigint(signum, frame):
    flag["stop"] = True

signal.signal(signal.SIGINT, on_sigint)
orig_step, orig_epoch, orig_train = T.take_step, T.train_one_epoch, T.train

def take_step(*a, **k):
    if flag["stop"]:
        raise Stop
    if st["first_step_wall"] is None:
        st["first_step_wall"] = time.time()
    out = orig_step(*a, **k)
    st["steps"] += 1
    return out

def train_one_epoch(*a, **k):
    if st["stopped"]:
        raise Stop
    c0, w0 = time.process_time(), time.perf_counter()
    st["entry_cpu"] = c0
    write()
    stopped = False
    try:
        orig_epoch(*a, **k)
    except Stop:
        stopped = True
    finally:
        st["done_cpu"] += time.process_time() - c0
        st["train_wall"] += time.perf_counter() - w0
        st["entry_cpu"] = None
        if stopped:
            st["stopped"], st["stop_wall"] = True, time.time()
            logging.info(f"CPU budget used: stopped after {st['steps']} steps; validating this last partial epoch")
        else:
            st["epochs_done"] += 1
        write()

def train(*a, **k):
    try:
        return orig_train(*a, **k)
    except Stop:
        logging.info("Training stopped by the CPU budget")

T.take_step, T.train_one_epoch, tools_pkg.train = take_step, train_one_epoch, train
write()
sys.argv = ["mace_run_train"] + sys.argv[1:]
from mace.cli.run_train import main
main()
"""


# ---- data ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Frames:
    """Labelled frames in eV and Å: ``z[i]`` (n_i,) int, ``pos[i]`` (n_i, 3), ``energy`` (n_frames,), ``forces[i]``
    (n_i, 3); ``path`` the file they came from."""

    path: str
    z: list
    pos: list
    energy: np.ndarray
    forces: list

    def __len__(self) -> int:
        return len(self.energy)


class DataError(ValueError):
    """A data file this benchmark cannot use (one line naming the file, frame or key)."""


def load_frames(path: str, energy_key: str = "energy", forces_key: str = "forces") -> Frames:
    """Read an rMD17 ``.npz`` (kcal/mol -> eV with ``KCAL``) or an ASE-readable file (extxyz; energies in eV under
    ``energy_key``, forces in eV/Å under ``forces_key``, from ``atoms.info``/``atoms.arrays`` or, where ASE moved
    them there, the attached calculator's results).

    Raises
    ------
    DataError
        One line naming the file (missing, unreadable, empty) or the frame and key (label missing, wrong shape,
        isolated-atom frame in a file used here).
    """
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a regular file")
    if path.endswith(".npz"):
        try:
            npz = np.load(path)
            missing = [k for k in ("nuclear_charges", "coords", "energies", "forces") if k not in npz.files]
            if not missing:
                z, coords = np.asarray(npz["nuclear_charges"], dtype=int), np.asarray(npz["coords"], dtype=np.float64)
                e = np.asarray(npz["energies"], dtype=np.float64) * KCAL
                f = np.asarray(npz["forces"], dtype=np.float64) * KCAL
        except (OSError, ValueError) as err:
            raise DataError(f"{path}: cannot read as .npz ({err})") from None
        if missing:
            raise DataError(
                f"{path}: no key {missing[0]!r} (rMD17 npz files have nuclear_charges, coords, energies, forces)"
            )
        if (
            coords.ndim != 3
            or coords.shape[1:] != (len(z), 3)
            or f.shape != coords.shape
            or e.shape != coords.shape[:1]
        ):
            raise DataError(
                f"{path}: inconsistent shapes: nuclear_charges {z.shape}, coords {coords.shape}, "
                f"energies {e.shape}, forces {f.shape}"
            )
        out = Frames(path, [z] * len(e), list(coords), e, list(f))
    else:
        import ase.io

        try:
            frames = ase.io.read(path, ":")
        except Exception as err:  # noqa: BLE001 - ASE raises many types for unreadable files
            raise DataError(f"{path}: cannot read with ase.io.read ({type(err).__name__}: {err})") from None
        es, fs = [], []
        for i, a in enumerate(frames):
            res = a.calc.results if a.calc is not None else {}
            e = a.info.get(energy_key, res.get(energy_key))
            f = a.arrays.get(forces_key, res.get(forces_key))
            if len(a) == 1 or a.info.get("config_type") == "IsolatedAtom":
                raise DataError(
                    f"{path}: frame {i} is an isolated atom; this benchmark fits E0s by least squares on both "
                    "sides: remove isolated-atom frames from the file"
                )
            if e is None:
                raise DataError(f"{path}: frame {i} has no energy under key {energy_key!r} (--energy-key)")
            if f is None:
                raise DataError(f"{path}: frame {i} has no forces under key {forces_key!r} (--forces-key)")
            f = np.asarray(f, dtype=np.float64)
            if f.shape != (len(a), 3):
                raise DataError(
                    f"{path}: frame {i}: forces {forces_key!r} have shape {f.shape}, expected ({len(a)}, 3)"
                )
            es.append(float(e))
            fs.append(f)
        zs = [np.asarray(a.numbers, dtype=int) for a in frames]
        out = Frames(path, zs, [np.asarray(a.positions, dtype=np.float64) for a in frames], np.array(es), fs)
    if len(out) == 0:
        raise DataError(f"{path}: no frames")
    bad = [i for i in range(len(out)) if not (np.isfinite(out.energy[i]) and np.isfinite(out.forces[i]).all())]
    if bad:
        raise DataError(f"{path}: frame {bad[0]} has a non-finite energy or force label")
    return out


def frame_key(z, pos) -> bytes:
    """Identity of a frame for the train/test overlap check: its elements and positions rounded to 1e-6 Å."""
    return np.asarray(z, dtype=np.int64).tobytes() + np.round(np.asarray(pos, dtype=np.float64), 6).tobytes()


def held_out_test_indices(train: Frames, test: Frames) -> np.ndarray:
    """Indices of the test frames that do not occur in the training file (same elements, positions to 1e-6 Å)."""
    seen = {frame_key(z, p) for z, p in zip(train.z, train.pos)}
    return np.array([i for i in range(len(test)) if frame_key(test.z[i], test.pos[i]) not in seen], dtype=int)


def write_xyz(path, data: Frames, idx):
    import ase.io
    from ase import Atoms

    frames = []
    for i in idx:
        a = Atoms(numbers=data.z[i], positions=data.pos[i], pbc=False)
        a.info["REF_energy"] = float(data.energy[i])
        a.arrays["REF_forces"] = np.array(data.forces[i])
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")


def default_name(train_path: str) -> str:
    """A dataset label from the training file's name: ``rmd17_ethanol_train_01.npz`` -> ``rmd17_ethanol_01``;
    ``3bpa/train_300K.xyz`` -> ``3bpa_300K`` (a name that starts with ``train`` gets its folder's name)."""
    stem = os.path.splitext(os.path.basename(train_path))[0]
    if stem.lower().startswith("train"):
        folder = os.path.basename(os.path.dirname(os.path.abspath(train_path)))
        stem = folder + stem[len("train") :]
    return re.sub(r"_train(?=_|$)", "", stem) or "data"


def split_indices(n):
    """The train/valid indices equivar's trainer uses (``random_split(..., 0.05, seed)``)."""
    from equivar.data import random_split

    train, valid = random_split(list(range(n)), VALID_FRACTION, SEED)
    return train, valid


# ---- processes -------------------------------------------------------------------------------
def proc_cpu(pid):
    """utime + stime of a live process in seconds (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


class Child:
    def __init__(self, name, cmd, log, env, cpu=None, cwd=ROOT):
        self.name, self.t0 = name, time.time()
        self.log = open(log, "w")
        pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.p = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd, preexec_fn=pre, start_new_session=True
        )
        self.pid = self.p.pid
        self.rc = None
        self.cpu_total = None  # from wait4's rusage: the whole process, start-up and final evaluation included
        self.wall = None
        self.last_cpu = 0.0

    def poll(self):
        if self.rc is not None:
            return self.rc
        c = proc_cpu(self.pid)
        if c is not None:
            self.last_cpu = c
        pid, status, ru = os.wait4(self.pid, os.WNOHANG)
        if pid == self.pid:
            self.rc = os.waitstatus_to_exitcode(status)
            self.p.returncode = self.rc
            self.cpu_total = ru.ru_utime + ru.ru_stime
            self.wall = time.time() - self.t0
            self.log.close()
        return self.rc

    def kill(self, sig=signal.SIGTERM):
        if self.rc is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ---- errors ----------------------------------------------------------------------------------
def errors(e_pred, f_pred, data: Frames, keep):
    """Test errors against ``data``'s labels over the frames ``keep``: E MAE and RMSE in meV/atom (each frame's
    error divided by its atom count), E MAE meV per structure, F MAE and RMSE in meV/Å over Cartesian components."""
    keep = np.asarray(keep, dtype=int)
    n = np.array([len(data.z[i]) for i in keep], dtype=np.float64)
    de = np.asarray(e_pred, dtype=np.float64)[keep] - data.energy[keep]
    df = np.concatenate([np.asarray(f_pred[i], dtype=np.float64) - data.forces[i] for i in keep]).ravel()
    return {
        "n": int(len(keep)),
        "e_mae_mev_per_atom": 1e3 * float(np.mean(np.abs(de) / n)),
        "e_mae_mev": 1e3 * float(np.mean(np.abs(de))),
        "e_rmse_mev_per_atom": 1e3 * float(np.sqrt(np.mean((de / n) ** 2))),
        "f_mae_mev_per_a": 1e3 * float(np.mean(np.abs(df))),
        "f_rmse_mev_per_a": 1e3 * float(np.sqrt(np.mean(df**2))),
    }


def read_predictions(path, n_expected, energy_key=None, forces_key=None):
    import ase.io

    frames = ase.io.read(path, ":")
    if len(frames) != n_expected:
        raise RuntimeError(f"{path}: {len(frames)} frames, expected {n_expected}")
    if energy_key:
        e = [a.info[energy_key] for a in frames]
        f = [a.arrays[forces_key] for a in frames]
    else:
        e = [a.get_potential_energy() for a in frames]
        f = [a.get_forces() for a in frames]
    return np.array(e), f


# ---- main ------------------------------------------------------------------------------------
def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=1800.0, help="CPU-seconds of training per side (default 1800)")
    p.add_argument(
        "--train", default=TRAIN_FILE, help="training file, rMD17 .npz or extxyz (default: rMD17 ethanol 01)"
    )
    p.add_argument("--test", default=TEST_FILE, help="test file, rMD17 .npz or extxyz (default: rMD17 ethanol 01)")
    p.add_argument("--name", default=None, help="dataset label for the table and JSON (default: from --train)")
    p.add_argument("--energy-key", default="energy", help="extxyz energy key, eV (default energy)")
    p.add_argument("--forces-key", default="forces", help="extxyz forces key, eV/Å (default forces)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.add_argument("--mace-python", default="/tmp/macevenv/bin/python", help="interpreter with mace-torch 0.3.16")
    p.add_argument("--workdir", default=None, help="keep runs and logs here (default: a temporary directory, removed)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the two trainings to different cores")
    p.add_argument("--poll-s", type=float, default=0.25, help="how often the CPU times are read")
    p.add_argument(
        "--equivar-stage-two",
        action="store_true",
        help="keep the config's stage two on the equivar side (default: off on both sides, the same recipe)",
    )
    a = p.parse_args(argv)
    if not a.budget_s > 0:
        raise SystemExit(f"--budget-s must be > 0, got {a.budget_s}")
    from equivar._paths import check_output_file

    try:  # before any measurement: an existing results file is not replaced by accident
        check_output_file(a.json, "--json", overwrite=a.overwrite)
    except ValueError as e:
        raise SystemExit(f"error: {e}") from None
    try:  # read and check the data before anything is created or started
        train, test = (load_frames(os.path.abspath(f), a.energy_key, a.forces_key) for f in (a.train, a.test))
    except DataError as err:
        raise SystemExit(f"error: {err}") from None
    if not os.path.isfile(a.mace_python):
        raise SystemExit(
            f"{a.mace_python} not found; build it with:\n  python3.11 -m venv /tmp/macevenv && "
            "/tmp/macevenv/bin/pip install torch==2.13.0 mace-torch==0.3.16"
        )
    from equivar.train import TrainingConfig

    fields = {f.name for f in dataclasses.fields(TrainingConfig)}
    budget = float(a.budget_s)
    tmp = a.workdir or tempfile.mkdtemp(prefix="mlip_budget_")
    os.makedirs(tmp, exist_ok=True)
    if os.path.abspath(tmp).startswith(os.path.abspath(ROOT) + os.sep):
        raise SystemExit("--workdir must be outside the repository (no data inside it)")
    notes = []
    try:
        result = run(a, budget, tmp, fields, notes, train, test)
    finally:
        if a.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    report(result, a.json)


def run(a, budget, tmp, fields, notes, train: Frames, test: Frames) -> dict:
    import torch

    name = a.name or default_name(a.train)
    keep = held_out_test_indices(train, test)
    if len(keep) == 0:
        raise SystemExit(f"error: every frame of --test {a.test} also occurs in --train {a.train}")
    if len(keep) < len(test):
        notes.append(
            f"{len(test) - len(keep)} of the {len(test)} test frames also occur in the training file "
            "(same elements and positions): left out of the test errors"
        )
    tr_idx, va_idx = split_indices(len(train))
    steps_per_epoch = -(-len(tr_idx) // BATCH)
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir)
    paths = {k: os.path.join(data_dir, f"{k}.xyz") for k in ("train", "valid", "test")}
    write_xyz(paths["train"], train, tr_idx)
    write_xyz(paths["valid"], train, va_idx)
    write_xyz(paths["test"], test, range(len(test)))

    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OMP_WAIT_POLICY": "PASSIVE",
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
    }
    cpus = sorted(os.sched_getaffinity(0))
    pin = (cpus[0], cpus[1]) if len(cpus) >= 2 and not a.no_pin else (None, None)

    eq_dir = os.path.join(tmp, "equivar")
    budget_key = "max_cpu_s" if "max_cpu_s" in fields else "max_time_s"
    if budget_key != "max_cpu_s":
        notes.append(
            "equivar has no training.max_cpu_s: its budget was max_time_s (wall-clock seconds of "
            "training steps), not CPU seconds"
        )
    eq_cmd = [
        sys.executable,
        "-m",
        "equivar",
        "train",
        "-c",
        CONFIG,
        "--set",
        f"output_dir={eq_dir}",
        "--set",  # the data: the files given (JSON strings: any path stays a string in the YAML override)
        f"data.train_file={json.dumps(train.path)}",
        "--set",
        f"data.test_files={json.dumps({'test': test.path})}",
        "--set",
        f"data.energy_key={json.dumps(a.energy_key)}",
        "--set",
        f"data.forces_key={json.dumps(a.forces_key)}",
        "--set",
        "num_threads=1",
        "--set",
        "progress=false",
        "--set",
        "training.epochs=100000",
        "--set",
        f"training.{budget_key}={budget}",
    ]
    if "stage_two_start" in fields:
        if a.equivar_stage_two:
            notes.append(
                "equivar ran the config's stage two (last part of the budget at E:F 1000:100, lr 1e-3); "
                "mace-torch did not (no --swa): not the same recipe"
            )
        else:
            eq_cmd += ["--set", "training.stage_two_start=null"]
    mace_dir = os.path.join(tmp, "mace")
    os.makedirs(mace_dir)
    wrapper = os.path.join(tmp, "mace_budget_wrapper.py")
    with open(wrapper, "w") as f:
        f.write(MACE_WRAPPER)
    status_path = os.path.join(mace_dir, "budget_status.json")
    mace_cmd = [
        a.mace_python,
        "-W",
        "ignore",
        wrapper,
        "--work_dir",
        mace_dir,
        "--train_file",
        paths["train"],
        "--valid_file",
        paths["valid"],
    ] + MACE_ARGS
    print(
        f"{name}: {len(tr_idx)} train / {len(va_idx)} valid / {len(keep)} test"
        + (f" (of {len(test)})" if len(keep) < len(test) else "")
        + "; "
        f"budget {budget:.0f} CPU-s of training per side, 1 thread each, concurrent"
        + (f" (equivar on CPU {pin[0]}, mace-torch on CPU {pin[1]})" if pin[0] is not None else ""),
        flush=True,
    )
    print(f"work directory: {tmp}", flush=True)

    t_start = time.time()
    eq = Child("equivar", eq_cmd, os.path.join(tmp, "equivar.log"), env, pin[0])
    mc = Child("mace", mace_cmd, os.path.join(tmp, "mace.log"), {**env, "MLIP_BUDGET_STATUS": status_path}, pin[1])
    mace_signalled, mace_train_cpu_at_signal, eq_killed = None, None, False
    eq_safety = 1.5 * budget + 600.0  # a run that ignores its budget (it should not happen) is killed
    last_print = time.time()
    try:
        while True:
            running = [c.poll() is None for c in (eq, mc)]  # poll both (no short-circuit)
            if not any(running):
                break
            st = read_json(status_path)
            mc_train_cpu = None
            if st is not None and mc.rc is None:
                now = proc_cpu(mc.pid)
                if now is not None:
                    mc_train_cpu = st["done_cpu"] + (now - st["entry_cpu"] if st["entry_cpu"] is not None else 0.0)
                    if mace_signalled is None and mc_train_cpu >= budget:
                        mc.kill(signal.SIGINT)
                        mace_signalled, mace_train_cpu_at_signal = time.time(), mc_train_cpu
                        print(
                            f"  mace-torch: {mc_train_cpu:.1f} training CPU-s used -> SIGINT "
                            f"({time.time() - t_start:.0f} s wall)",
                            flush=True,
                        )
            if eq.rc is None and not eq_killed and eq.last_cpu > eq_safety:
                eq.kill()
                eq_killed = True
                notes.append(f"equivar was killed at {eq.last_cpu:.0f} process CPU-s: it did not stop at its budget")
            if time.time() - last_print > 60:
                last_print = time.time()
                msg = f"  [{time.time() - t_start:5.0f} s] equivar CPU {eq.last_cpu:.0f} s" + (
                    " (done)" if eq.rc is not None else ""
                )
                msg += f"; mace-torch CPU {mc.last_cpu:.0f} s" + (
                    f", training {mc_train_cpu:.0f} s, {st['epochs_done']} epochs done"
                    if mc_train_cpu is not None
                    else ""
                )
                print(msg + (" (done)" if mc.rc is not None else ""), flush=True)
            time.sleep(a.poll_s)
    except BaseException:
        eq.kill(signal.SIGKILL)
        mc.kill(signal.SIGKILL)
        raise
    print(
        f"both trainings finished after {time.time() - t_start:.0f} s wall (equivar {eq.wall:.0f} s, rc {eq.rc}; "
        f"mace-torch {mc.wall:.0f} s, rc {mc.rc})",
        flush=True,
    )

    out = {
        "dataset": name,
        "train_file": os.path.relpath(train.path, ROOT),
        "test_file": os.path.relpath(test.path, ROOT),
        "budget_cpu_s": budget,
        "budget_rule": "process CPU seconds inside the training loops (start-up, validation and checkpoints excluded)",
        "equivar_budget_option": f"training.{budget_key}",
        "threads": 1,
        "pinned_cpus": list(pin) if pin[0] is not None else None,
        "equivar_stage_two": bool(a.equivar_stage_two and "stage_two_start" in fields),
        "mace_stage_two": False,
        "n_train": len(tr_idx),
        "n_valid": len(va_idx),
        "n_test": int(len(keep)),
        "n_test_file": len(test),
        "steps_per_epoch": steps_per_epoch,
        "torch_equivar_side": torch.__version__,
        "notes": notes,
    }

    # ---- equivar: the trainer's own accounting (metrics.csv), predictions written by its final report
    e = {"rc": eq.rc, "process_cpu_s": eq.cpu_total, "process_wall_s": eq.wall}
    rows = []
    try:
        with open(os.path.join(eq_dir, "metrics.csv")) as f:
            rows = list(csv.DictReader(f))
    except OSError:
        pass
    if rows:
        last = rows[-1]
        e.update(
            train_cpu_s=float(last["cpu_s"]),
            train_wall_s=float(last["time_s"]),
            steps=int(last["step"]),
            epochs_started=int(last["epoch"]),
        )
        e["epochs"] = e["steps"] / steps_per_epoch
    log = tail(os.path.join(tmp, "equivar.log"), 200)
    m = re.findall(r"^(.*budget of .* reached)\s*$", log, re.M)
    e["stop_reason"] = m[-1].strip() if m else None
    try:
        from equivar.train._checkpoint import load_checkpoint

        e["selected_epoch"] = int(load_checkpoint(os.path.join(eq_dir, "model.pt"))["metadata"]["epoch"])
    except Exception:  # noqa: BLE001
        e["selected_epoch"] = None
    pred = os.path.join(eq_dir, "predictions_test.xyz")
    if eq.rc == 0 and os.path.isfile(pred):
        e["test"] = errors(*read_predictions(pred, len(test)), test, keep)
    else:
        e["error"] = f"equivar run failed (rc {eq.rc}):\n" + tail(os.path.join(tmp, "equivar.log"))
        print(e["error"], file=sys.stderr)
    out["equivar"] = e

    # ---- mace-torch: wrapper accounting, latest checkpoint -> mace.model -> mace_eval_configs
    st = read_json(status_path) or {}
    mres = {
        "rc": mc.rc,
        "process_cpu_s": mc.cpu_total,
        "process_wall_s": mc.wall,
        "train_cpu_s": st.get("done_cpu"),
        "train_wall_s": st.get("train_wall"),
        "steps": st.get("steps"),
        "epochs_completed": st.get("epochs_done"),
        "stopped_by_budget": st.get("stopped"),
        "train_cpu_s_at_sigint": mace_train_cpu_at_signal,
    }
    if st.get("steps") is not None:
        mres["epochs"] = st["steps"] / steps_per_epoch
    ckpts = sorted(
        glob.glob(os.path.join(mace_dir, "checkpoints", "mace_run-*_epoch-*.pt")),
        key=lambda s: int(re.search(r"epoch-(\d+)", s).group(1)),
    )
    mres["selected_epoch"] = int(re.search(r"epoch-(\d+)", ckpts[-1]).group(1)) + 1 if ckpts else None
    model_file = os.path.join(mace_dir, "mace.model")
    if mc.rc == 0 and os.path.isfile(model_file):
        pred = os.path.join(mace_dir, "test_predictions.xyz")
        t0 = time.time()
        ev = subprocess.run(
            [
                os.path.join(os.path.dirname(a.mace_python), "mace_eval_configs"),
                "--configs",
                paths["test"],
                "--model",
                model_file,
                "--output",
                pred,
                "--device",
                "cpu",
                "--default_dtype",
                "float32",
                "--batch_size",
                "10",
            ],
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {pin[1]})) if pin[1] is not None else None,
        )
        if ev.returncode == 0:
            mres["test"] = errors(*read_predictions(pred, len(test), "MACE_energy", "MACE_forces"), test, keep)
            mres["eval_wall_s"] = time.time() - t0
        else:
            mres["error"] = f"mace_eval_configs failed:\n{ev.stderr[-3000:]}"
    else:
        mres["error"] = f"mace-torch run failed (rc {mc.rc}):\n" + tail(os.path.join(tmp, "mace.log"))
    if "error" in mres:
        print(mres["error"], file=sys.stderr)
    ver = subprocess.run(
        [a.mace_python, "-c", "import mace, torch; print(mace.__version__, torch.__version__)"],
        capture_output=True,
        text=True,
        env=env,
    )
    mres["versions"] = ver.stdout.strip()
    out["mace"] = mres
    out["total_wall_s"] = time.time() - t_start
    return out


def report(r: dict, json_path) -> None:
    e, m = r["equivar"], r["mace"]

    def f(d, k, fmt="{:.1f}"):
        v = d.get(k)
        return "-" if v is None else fmt.format(v)

    def t(d, k):
        return f(d.get("test", {}), k, "{:.2f}")

    lines = [
        f"| {r['dataset']}, {r['budget_cpu_s']:.0f} CPU-s of training each | equivar | "
        f"mace-torch {m.get('versions', '').split(' ')[0]} |",
        "|---|---|---|",
        f"| training CPU s (budget rule) | {f(e, 'train_cpu_s')} | {f(m, 'train_cpu_s')} |",
        f"| training steps (epochs of {r['steps_per_epoch']} steps) | {f(e, 'steps', '{}')} ({f(e, 'epochs', '{:.2f}')}) "
        f"| {f(m, 'steps', '{}')} ({f(m, 'epochs', '{:.2f}')}) |",
        f"| training wall s | {f(e, 'train_wall_s')} | {f(m, 'train_wall_s')} |",
        f"| process CPU s / wall s (start-up, validation, final evaluation included) | {f(e, 'process_cpu_s')} / "
        f"{f(e, 'process_wall_s')} | {f(m, 'process_cpu_s')} / {f(m, 'process_wall_s')} |",
        f"| selected epoch (best validation, EMA weights) | {f(e, 'selected_epoch', '{}')} | {f(m, 'selected_epoch', '{}')} |",
        f"| test E MAE meV/atom | {t(e, 'e_mae_mev_per_atom')} | {t(m, 'e_mae_mev_per_atom')} |",
        f"| test E RMSE meV/atom | {t(e, 'e_rmse_mev_per_atom')} | {t(m, 'e_rmse_mev_per_atom')} |",
        f"| test E MAE meV (per structure) | {t(e, 'e_mae_mev')} | {t(m, 'e_mae_mev')} |",
        f"| test F MAE meV/Å | {t(e, 'f_mae_mev_per_a')} | {t(m, 'f_mae_mev_per_a')} |",
        f"| test F RMSE meV/Å | {t(e, 'f_rmse_mev_per_a')} | {t(m, 'f_rmse_mev_per_a')} |",
    ]
    print()
    print("\n".join(lines))
    print(f"\nequivar budget option: {r['equivar_budget_option']}; stop: {e.get('stop_reason')}")
    for n in r["notes"]:
        print(f"note: {n}")
    if json_path:
        from equivar._paths import write_json_atomic

        write_json_atomic(json_path, r, indent=2, flag="--json")
        print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
