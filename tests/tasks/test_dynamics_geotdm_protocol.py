"""configs/nbody_egnn_10to20.yaml and nbody_eqmotion_10to20.yaml: deterministic baselines on GeoTDM's conditional
N-body protocol (configs/nbody_geotdm.yaml), so they must read the same trajectories and cut the same windows
(frames 0-9 observed, 10-29 predicted): the test scenes depend on every split size of the stream (the test split
is drawn after the validation split), not only on n_test."""

import dataclasses
import os

import numpy as np
import pytest

from equivar.data import nbody
from equivar.models import build_model
from equivar.tasks import build_task
from equivar.train import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASELINES = ["nbody_egnn_10to20", "nbody_eqmotion_10to20"]


def _task(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.yaml")).validate()
    return cfg, build_task(cfg.task, cfg.training)


@pytest.mark.parametrize("name", BASELINES)
def test_baseline_reads_geotdm_scenes_and_windows(name):
    _, geotdm = _task("nbody_geotdm")
    cfg, task = _task(name)
    mine, ref = dataclasses.asdict(task.data), dataclasses.asdict(geotdm.data)
    # everything that decides the trajectories, the splits and the windows is GeoTDM's
    differ = {k for k in ref if mine[k] != ref[k]}
    assert differ == {"finite_difference_velocities"}, differ
    assert (mine["past"], mine["future"], mine["start"], mine["n_train"]) == (10, 20, 0, 3000)
    # positions only, as GeoTDM's model sees: velocities are differences of the observed frames
    assert task.data.finite_difference_velocities
    model = build_model(**cfg.model)
    assert (model.past, model.future) == (10, 20)
    assert getattr(model, "num_hypotheses", None) is None  # one deterministic prediction
    assert task.loss_kind == "ade" and cfg.training.max_cpu_s == 500


def test_test_scenes_depend_on_the_validation_split_size():
    """Why the configs copy n_valid: 500 (not EGNN's 2000): the test split of the stream moves with it."""
    p = nbody.SimulationParams.recipe("charged", steps=200, sample_every=100)
    a = nbody.generate_nbody(nbody.NBodyDatasetConfig(p, n_train=2, n_valid=3, n_test=2, n_train_drawn=2))
    b = nbody.generate_nbody(nbody.NBodyDatasetConfig(p, n_train=2, n_valid=4, n_test=2, n_train_drawn=2))
    assert np.array_equal(a.train.positions, b.train.positions)
    assert not np.allclose(a.test.positions, b.test.positions)
    # the first scenes of a longer test split are those of a shorter one (GeoTDM's numbers: n_test=200 of 500)
    c = nbody.generate_nbody(nbody.NBodyDatasetConfig(p, n_train=2, n_valid=3, n_test=3, n_train_drawn=2))
    assert np.array_equal(a.test.positions, c.test.positions[:2])
