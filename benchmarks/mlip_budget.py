#!/usr/bin/env python
"""Accuracy at equal CPU budget: equivar vs mace-torch 0.3.16 on rMD17 ethanol (split 01).

Both packages train the same scaled-down MACE (32 channels, max_L 1, max_ell 3,
correlation 3, 2 interactions, r_max 5 Å, 8 Bessel functions, p = 5, radial
MLP [64, 64, 64], batch 5, float32, AMSGrad lr 0.01, E:F weights 1:1000,
EMA 0.99, ReduceLROnPlateau 50/0.8, gradient clipping 10, weight decay 0) on
the same 950/50 train/valid split of ``rmd17_ethanol_train_01.npz`` (equivar's
seeded ``random_split``, seed 0), each through its own command line tool, with
1 torch thread, at the same time (pinned to different cores when two are
available), for ``--budget-s`` CPU-seconds of training each. The final models
(EMA weights of the best validation epoch, as each package saves them) are
then evaluated on the 1000 frames of ``rmd17_ethanol_test_01.npz``, and the
MAEs are computed here, the same way for both, against the npz labels.

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
TRAIN_NPZ = os.path.join(DATA, "rmd17_ethanol_train_01.npz")
TEST_NPZ = os.path.join(DATA, "rmd17_ethanol_test_01.npz")
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
def load_npz(path):
    npz = np.load(path)
    return (
        np.asarray(npz["nuclear_charges"], dtype=int),
        np.asarray(npz["coords"], dtype=np.float64),
        np.asarray(npz["energies"], dtype=np.float64) * KCAL,
        np.asarray(npz["forces"], dtype=np.float64) * KCAL,
    )


def write_xyz(path, z, coords, energies, forces, idx):
    import ase.io
    from ase import Atoms

    frames = []
    for i in idx:
        a = Atoms(numbers=z, positions=coords[i], pbc=False)
        a.info["REF_energy"] = float(energies[i])
        a.arrays["REF_forces"] = np.array(forces[i])
        frames.append(a)
    ase.io.write(path, frames, format="extxyz")


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
def errors(e_pred, f_pred, npz):
    """Test errors against the npz labels: E MAE meV/atom and meV, F MAE and RMSE meV/Å (over Cartesian components)."""
    z, _, e_ref, f_ref = npz
    n = len(z)
    de = np.asarray(e_pred, dtype=np.float64) - e_ref
    df = np.asarray(f_pred, dtype=np.float64) - f_ref
    return {
        "n": int(len(de)),
        "e_mae_mev_per_atom": 1e3 * float(np.mean(np.abs(de))) / n,
        "e_mae_mev": 1e3 * float(np.mean(np.abs(de))),
        "e_rmse_mev_per_atom": 1e3 * float(np.sqrt(np.mean(de**2))) / n,
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
    return np.array(e), np.array(f)


# ---- main ------------------------------------------------------------------------------------
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=1800.0, help="CPU-seconds of training per side (default 1800)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--mace-python", default="/tmp/macevenv/bin/python", help="interpreter with mace-torch 0.3.16")
    p.add_argument("--workdir", default=None, help="keep runs and logs here (default: a temporary directory, removed)")
    p.add_argument("--no-pin", action="store_true", help="do not pin the two trainings to different cores")
    p.add_argument("--poll-s", type=float, default=0.25, help="how often the CPU times are read")
    p.add_argument(
        "--equivar-stage-two",
        action="store_true",
        help="keep the config's stage two on the equivar side (default: off on both sides, the same recipe)",
    )
    a = p.parse_args()
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
        result = run(a, budget, tmp, fields, notes)
    finally:
        if a.workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    report(result, a.json)


def run(a, budget, tmp, fields, notes) -> dict:
    import torch

    train_npz, test_npz = load_npz(TRAIN_NPZ), load_npz(TEST_NPZ)
    tr_idx, va_idx = split_indices(len(train_npz[1]))
    steps_per_epoch = -(-len(tr_idx) // BATCH)
    data_dir = os.path.join(tmp, "data")
    os.makedirs(data_dir)
    paths = {k: os.path.join(data_dir, f"{k}.xyz") for k in ("train", "valid", "test")}
    write_xyz(paths["train"], *train_npz, tr_idx)
    write_xyz(paths["valid"], *train_npz, va_idx)
    write_xyz(paths["test"], *test_npz, range(len(test_npz[1])))

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
        f"rMD17 ethanol split 01: {len(tr_idx)} train / {len(va_idx)} valid / {len(test_npz[1])} test; "
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
        "budget_cpu_s": budget,
        "budget_rule": "process CPU seconds inside the training loops (start-up, validation and checkpoints excluded)",
        "equivar_budget_option": f"training.{budget_key}",
        "threads": 1,
        "pinned_cpus": list(pin) if pin[0] is not None else None,
        "equivar_stage_two": bool(a.equivar_stage_two and "stage_two_start" in fields),
        "mace_stage_two": False,
        "n_train": len(tr_idx),
        "n_valid": len(va_idx),
        "n_test": len(test_npz[1]),
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
        e["test"] = errors(*read_predictions(pred, len(test_npz[1])), test_npz)
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
            mres["test"] = errors(*read_predictions(pred, len(test_npz[1]), "MACE_energy", "MACE_forces"), test_npz)
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
        f"| rMD17 ethanol, {r['budget_cpu_s']:.0f} CPU-s of training each | equivar | mace-torch {m.get('versions', '').split(' ')[0]} |",
        "|---|---|---|",
        f"| training CPU s (budget rule) | {f(e, 'train_cpu_s')} | {f(m, 'train_cpu_s')} |",
        f"| training steps (epochs of {r['steps_per_epoch']} steps) | {f(e, 'steps', '{}')} ({f(e, 'epochs', '{:.2f}')}) "
        f"| {f(m, 'steps', '{}')} ({f(m, 'epochs', '{:.2f}')}) |",
        f"| training wall s | {f(e, 'train_wall_s')} | {f(m, 'train_wall_s')} |",
        f"| process CPU s / wall s (start-up, validation, final evaluation included) | {f(e, 'process_cpu_s')} / "
        f"{f(e, 'process_wall_s')} | {f(m, 'process_cpu_s')} / {f(m, 'process_wall_s')} |",
        f"| selected epoch (best validation, EMA weights) | {f(e, 'selected_epoch', '{}')} | {f(m, 'selected_epoch', '{}')} |",
        f"| test E MAE meV/atom | {t(e, 'e_mae_mev_per_atom')} | {t(m, 'e_mae_mev_per_atom')} |",
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
        with open(json_path, "w") as fh:
            json.dump(r, fh, indent=2)
        print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
