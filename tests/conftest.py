import os

# The Triton kernels (equivar.tp._cg_triton) are tested on the CPU through Triton's interpreter, which
# must be chosen before triton is first imported; EQUIVAR_TEST_TRITON_COMPILED=1 keeps compiled kernels
# (a machine with a GPU that tests them on CUDA).
if os.environ.get("EQUIVAR_TEST_TRITON_COMPILED", "0") != "1":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
import torch

torch.set_num_threads(int(os.environ.get("EQUIVAR_TEST_THREADS", "2")))

#: the project's read-only reference data, beside the checkout (``EQUIVAR_SHARED_DATA`` points elsewhere,
#: e.g. from a git worktree or a copy of the tree)
SHARED_DATA = os.environ.get("EQUIVAR_SHARED_DATA") or os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data"
)
TESTS = os.path.dirname(os.path.abspath(__file__))
#: test folders whose tensors are tiny: one intra-op thread avoids OpenMP barrier stalls on shared cores
ONE_THREAD_DIRS = ("nn", "models", "symmetry", "testing", "diffusion")


@pytest.fixture(autouse=True)
def _one_thread_for_tiny_tensors(request):
    folder = os.path.relpath(str(request.node.path), TESTS).split(os.sep)[0]
    if folder not in ONE_THREAD_DIRS:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


@pytest.fixture(autouse=True)
def _fresh_dynamo(request):
    """torch.compile tests start from an empty dynamo cache (its recompile limit of 8 per code object
    would otherwise be reached across tests, and fullgraph=True turns that into a failure)."""
    if "compile" in request.node.name:
        import torch

        torch._dynamo.reset()
    yield
