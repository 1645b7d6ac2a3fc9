"""Typed config: YAML + overrides, clear errors for unknown keys and wrong types."""

import glob
import os

import pytest
import yaml

from equivar.train import Config, config_from_dict, load_config, save_config

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def test_yaml_overrides_roundtrip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        yaml.safe_dump(
            {"data": {"train_file": "x.xyz"}, "model": {"name": "mace", "num_channels": 8}, "training": {"lr": "1e-3"}}
        )
    )
    cfg = load_config(
        str(p),
        [
            "training.epochs=7",
            "model.num_channels=16",
            "training.ema_decay=null",
            "data.e0s={H: -13.6}",
            "dtype=float32",
        ],
    )
    assert cfg.training.epochs == 7 and cfg.training.lr == 0.001 and cfg.training.ema_decay is None
    assert cfg.model == {"name": "mace", "num_channels": 16} and cfg.data.e0s == {"H": -13.6}
    save_config(cfg, str(tmp_path / "out.yaml"))
    assert load_config(str(tmp_path / "out.yaml")) == cfg


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.lrr=0.1", r"unknown config key 'training\.lrr'; did you mean 'lr'\?"),
        ("trainig.lr=0.1", r"unknown config key 'trainig\.lr'"),
        ("training.num_threads=2", r"unknown config key 'training\.num_threads'; 'num_threads' is a top-level key"),
        ("training.epochs=2.5", r"training\.epochs: expected an integer"),
        ("training.lr=fast", r"training\.lr: expected a number"),
        ("progress=maybe", r"progress: expected true or false"),
        ("training.optimizer=sgd", r"training\.optimizer must be adam, amsgrad or adamw"),
        ("dtype=float16", r"dtype must be"),
        ("training.lr", r"not of the form key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, ["data.train_file=x.xyz", override])


def test_unknown_yaml_key_and_missing_train_file():
    with pytest.raises(ValueError, match=r"unknown config key 'data\.energy'; did you mean 'energy_key'\?"):
        config_from_dict({"data": {"energy": "E"}})
    with pytest.raises(ValueError, match=r"'training\.seed'; 'seed' is a top-level key: seed=\.\.\.$"):
        config_from_dict({"training": {"seed": 3}})
    with pytest.raises(ValueError, match="data.train_file is required"):
        Config().validate()


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.yaml"))), ids=os.path.basename)
def test_shipped_configs_load(path):
    from equivar.tasks import build_task

    cfg = load_config(path).validate()
    assert cfg.model["name"]
    if not build_task(cfg.task, cfg.training).data_section:  # dynamics: data under task.data (tests/tasks)
        assert not cfg.data.train_file
        return
    assert cfg.data.train_file
    if cfg.model["name"] == "mace":
        assert cfg.training.stage_two_start == 0.75  # MACE's recipe: stage two over the last quarter
    elif cfg.task == "potential":  # another potential's smoke configuration (rmd17_ethanol_ponita.yaml)
        assert cfg.training.max_cpu_s
    else:  # the image configs: a classification task with a CPU budget
        assert cfg.task["name"] == "classification" and cfg.training.max_cpu_s


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.radial_mlp=abc", r"model\.radial_mlp: expected a list of integers, got 'abc'"),
        ("model.max_L=abc", r"model\.max_L: expected an integer, got 'abc'"),
        ("model.num_chanels=8", r"unknown config key 'model\.num_chanels'; did you mean 'num_channels'\?"),
        ("model.name=mcae", r"model\.name: unknown model 'mcae'; did you mean 'mace'\?"),
        ("data.e0s={H: abc}", r"data\.e0s\.H: expected a number \(eV\), got 'abc'"),
        ("data.e0s={Xx: 1.0}", r"data\.e0s: unknown element 'Xx'"),
        ("data.e0s=isolted", r"data\.e0s: unknown E0s spec 'isolted'; did you mean 'isolated'\?"),
    ],
)
def test_bad_model_and_e0s_overrides_name_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, ["data.train_file=x.xyz", override])


def test_model_range_errors_name_the_config_key():
    from equivar.train import build_model

    for key, value in (("max_L", -1), ("num_channels", 0), ("correlation", 0)):
        with pytest.raises(ValueError, match=rf"model\.{key} must be an integer >= \d, got {value}"):
            build_model({"name": "mace", "atomic_numbers": [1, 8], key: value})


@pytest.mark.parametrize("value", ["null", "", "3", "false", "[1]"])
@pytest.mark.parametrize("section", ["training", "data", "model"])
def test_section_set_to_a_scalar_is_an_error(section, value):
    with pytest.raises(ValueError, match=rf"^{section} is a config section, not a value"):
        load_config(None, ["data.train_file=x.xyz", f"{section}={value}"])


