"""Package metadata builds without setuptools deprecation warnings."""

import os
import tomllib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def test_license_is_an_spdx_string():
    """A ``license = {text = ...}`` table is deprecated since setuptools 77 (warning on every install)."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        meta = tomllib.load(f)
    assert isinstance(meta["project"]["license"], str), meta["project"]["license"]
    req = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(req.split(">=")[1].split(".")[0]) >= 77, req  # the first setuptools that reads SPDX strings
