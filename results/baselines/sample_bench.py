"""Sampling-speed peer of `scorelab sample`: annealed Langevin with a scorelab noise-conditional
MLP file, in PyTorch (eager, no_grad) or JAX (jit + lax.scan), float32.

The network is read from the safetensors file as scorelab writes it (`layers.K.weight` fan_in x
fan_out, `layers.K.bias` 1 x fan_out, `sigma.weight` 1 x H1): h = x W0 + b0 + log(sigma) w_sigma,
then each hidden layer softplus(h) W + b, and the output divided by sigma. The loop is
scorelab's `annealed_langevin`: `levels` geometric sigmas from sigma_max to sigma_min, `steps` per
level, alpha_i = eps sigma_i^2 / sigma_L^2, x <- x + (alpha_i / 2) s(x, sigma_i) + sqrt(alpha_i) z.
The normal draws are made before the clock starts; only the loop is timed (after one untimed
call that compiles, for JAX, or warms up, for PyTorch).

Usage: python sample_bench.py torch|jax MODEL.safetensors [--chains 256] [--levels 20]
       [--steps 50] [--eps 2.5e-4] [--threads 2]
Prints one CSV row: framework,version,chains,evals,loop_s,ms_per_eval
"""
import argparse
import json
import struct
import time

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", f"{name}: {info['dtype']}"
        begin, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[begin:end], dtype=np.float32).reshape(info["shape"])
    return tensors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("framework", choices=["torch", "jax"])
    ap.add_argument("model")
    ap.add_argument("--chains", type=int, default=256)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--eps", type=float, default=2.5e-4)
    ap.add_argument("--sigma-max", type=float, default=5.0)
    ap.add_argument("--sigma-min", type=float, default=0.05)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    w = read_safetensors(a.model)
    n_layers = sum(1 for k in w if k.startswith("layers.") and k.endswith(".weight"))
    dim = w["layers.0.weight"].shape[0]
    sigmas = np.geomspace(a.sigma_max, a.sigma_min, a.levels).astype(np.float32)
    alphas = (a.eps * sigmas**2 / sigmas[-1] ** 2).astype(np.float32)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0.0, 1.0, (a.chains, dim)).astype(np.float32)
    noise = rng.standard_normal((a.levels, a.steps, a.chains, dim)).astype(np.float32)
    evals = a.levels * a.steps

    if a.framework == "torch":
        import torch

        torch.set_num_threads(a.threads)
        version = torch.__version__
        p = {k: torch.from_numpy(v.copy()) for k, v in w.items()}
        softplus = torch.nn.functional.softplus

        def score(x, sigma):
            h = x @ p["layers.0.weight"] + p["layers.0.bias"] + float(np.log(sigma)) * p["sigma.weight"]
            for k in range(1, n_layers):
                h = softplus(h) @ p[f"layers.{k}.weight"] + p[f"layers.{k}.bias"]
            return h / float(sigma)

        z = torch.from_numpy(noise)
        with torch.no_grad():
            score(torch.from_numpy(x0), 1.0)
            x = torch.from_numpy(x0.copy())
            start = time.perf_counter()
            for i in range(a.levels):
                alpha, sigma = float(alphas[i]), float(sigmas[i])
                root = alpha**0.5
                for t in range(a.steps):
                    x = x + (0.5 * alpha) * score(x, sigma) + root * z[i, t]
            elapsed = time.perf_counter() - start
    else:
        import jax
        import jax.numpy as jnp

        version = jax.__version__
        p = {k: jnp.asarray(v) for k, v in w.items()}

        def score(x, sigma):
            h = x @ p["layers.0.weight"] + p["layers.0.bias"] + jnp.log(sigma) * p["sigma.weight"]
            for k in range(1, n_layers):
                h = jax.nn.softplus(h) @ p[f"layers.{k}.weight"] + p[f"layers.{k}.bias"]
            return h / sigma

        @jax.jit
        def run(x, z, sig, alp):
            def level(x, inputs):
                sigma, alpha, zs = inputs

                def step(x, zt):
                    return x + 0.5 * alpha * score(x, sigma) + jnp.sqrt(alpha) * zt, None

                return jax.lax.scan(step, x, zs)[0], None

            return jax.lax.scan(level, x, (sig, alp, z))[0]

        args = (jnp.asarray(x0), jnp.asarray(noise), jnp.asarray(sigmas), jnp.asarray(alphas))
        run(*args).block_until_ready()
        start = time.perf_counter()
        run(*args).block_until_ready()
        elapsed = time.perf_counter() - start

    print(f"{a.framework},{version},{a.chains},{evals},{elapsed:.4f},{1000 * elapsed / evals:.4f}")


if __name__ == "__main__":
    main()
