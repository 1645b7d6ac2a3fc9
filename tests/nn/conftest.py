import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Model tests use tiny tensors: one intra-op thread avoids OpenMP barrier stalls on shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
