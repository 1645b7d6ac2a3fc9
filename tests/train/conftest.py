import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import tiny_config_dict, write_tiny_dataset  # noqa: E402


@pytest.fixture(scope="session")
def tiny_xyz(tmp_path_factory):
    return write_tiny_dataset(str(tmp_path_factory.mktemp("data") / "tiny.xyz"))


@pytest.fixture
def tiny_cfg(tiny_xyz, tmp_path):
    from equivar.train import config_from_dict

    return config_from_dict(tiny_config_dict(tiny_xyz, str(tmp_path / "run")))


@pytest.fixture(autouse=True)
def _one_thread():
    """Small graphs: one thread is as fast as two on an idle machine and far faster on a shared one."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("EQUIVAR_TRAIN_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)
