"""Two CPU processes (gloo) train with DistributedDataParallel and end with identical weights."""

import os
import socket

import torch
import torch.multiprocessing as mp
from helpers import tiny_config_dict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, cfg_dict, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    from equivar.train import config_from_dict, run_training

    res = run_training(config_from_dict(cfg_dict), log=lambda s: None)
    torch.save(
        {"live": res.live_state, "history": res.history, "world": res.dist.world_size},
        os.path.join(out, f"rank{rank}.pt"),
    )


def test_two_process_ddp_identical_weights(tiny_xyz, tmp_path):
    cfg = tiny_config_dict(tiny_xyz, str(tmp_path / "run"), epochs=2, batch_size=2)
    mp.spawn(_worker, args=(2, _free_port(), cfg, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    # 18 training graphs, batch 2 per rank -> 5 steps per epoch on each rank (sharded)
    assert r0["history"][-1]["step"] == r1["history"][-1]["step"] == 10
    for k in r0["live"]:
        torch.testing.assert_close(r0["live"][k], r1["live"][k], rtol=0, atol=0, msg=f"{k} differs between ranks")
    # metrics were reduced over ranks: both see the same validation loss
    assert r0["history"][-1]["valid_loss"] == r1["history"][-1]["valid_loss"]
    # rank 0 wrote the run; the weights moved away from the (seeded, identical) initialisation
    from equivar.train import build_model, load_checkpoint

    ck = load_checkpoint(str(tmp_path / "run" / "checkpoint.pt"))
    torch.manual_seed(0)  # the run's seed: same initialisation as the ranks had
    init = build_model(ck["hparams"]).double().state_dict()
    assert any(not torch.equal(init[k], r0["live"][k]) for k in init if init[k].is_floating_point())
