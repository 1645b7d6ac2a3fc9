import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "train"))


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("EQUIVAR_TRAIN_TEST_THREADS", "1")))
    yield
    torch.set_num_threads(n)
