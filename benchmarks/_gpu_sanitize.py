"""Small CUDA workload for ``compute-sanitizer`` (run by benchmarks/gpu.sh after the main script): the cg
Triton kernels (forward, gradients, fused double backward) at a small size with partial sample and channel
tiles, float32 and float64. Prints one line per dtype with the relative error against the CPU."""

import torch

from equivar import tp as T


def main():
    i1, i2, io, ins = T.p_config(2, 40)  # 40 channels: two channel tiles, the second partial
    for dtype in (torch.float32, torch.float64):
        m = T.TensorProduct(i1, i2, io, ins, shared_weights=False, internal_weights=False).to(dtype)
        g = torch.Generator().manual_seed(0)
        xs = [torch.randn(77, d, generator=g, dtype=dtype) for d in (i1.dim, i2.dim, m.weight_numel, io.dim)]
        res = []
        for dev in ("cpu", "cuda"):
            mm = m.to(dev)
            x1, x2, w, G = (t.to(dev).requires_grad_(k < 3) for k, t in enumerate(xs))
            e = (mm(x1, x2, w) * G).sum()
            (f,) = torch.autograd.grad(e, x2, create_graph=True)
            res.append(torch.autograd.grad(e + (f * f).sum(), (x1, x2, w)))
        err = max(((a.cpu() - b).norm() / b.norm()).item() for a, b in zip(res[1], res[0]))
        torch.cuda.synchronize()
        print(f"sanitize workload {dtype}: max rel err CUDA vs CPU {err:.2e}", flush=True)


if __name__ == "__main__":
    main()