def test_section_set_to_a_mapping_is_merged():
    cfg = load_config(
        None, ["data.train_file=x.xyz", "training.epochs=7", "training={lr: 0.005}", "model={num_channels: 8}"]
    )
    assert cfg.training.epochs == 7 and cfg.training.lr == 0.005
    assert cfg.model == {"name": "mace", "num_channels": 8}
    with pytest.raises(ValueError, match=r"unknown config key 'training\.lrr'"):
        load_config(None, ["data.train_file=x.xyz", "training={lrr: 0.005}"])


def test_empty_section_in_yaml_means_defaults_but_scalars_are_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data:\n  train_file: x.xyz\ntraining:\n")
    assert load_config(str(p)).training.epochs == Config().training.epochs
    p.write_text("data:\n  train_file: x.xyz\ntraining: 0\n")
    with pytest.raises(ValueError, match="training: expected a mapping, got 0"):
        load_config(str(p))


def test_public_model_class():
    import equivar.models as M

    assert M.model_class("mace") is M.MACE
    with pytest.raises(ValueError, match=r"unknown model 'MACE'; did you mean 'mace'\?"):
        M.model_class("MACE")
    src = open(os.path.join(ROOT, "src", "equivar", "train", "_models.py")).read()
    assert "_MODELS" not in src and "_registry" not in src


@pytest.mark.parametrize("value", [0, -2])
def test_num_threads_must_be_positive(value):
    with pytest.raises(ValueError, match=rf"^num_threads must be >= 1 or null, got {value}$"):
        load_config(None, ["data.train_file=x.xyz", f"num_threads={value}"])
    assert load_config(None, ["data.train_file=x.xyz", "num_threads=null"]).num_threads is None


@pytest.mark.parametrize("value", [1.5, 0, 1, -0.1])
def test_valid_fraction_error_names_the_data_section(value):
    with pytest.raises(ValueError, match=rf"^data\.valid_fraction must be in \(0, 1\), got {value}"):
        load_config(None, ["data.train_file=x.xyz", f"data.valid_fraction={value}"])
    # with a validation file the fraction is not used
    assert load_config(None, ["data.train_file=x.xyz", "data.valid_file=v.xyz", f"data.valid_fraction={value}"])


def test_non_yaml_config_file_gives_a_short_error_naming_the_file(tmp_path):
    import equivar.data

    xyz = os.path.join(os.path.dirname(equivar.data.__file__), "embedded", "cuau_emt.xyz")
    with pytest.raises(ValueError) as e:
        load_config(xyz)
    msg = str(e.value)
    assert msg.startswith(f"{xyz}: expected a YAML mapping") and "\n" not in msg and len(msg) < 250 + len(xyz), msg
    assert msg.endswith("...")


def test_long_values_are_cut_in_config_errors():
    with pytest.raises(ValueError) as e:
        config_from_dict({"data": {"train_file": "x.xyz"}, "training": "x" * 5000})
    assert len(str(e.value)) < 120 and str(e.value).endswith("...")
    with pytest.raises(ValueError) as e:
        load_config(None, ["data.train_file=x.xyz", "training.lr=" + "y" * 5000])
    assert len(str(e.value)) < 120


def test_task_defaults_to_potential_and_bad_tasks_are_named():
    assert load_config(None, ["data.train_file=x.xyz"]).task == "potential"
    assert load_config(None, ["data.train_file=x.xyz", "task={name: potential}"]).task == {"name": "potential"}
    with pytest.raises(ValueError, match=r"^task: unknown task 'potentail'; did you mean 'potential'\? registered: "):
        load_config(None, ["data.train_file=x.xyz", "task=potentail"])
    with pytest.raises(ValueError, match=r"^unknown config key 'task\.weights'; task 'potential' takes no options$"):
        load_config(None, ["data.train_file=x.xyz", "task={name: potential, weights: 1}"])


def test_model_r_max_beyond_the_neighbour_lists_is_refused():
    from equivar.train import complete_hparams

    with pytest.raises(ValueError, match=r"^model.r_max=5.0 is larger than data.r_max=4.0"):
        complete_hparams({"name": "mace", "r_max": 5.0}, {"r_max": 4.0, "atomic_numbers": [1]})
    assert complete_hparams({"name": "mace", "r_max": 3.0}, {"r_max": 4.0})["r_max"] == 3.0
    assert complete_hparams({"name": "mace"}, {"r_max": 4.0})["r_max"] == 4.0


def test_unannotated_numeric_model_option_names_its_key():
    from equivar.train._models import check_model_config

    cfg = {"name": "standin:PairPotential", "hidden": "abc"}
    with pytest.raises(ValueError, match=r"^model.hidden: expected a number \(default 32\), got 'abc'$"):
        check_model_config(cfg)
    assert check_model_config({"name": "standin:PairPotential", "hidden": "16"})["hidden"] == 16


def test_a_model_constructor_runtime_error_is_one_line():
    from equivar.train import build_model

    with pytest.raises(ValueError, match=r"^model 'standin:PairPotential': bad hyperparameters \("):
        build_model({"name": "standin:PairPotential", "atomic_numbers": [1], "hidden": -3})
