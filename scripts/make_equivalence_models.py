#!/usr/bin/env python3
"""Writes paper/experiments/equivalence_models.toml: many models per density for the equivalence figure.

ESM(θ) − ISM(θ) = C for every model θ on a density with vanishing boundary term, so ESM against ISM
over many models lies on parallel lines of slope 1 offset by C. On the half-normal, linear models
s(x) = a x + b with a, b on a grid break it by exactly the boundary term −p(0) s(0) = −p(0) b.
Rerun: python3 scripts/make_equivalence_models.py
"""

eye2 = "[[1.0, 0.0], [0.0, 1.0]]"
densities = [
    ("gaussian_2d", '{ kind = "gaussian", mean = [1.0, -0.5], cov = [[1.0, 0.6], [0.6, 2.0]] }'),
    ("ncsn_mixture", '{ kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [%s, %s] }' % (eye2, eye2)),
    ("banana", '{ kind = "banana", a = 1.0, b = 0.5 }'),
    ("student_t_3d", '{ kind = "student_t", mean = [0.0, 1.0, -1.0], scale = [[1.0, 0.2, 0.1], [0.2, 2.0, -0.3], [0.1, -0.3, 0.7]], nu = 7.0 }'),
]
out = [
    "# Many models per density for the equivalence figure (written by scripts/make_equivalence_models.py).",
    "# Rerun: cargo run --release -- equivalence --config paper/experiments/equivalence_models.toml \\",
    "#          --out results/equivalence_models.csv",
    "seed = 11",
    "samples = 50000",
    "",
]
for name, dens in densities:
    for k in range(1, 11):
        scale = [0.2, 0.4, 0.7][k % 3]
        out += ["[[case]]", f'name = "{name}/linear{k}"', f"density = {dens}",
                f'model = {{ kind = "random_linear", seed = {k}, scale = {scale} }}', ""]
    for k in range(1, 4):
        out += ["[[case]]", f'name = "{name}/mlp{k}"', f"density = {dens}",
                f'model = {{ kind = "mlp", hidden = [32, 32], activation = "tanh", seed = {k} }}', ""]
    for k in range(1, 4):
        out += ["[[case]]", f'name = "{name}/energy{k}"', f"density = {dens}",
                f'model = {{ kind = "energy_mlp", hidden = [32, 32], activation = "softplus", seed = {k} }}', ""]
for a in [-2.0, -1.0, -0.5]:
    for b in [-1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5]:
        out += ["[[case]]", f'name = "half_normal/a{a:+}_b{b:+}"', 'density = { kind = "half_normal", scale = 1.0 }',
                f'model = {{ kind = "linear", a = [[{a}]], b = [{b}] }}', ""]
open("paper/experiments/equivalence_models.toml", "w").write("\n".join(out))
