"""Typed config: YAML + overrides, clear errors for unknown keys and wrong types."""
import glob
import os

import pytest
import yaml

from equivar.train import Config, apply_overrides, config_from_dict, load_config, save_config

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_yaml_overrides_roundtrip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"data": {"train_file": "x.xyz"}, "model": {"name": "mace", "num_channels": 8},
                                 "training": {"lr": "1e-3"}}))
    cfg = load_config(str(p), ["training.epochs=7", "model.num_channels=16", "training.ema_decay=null",
                               "data.e0s={H: -13.6}", "dtype=float32"])
    assert cfg.training.epochs == 7 and cfg.training.lr == 0.001 and cfg.training.ema_decay is None
    assert cfg.model == {"name": "mace", "num_channels": 16} and cfg.data.e0s == {"H": -13.6}
    save_config(cfg, str(tmp_path / "out.yaml"))
    assert load_config(str(tmp_path / "out.yaml")) == cfg


@pytest.mark.parametrize("override, message", [
    ("training.lrr=0.1", r"unknown config key 'training\.lrr'; did you mean 'lr'\?"),
    ("trainig.lr=0.1", r"unknown config key 'trainig\.lr'"),
    ("training.epochs=2.5", r"training\.epochs: expected an integer"),
    ("training.lr=fast", r"training\.lr: expected a number"),
    ("progress=maybe", r"progress: expected true or false"),
    ("training.optimizer=sgd", r"training\.optimizer must be adam, amsgrad or adamw"),
    ("dtype=float16", r"dtype must be"),
    ("training.lr", r"not of the form key=value"),
])
def test_bad_overrides(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, ["data.train_file=x.xyz", override])


def test_unknown_yaml_key_and_missing_train_file():
    with pytest.raises(ValueError, match=r"unknown config key 'data\.energy'; did you mean 'energy_key'\?"):
        config_from_dict({"data": {"energy": "E"}})
    with pytest.raises(ValueError, match="data.train_file is required"):
        Config().validate()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))), ids=os.path.basename)
def test_shipped_configs_load(path):
    cfg = load_config(path).validate()
    assert cfg.model["name"] and cfg.data.train_file
    assert cfg.training.stage_two_start == 0.75  # MACE's recipe: stage two over the last quarter

