"""What task a model file was trained for, and one-line refusals when a command meets the wrong kind.

A checkpoint written by ``equivar train`` records its task in ``metadata["task"]``
(``"dynamics"``, ``"classification"``); potentials (the default task) record
none, so a model class that subclasses :class:`~equivar.models.Potential`
counts as ``"potential"``.
"""

from __future__ import annotations

import os

#: what each task's models are, for messages
KINDS = {
    "potential": "an interatomic potential",
    "dynamics": "a dynamics model",
    "classification": "a classification model",
    "sequence": "a sequence (next-frame) model",
    "molecule_diffusion": "a molecule-diffusion model",
    "world_model": "a world model",
}


def checkpoint_task(path: str) -> tuple[str | None, str]:
    """``(task, model name)`` of the equivar checkpoint at ``path``.

    ``task`` is ``metadata["task"]`` when recorded, else ``"potential"`` for a
    :class:`~equivar.models.Potential` subclass, else ``None`` (not an equivar
    checkpoint, or a model of unknown kind). Never raises for unreadable
    files: the loaders that follow give their own errors.
    """
    import torch

    if not os.path.isfile(path) or _is_torchscript(path):
        return None, "?"
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a weights-only checkpoint: the command's loader says why
        return None, "?"
    if not isinstance(payload, dict) or not isinstance(payload.get("hparams"), dict):
        return None, "?"
    name = str(payload["hparams"].get("name", "?"))
    task = (payload.get("metadata") or {}).get("task")
    if isinstance(task, str):
        return task, name
    try:
        from ..models import Potential, resolve_model

        if issubclass(resolve_model(name), Potential):
            return "potential", name
    except Exception:  # noqa: BLE001 - unknown or unimportable class: kind unknown
        pass
    return None, name


def _is_torchscript(path: str) -> bool:
    import zipfile

    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):  # a truncated or damaged archive: the loader that follows says why
        return False


def describe(task: str) -> str:
    return KINDS.get(task, f"a {task!r} model")


def require_potential(path: str, command: str) -> None:
    """Raise a one-line ``ValueError`` when the checkpoint at ``path`` is not an interatomic potential
    (``equivar md | relax | eval`` take potentials only)."""
    task, name = checkpoint_task(path)
    if task is not None and task != "potential":
        raise ValueError(
            f"{path}: is {describe(task)} ({name}, task {task!r}); equivar {command} takes interatomic "
            "potentials (task 'potential', e.g. MACE)"
        )
