"""Typed training configuration: dataclasses loaded from YAML, ``key=value`` overrides with type checks.

A config has four sections plus run-level fields::

    seed: 0
    dtype: float64            # float32 | float64 (model and training)
    device: cpu               # cpu | cuda | cuda:1
    output_dir: runs/ethanol
    task: potential           # what the model is trained for (equivar.tasks; or {name: potential, OPTION: ...})
    data:     {...}           # DataConfig
    model:    {name: mace, ...}   # hyperparameters for equivar.models.build_model
    training: {...}           # TrainingConfig

``model`` is a free mapping (the model builder checks its own keys); every
other key is checked: an unknown key or a value of the wrong type is a
``ValueError`` that names it and suggests the closest known key.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

import yaml

from .._typecheck import coerce_value, short_repr, unknown_key_error
from ..data import check_e0s_spec
from ..tasks import build_task
from ._models import check_model_config


@dataclasses.dataclass
class DataConfig:
    """Where the data are and how to read them.

    Paths are relative to the working directory; ``embedded:NAME`` names a
    dataset shipped with the package. ``test_files`` maps a name to a path.
    ``e0s`` is ``auto`` | ``isolated`` | ``least_squares`` | ``zero`` or a
    mapping element -> eV. Isolated-atom configurations (``config_type:
    IsolatedAtom`` or single non-periodic atoms) found in ``train_file`` or
    ``e0s_file`` serve as E0 references and are not trained on.
    """

    train_file: str = ""
    valid_file: str | None = None
    valid_fraction: float = 0.05
    test_files: dict = dataclasses.field(default_factory=dict)
    e0s_file: str | None = None
    format: str | None = None
    max_train: int | None = None
    split_seed: int | None = None
    r_max: float = 5.0
    e0s: Any = "auto"
    energy_key: str = "energy"
    forces_key: str = "forces"
    stress_key: str = "stress"
    virials_key: str = "virials"
    config_type_key: str = "config_type"
    weight_key: str = "config_weight"
    min_distance: float = 0.1


@dataclasses.dataclass
class TrainingConfig:
    """Optimisation settings (MACE's recipe names where they exist).

    Loss = ``energy_weight`` * mean((dE/N)^2) + ``forces_weight`` * mean(dF^2)
    + ``stress_weight`` * mean(dS^2) [+ virials/N], each term also scaled by
    per-configuration weights. ``optimizer``: adam | amsgrad | adamw. ``optimizer_update``:
    ``foreach`` (multi-tensor) or ``fused`` (PyTorch's one-kernel update, where every parameter is a
    float tensor on the CPU or a CUDA device; the same update up to round-off, about 3x cheaper per
    step for EGNN's 66 parameter tensors on one CPU thread).
    ``scheduler``: ``plateau`` (ReduceLROnPlateau on the validation loss, ``scheduler_patience`` /
    ``scheduler_factor``) or ``cosine`` (``lr * (1 + cos(pi f)) / 2`` at every step, ``f`` the
    fraction of the run done: of ``epochs``, or of ``max_time_s`` / ``max_cpu_s`` when a budget
    would end the run first, so a budgeted run anneals to 0 at its end; times a linear warm-up
    over the first ``warmup_epochs``; PONITA's ``CosineWarmupScheduler``).
    ``ema_decay`` null disables EMA; ``early_stopping_patience`` null
    disables early stopping; ``clip_grad_norm`` null disables clipping.
    ``divergence_factor``: training stops (``TrainingDiverged``, the last good checkpoint
    kept) when a step's loss exceeds this many times the run's first-step loss (the
    untrained model's), or the validation loss does; null disables this finite test
    (non-finite losses, gradients and weights always stop training).
    ``max_time_s`` stops training after that many wall-clock seconds of training steps
    (validation excluded; equal-budget runs); ``max_cpu_s`` after that many process CPU
    seconds of training steps (all threads; fair under load from other jobs). metrics.csv
    logs both wall (``time_s``) and process CPU (``cpu_s``) seconds of training.

    Stage two (MACE's ``--swa`` recipe, Batatia et al. 2022): once the run is
    ``stage_two_start`` of the way through (fraction of ``epochs``, or of the
    time budget when ``max_time_s``/``max_cpu_s`` is set and would end the run
    first), the loss weights switch to ``stage_two_energy_weight`` /
    ``stage_two_forces_weight`` and the learning rate to ``stage_two_lr``, so
    that energies, weakly constrained by a force-dominated loss, are fitted at
    the end. The best-model selection restarts at the switch (the validation
    loss changes meaning). ``stage_two_start`` null disables it.
    """

    epochs: int = 100
    batch_size: int = 5
    valid_batch_size: int = 10
    optimizer: str = "amsgrad"
    optimizer_update: str = "foreach"
    lr: float = 0.01
    weight_decay: float = 0.0
    energy_weight: float = 1.0
    forces_weight: float = 100.0
    stress_weight: float = 0.0
    ema_decay: float | None = 0.99
    scheduler: str = "plateau"
    scheduler_patience: int = 50
    scheduler_factor: float = 0.8
    warmup_epochs: float = 0.0
    early_stopping_patience: int | None = None
    clip_grad_norm: float | None = 10.0
    divergence_factor: float | None = 1e6
    eval_every: int = 1
    max_time_s: float | None = None
    max_cpu_s: float | None = None
    stage_two_start: float | None = None
    stage_two_energy_weight: float = 1000.0
    stage_two_forces_weight: float = 100.0
    stage_two_lr: float = 1e-3
    find_unused_parameters: bool = False


@dataclasses.dataclass
class Config:
    """A complete training run (see module docstring)."""

    seed: int = 0
    dtype: str = "float64"
    device: str = "cpu"
    output_dir: str = "runs/default"
    num_threads: int | None = None
    progress: bool = True
    overwrite: bool = False
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: dict = dataclasses.field(default_factory=lambda: {"name": "mace"})
    task: Any = "potential"
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def validate(self) -> Config:
        """Check values beyond their types; raise ``ValueError`` naming the key."""
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {short_repr(self.dtype)}")
        t = self.training
        if t.optimizer not in ("adam", "amsgrad", "adamw"):
            raise ValueError(f"training.optimizer must be adam, amsgrad or adamw, got {short_repr(t.optimizer)}")
        if t.optimizer_update not in ("foreach", "fused"):
            raise ValueError(
                f"training.optimizer_update must be foreach or fused, got {short_repr(t.optimizer_update)}"
            )
        for key in ("epochs", "batch_size", "valid_batch_size", "eval_every"):
            if getattr(t, key) < 1:
                raise ValueError(f"training.{key} must be >= 1, got {getattr(t, key)}")
        if t.lr <= 0:
            raise ValueError(f"training.lr must be positive, got {t.lr}")
        if t.scheduler not in ("plateau", "cosine"):
            raise ValueError(f"training.scheduler must be plateau or cosine, got {short_repr(t.scheduler)}")
        if not t.warmup_epochs >= 0:
            raise ValueError(f"training.warmup_epochs must be >= 0, got {t.warmup_epochs}")
        if t.scheduler == "cosine" and t.stage_two_start is not None:
            raise ValueError("training.scheduler cosine and training.stage_two_start cannot be combined (pick one)")
        for key in ("max_time_s", "max_cpu_s"):
            v = getattr(t, key)
            if v is not None and v < 0:
                raise ValueError(f"training.{key} must be >= 0 or null, got {v}")
        if t.divergence_factor is not None and not t.divergence_factor > 1.0:
            raise ValueError(f"training.divergence_factor must be > 1 or null, got {t.divergence_factor}")
        if t.stage_two_lr <= 0:
            raise ValueError(f"training.stage_two_lr must be positive, got {t.stage_two_lr}")
        if t.stage_two_start is not None and not 0.0 <= t.stage_two_start < 1.0:
            raise ValueError(f"training.stage_two_start must be in [0, 1) or null, got {t.stage_two_start}")
        if t.ema_decay is not None and not 0.0 < t.ema_decay < 1.0:
            raise ValueError(f"training.ema_decay must be in (0, 1) or null, got {t.ema_decay}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1 or null, got {self.num_threads}")
        try:
            task = build_task(self.task, self.training)
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith("unknown config key") else f"task: {msg}") from None
        if not task.data_section:  # the task's data are among its options (task.data); data: is not used
            if self.data.train_file:
                raise ValueError(f"data.train_file is not used by task {task.name!r}: its data are set under task.data")
        else:
            if not self.data.valid_file and not 0.0 < self.data.valid_fraction < 1.0:  # unused with a valid_file
                raise ValueError(f"data.valid_fraction must be in (0, 1), got {self.data.valid_fraction}")
            if not self.data.train_file:
                raise ValueError("data.train_file is required")
        if self.data.r_max <= 0:
            raise ValueError(f"data.r_max must be positive, got {self.data.r_max}")
        if not isinstance(self.model, dict) or "name" not in self.model:
            raise ValueError("model must be a mapping with a 'name' key")
        check_e0s_spec(self.data.e0s, "data.e0s")
        self.model = check_model_config(self.model)
        return self


def _unknown_key(key: str, known) -> ValueError:
    """:func:`unknown_key_error`, pointing at the top level when the key's last part is a top-level key.

    ``--set training.num_threads=2`` -> "... 'num_threads' is a top-level key: num_threads=..." (a section
    holds no key of that name, but the config does).
    """
    leaf = key.split(".")[-1]
    if "." in key and leaf in {f.name for f in dataclasses.fields(Config)}:
        return ValueError(f"unknown config key {short_repr(key)}; {leaf!r} is a top-level key: {leaf}=...")
    return unknown_key_error(key, known)


def _from_dict(cls, d: dict, prefix: str = ""):
    if not isinstance(d, dict):
        raise ValueError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {short_repr(d)}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in d.items():
        if k not in names:
            raise _unknown_key(prefix + str(k), names)
        tp = hints[k]
        if dataclasses.is_dataclass(tp):
            # an empty section in a YAML file (``training:``) means defaults; 0, false, '' are errors
            kwargs[k] = _from_dict(tp, {} if v is None else v, prefix + k + ".")
        else:
            kwargs[k] = coerce_value(v, tp, prefix + k)
    return cls(**kwargs)


def config_from_dict(d: dict) -> Config:
    """Build a :class:`Config` from nested mappings; raises ``ValueError`` on unknown keys or wrong types."""
    return _from_dict(Config, d or {})


def _sections() -> set:
    """Top-level keys of :class:`Config` that hold a section (a mapping of keys), not a value."""
    hints = typing.get_type_hints(Config)
    return {f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name]) or f.name == "model"}


def apply_overrides(cfg: Config, overrides) -> Config:
    """Apply ``["training.lr=0.005", "model.num_channels=64", ...]``; values are parsed as YAML.

    A whole section takes a mapping, merged into it (``training={lr: 0.005}``).

    Raises
    ------
    ValueError
        malformed override, unknown key, a value of the wrong type, or a
        section (``data``, ``model``, ``training``) set to a scalar or null.
    """
    d = cfg.to_dict()
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"override {short_repr(item)} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        value = yaml.safe_load(raw) if raw.strip() else None
        parts = key.split(".")
        node = d
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node or not isinstance(node[p], dict):
                raise unknown_key_error(key, node.keys() if isinstance(node, dict) else [])
            node = node[p]
        if parts[0] != "model" and parts[-1] not in node and not (len(parts) > 2 and parts[1] in ("test_files", "e0s")):
            raise _unknown_key(key, node.keys())
        if len(parts) == 1 and key in _sections():
            # a whole section: a mapping is merged key by key; anything else would silently reset it
            if not isinstance(value, dict):
                raise ValueError(
                    f"{key} is a config section, not a value: set its keys (e.g. --set {key}.KEY=VALUE) "
                    f"or give a mapping (--set {key}={{KEY: VALUE}}), got {short_repr(raw.strip())}"
                )
            node[key] = {**node[key], **value}
            continue
        node[parts[-1]] = value
    return config_from_dict(d)


def load_config(path: str | None = None, overrides=None) -> Config:
    """Read a YAML config (or start from defaults), apply overrides, validate.

    Raises
    ------
    FileNotFoundError, ValueError
    """
    d = {}
    if path is not None:
        with open(path) as f:
            d = yaml.safe_load(f) or {}
        if not isinstance(d, dict):
            raise ValueError(
                f"{path}: expected a YAML mapping of config keys (data:, model:, training: ...), "
                f"got {type(d).__name__} {short_repr(d)}"
            )
    cfg = apply_overrides(config_from_dict(d), overrides)
    return cfg.validate()


def save_config(cfg: Config, path: str) -> None:
    """Write ``cfg`` as YAML (loadable by :func:`load_config`), atomically."""
    from .._paths import atomic_output

    with atomic_output(path, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
