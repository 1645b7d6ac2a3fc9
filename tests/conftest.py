import os

import pytest
import torch

torch.set_num_threads(int(os.environ.get("EQUIVAR_TEST_THREADS", "2")))

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    """Run a numeric test in both float32 and float64."""
    return request.param


@pytest.fixture
def tol(dtype):
    """Relative tolerance for oracle comparisons in the given dtype."""
    return 1e-6 if dtype == torch.float32 else 1e-10


@pytest.fixture
def shared_data():
    path = os.path.abspath(SHARED_DATA)
    if not os.path.isdir(path):
        pytest.skip(f"shared data not found at {path}")
    return path
