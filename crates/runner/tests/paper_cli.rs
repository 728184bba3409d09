//! The paper's commands as a user runs them, at toy size: `experiment` with the `density_fit` and
//! `image_fit` kinds, `figures`, `paper` and `reproduce`'s refusals.

use std::fs;
use std::path::Path;

mod common;
use common::{ok, scorelab};

/// A bimodal 2-D data set, the second column scaled by `k`.
fn data(k: f64) -> String {
    let mut s = String::from("a,b\n");
    for i in 0..60 {
        let t = i as f64 / 60.0;
        let (x, y) = if i % 3 == 0 {
            (-2.0 + 0.3 * (7.0 * t).sin(), -1.0 + 0.4 * (11.0 * t).cos())
        } else {
            (1.5 + 0.5 * (5.0 * t).cos(), 1.0 + 0.3 * (13.0 * t).sin())
        };
        s.push_str(&format!("{x},{}\n", y * k));
    }
    s
}

const FIT: &str = r#"kind = "density_fit"
description = "toy"
seeds = [1, 2]
csv = "d.csv"
panels = 16
nodes = 6
samples = 60
langevin_steps = 20
grid = 12
tests = 10
[model]
kind = "energy_mlp"
hidden = [8]
[train]
steps = 40
batch = 16
eval_every = 20
[[objective]]
name = "ism"
kind = "ism"
[[objective]]
name = "dsm"
kind = "dsm"
sigma = 0.2
train = { steps = 60 }
"#;

fn column(csv: &str, method: &str, col: &str) -> Vec<f64> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == col).unwrap();
    lines
        .filter(|l| l.starts_with(&format!("{method},")))
        .map(|l| l.split(',').nth(j).unwrap().parse().unwrap())
        .collect()
}

/// `experiment --config CONFIG` run twice, into `r1` and `r2`: each of `files` is the same, byte
/// for byte.
fn runs_twice_identically(d: &Path, config: &str, files: &[&str]) {
    for r in ["r1", "r2"] {
        ok(&scorelab(
            &["experiment", "--config", config, "--results", r],
            d,
        ));
    }
    for f in files {
        assert_eq!(
            fs::read(d.join("r1").join(f)).unwrap(),
            fs::read(d.join("r2").join(f)).unwrap(),
            "{f} differs between reruns"
        );
    }
}

/// `experiment` on the config text `case` (as `bad.toml`): exit 2, the message contains `want`,
/// and nothing is written.
fn refused_experiment(d: &Path, case: &str, want: &str) {
    fs::write(d.join("bad.toml"), case).unwrap();
    let out = scorelab(
        &["experiment", "--config", "bad.toml", "--results", "r3"],
        d,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{want}: {err}");
    assert!(err.contains(want), "{want}: {err}");
    assert!(!d.join("r3/bad.csv").exists(), "{want}");
}

#[test]
fn a_density_fit_reruns_byte_for_byte_and_its_likelihood_is_in_the_data_units() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("d.csv"), data(1.0)).unwrap();
    fs::write(d.join("fit.toml"), FIT).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "fit.toml", "--results", "r1"],
        d,
    ));
    ok(&scorelab(
        &["experiment", "--config", "fit.toml", "--results", "r2"],
        d,
    ));
    for f in [
        "fit.csv",
        "fit_summary.csv",
        "fit_density.csv",
        "fit_samples.csv",
    ] {
        assert_eq!(
            fs::read(d.join("r1").join(f)).unwrap(),
            fs::read(d.join("r2").join(f)).unwrap(),
            "{f} differs between reruns"
        );
    }
    let a = fs::read_to_string(d.join("r1/fit.csv")).unwrap();
    for m in ["ism", "dsm", "gaussian", "kde_scott", "train"] {
        assert_eq!(column(&a, m, "seed").len(), 2, "{m}: one row per seed");
    }
    // The same data with the second column in units 10× smaller: the standardised data, hence
    // every fit, are identical, and each log-likelihood per point drops by exactly ln 10.
    fs::write(d.join("d.csv"), data(10.0)).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "fit.toml", "--results", "r3"],
        d,
    ));
    let b = fs::read_to_string(d.join("r3/fit.csv")).unwrap();
    for m in ["ism", "dsm", "gaussian", "kde_scott"] {
        let (x, y) = (column(&a, m, "heldout_ll"), column(&b, m, "heldout_ll"));
        for (x, y) in x.iter().zip(&y) {
            assert!(
                (x - y - 10f64.ln()).abs() < 1e-6,
                "{m}: {x} − {y} is not ln 10"
            );
        }
        // The held-out ISM loss is in standardised units: unchanged, up to the rounding of the
        // standardisation.
        for (x, y) in column(&a, m, "heldout_ism")
            .iter()
            .zip(&column(&b, m, "heldout_ism"))
        {
            assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{m}: {x} vs {y}");
        }
    }
    // A plain MLP has no energy: refused by name.
    fs::write(d.join("bad.toml"), FIT.replace("energy_mlp", "mlp")).unwrap();
    let out = scorelab(
        &["experiment", "--config", "bad.toml", "--results", "r4"],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("model.kind"));
    assert!(!d.join("r4/bad.csv").exists());
}

#[test]
fn an_image_fit_reruns_byte_for_byte_and_refuses_a_missing_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 4-pixel "images" in 0..16 with a label column.
    let mut s = String::from("p0,p1,p2,p3,label\n");
    for i in 0..50 {
        let v = [(i * 7) % 17, (i * 3) % 17, 16 - (i * 5) % 17, 0];
        s.push_str(&format!("{},{},{},{},{}\n", v[0], v[1], v[2], v[3], i % 3));
    }
    fs::write(d.join("img.csv"), s).unwrap();
    let exp = r#"kind = "image_fit"
description = "toy"
seeds = [1]
csv = "img.csv"
exclude = ["label"]
scale = 16.0
noise = 0.1
chains = 20
tests = 5
grid_images = 4
[train]
steps = 30
batch = 16
eval_every = 10
[[fit]]
name = "ism"
model = { kind = "mlp", hidden = [8] }
objective = { kind = "ism" }
[[fit.sample]]
name = "ism_langevin"
sampler = { kind = "langevin", eps = 0.001, steps = 10 }
init = { kind = "uniform", low = 0.0, high = 1.0 }
tweedie = true
[[fit]]
name = "nc"
model = { kind = "noise_conditional_mlp", hidden = [8] }
objective = { kind = "dsm_multi", sigma_max = 1.0, sigma_min = 0.1, levels = 3 }
[[fit.sample]]
name = "nc_annealed"
sampler = { kind = "annealed_langevin", eps = 0.001, steps = 5, sigma_max = 1.0, sigma_min = 0.1, levels = 3, denoise = true }
"#;
    fs::write(d.join("img.toml"), exp).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "img.toml", "--results", "r1"],
        d,
    ));
    ok(&scorelab(
        &["experiment", "--config", "img.toml", "--results", "r2"],
        d,
    ));
    for f in ["img.csv", "img_summary.csv", "img_samples.csv"] {
        assert_eq!(
            fs::read(d.join("r1").join(f)).unwrap(),
            fs::read(d.join("r2").join(f)).unwrap(),
            "{f} differs between reruns"
        );
    }
    let csv = fs::read_to_string(d.join("r1/img.csv")).unwrap();
    for m in ["real_digits", "ism_langevin", "nc_annealed"] {
        assert_eq!(column(&csv, m, "seed").len(), 1, "{m}");
        let nn = column(&csv, m, "nn_median")[0];
        assert!(nn.is_finite() && nn >= 0.0, "{m}: {nn}");
    }
    // Held-out images lie in [0, 1]⁴, so their distance to a training image is at most √4 = 2.
    let nn = column(&csv, "real_digits", "nn_median")[0];
    assert!(nn <= 2.0, "{nn}");
    let grid = fs::read_to_string(d.join("r1/img_samples.csv")).unwrap();
    assert_eq!(grid.lines().count(), 1 + 3 * 4);
    fs::write(
        d.join("bad.toml"),
        exp.replace(r#"exclude = ["label"]"#, r#"exclude = ["lable"]"#),
    )
    .unwrap();
    let out = scorelab(
        &["experiment", "--config", "bad.toml", "--results", "r3"],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lable"));
}

#[test]
fn figures_paper_and_reproduce_refuse_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // reproduce outside the repository root.
    let out = scorelab(&["reproduce", "--quick"], d);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("repository root"));
    // figures without results: every figure is listed with the command that makes its inputs.
    fs::create_dir(d.join("empty")).unwrap();
    let out = scorelab(&["figures", "--results", "empty", "--figures", "f"], d);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not drawn") && err.contains("scorelab experiment"),
        "{err}"
    );
    let out = scorelab(&["figures", "--results", "nowhere"], d);
    assert_eq!(out.status.code(), Some(2));
    // paper: a template naming a value no file gives is refused and nothing is written.
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../results");
    let paper = || {
        let r = results.to_str().unwrap();
        scorelab(
            &[
                "paper",
                "--results",
                r,
                "--template",
                "t.md",
                "--out",
                "p.md",
            ],
            d,
        )
    };
    fs::write(d.join("t.md"), "C = {{lock_c}}, x = {{no_such_value}}\n").unwrap();
    let out = paper();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_value"));
    assert!(!d.join("p.md").exists());
    fs::write(d.join("t.md"), "C = {{lock_c}}\n").unwrap();
    ok(&paper());
    assert!(fs::read_to_string(d.join("p.md"))
        .unwrap()
        .starts_with("C = "));
}

/// 4-pixel "images" on the levels 0..16 (the last pixel always 0) with a label column.
fn levels_csv(off_grid: bool) -> String {
    let mut s = String::from("p0,p1,p2,p3,label\n");
    for i in 0..60 {
        let v = [(i * 7) % 17, (i * 3) % 17, 16 - (i * 5) % 17];
        let p0 = if off_grid && i == 5 {
            "3.5".to_string()
        } else {
            v[0].to_string()
        };
        s.push_str(&format!("{p0},{},{},0,{}\n", v[1], v[2], i % 3));
    }
    s
}

const IMAGE_LIKELIHOOD: &str = r#"kind = "image_likelihood"
description = "toy"
seeds = [1]
csv = "img.csv"
exclude = ["label"]
scale = 16.0
support = [0.0, 16.0]
draws = 2
model = { kind = "noise_conditional_mlp", hidden = [16], precondition = "edm" }
objective = { kind = "dsm_continuous", sigma_min = 5e-4, sigma_max = 200.0 }
train = { steps = 40, batch = 16, eval_every = 20 }
ode = { schedule = { kind = "vp" }, rtol = 1e-4, atol = 1e-4 }
[[estimator]]
name = "exact"
ode = { divergence = "exact" }
[[estimator]]
name = "hutchinson"
ode = { divergence = "hutchinson", projections = 1 }
"#;

#[test]
fn an_image_likelihood_reruns_byte_for_byte_and_refuses_bad_input_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("img.csv"), levels_csv(false)).unwrap();
    fs::write(d.join("il.toml"), IMAGE_LIKELIHOOD).unwrap();
    runs_twice_identically(
        d,
        "il.toml",
        &["il.csv", "il_summary.csv", "il_paired.csv", "il_images.csv"],
    );
    let csv = fs::read_to_string(d.join("r1/il.csv")).unwrap();
    // 17 levels, nothing learnt: log₂ 17 bits per pixel.
    let uniform = column(&csv, "uniform", "bits_per_dim")[0];
    assert!((uniform - 17f64.log2()).abs() < 1e-12, "{uniform}");
    let n_test = column(&csv, "exact", "n_test")[0];
    assert_eq!(n_test, 12.0);
    for m in ["gaussian", "independent_pixels", "exact", "hutchinson"] {
        let b = column(&csv, m, "bits_per_dim")[0];
        assert!(b.is_finite() && b > 0.0, "{m}: {b}");
    }
    // The ODE's two divergences take the same steps; one probe's noise is all that differs.
    assert_eq!(
        column(&csv, "exact", "score_evals"),
        column(&csv, "hutchinson", "score_evals")
    );
    let paired = fs::read_to_string(d.join("r1/il_paired.csv")).unwrap();
    let line = paired
        .lines()
        .find(|l| l.starts_with("hutchinson,exact,"))
        .unwrap();
    let v: Vec<f64> = line
        .split(',')
        .skip(4)
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(v[1] > 0.0 && (v[0] / v[1]).abs() < 4.0, "{line}");
    let images = fs::read_to_string(d.join("r1/il_images.csv")).unwrap();
    assert_eq!(images.lines().count(), 1 + 4 * 12);
    // Bad input: each exits 2, names the field and writes nothing.
    fs::write(d.join("off.csv"), levels_csv(true)).unwrap();
    let cases = [
        IMAGE_LIKELIHOOD.replace("img.csv", "off.csv"),
        IMAGE_LIKELIHOOD.replace(r#"rtol = 1e-4,"#, r#"rtol = 1e-4, model_dir = "m","#),
        IMAGE_LIKELIHOOD.replace(r#"name = "exact""#, r#"name = "gaussian""#),
        IMAGE_LIKELIHOOD.replace(
            r#"kind = "noise_conditional_mlp", hidden = [16], precondition = "edm""#,
            r#"kind = "mlp", hidden = [16]"#,
        ),
        IMAGE_LIKELIHOOD.replace("draws = 2", "draws = 0"),
    ];
    for (case, want) in cases.iter().zip([
        "support",
        "ode.model_dir",
        "gaussian",
        "model.kind",
        "draws",
    ]) {
        refused_experiment(d, case, want);
    }
}

const TOY_ZOO: &str = r#"kind = "toy_zoo"
description = "toy"
seeds = [1]
toys = ["8gaussians", "checkerboard", "moons"]
samples = 200
heldout = 400
model = { kind = "noise_conditional_mlp", hidden = [32, 32], precondition = "edm" }
objective = { kind = "dsm_continuous", sigma_min = 5e-4, sigma_max = 200.0 }
train = { steps = 150, batch = 128, lr = 3e-3, eval_every = 50 }
sampler = { kind = "heun", steps = 10, schedule = { kind = "vp", t_min = 1e-3 } }
ode = { schedule = { kind = "vp" }, rtol = 1e-4, atol = 1e-4 }
kl = { panels = 8, nodes = 4, box = 5.5 }
grid = 6
figure_points = 50
"#;

/// The toy zoo at toy size: byte-for-byte reruns; KL(p ‖ p_θ) by quadrature agrees with its
/// Monte Carlo estimate on the held-out points, NLL − NLL of the truth, within 4 standard errors
/// of the NLL plus the quadrature's own error estimate (two independent routes to one number);
/// KL only where p is closed form; bad input refused by name.
#[test]
fn a_toy_zoo_reruns_byte_for_byte_and_its_kl_matches_the_nll_gap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("tz.toml"), TOY_ZOO).unwrap();
    runs_twice_identically(
        d,
        "tz.toml",
        &[
            "tz.csv",
            "tz_summary.csv",
            "tz_samples.csv",
            "tz_density.csv",
        ],
    );
    let csv = fs::read_to_string(d.join("r1/tz.csv")).unwrap();
    for toy in ["8gaussians", "checkerboard"] {
        let [nll, se, truth, kl, change] =
            ["nll", "nll_se", "nll_true", "kl", "kl_change"].map(|c| column(&csv, toy, c)[0]);
        assert!(kl > 0.0, "{toy}: {kl}");
        let gap = nll - truth;
        assert!(
            (gap - kl).abs() < 4.0 * se + change,
            "{toy}: NLL gap {gap} vs KL {kl} (se {se}, quadrature {change})"
        );
    }
    let moons = csv.lines().find(|l| l.starts_with("moons,")).unwrap();
    assert!(moons.contains(",,"), "no KL or true NLL for moons: {moons}");
    let density = fs::read_to_string(d.join("r1/tz_density.csv")).unwrap();
    assert_eq!(density.lines().count(), 1 + 3 * 36);
    for (case, want) in [
        (TOY_ZOO.replace("\"moons\"", "\"moon\""), "toys"),
        (TOY_ZOO.replace("panels = 8", "panels = 6"), "kl"),
        (
            TOY_ZOO.replace(
                r#"kind = "noise_conditional_mlp", hidden = [32, 32], precondition = "edm""#,
                r#"kind = "mlp", hidden = [32, 32]"#,
            ),
            "model.kind",
        ),
    ] {
        refused_experiment(d, &case, want);
    }
}

/// 150 labelled 4-pixel "images" in 0..16: class k lights pixel k.
fn labelled_csv(flip: bool) -> String {
    let mut s = String::from("p0,p1,p2,p3,label\n");
    for i in 0..150 {
        let k = i % 3;
        let mut v = [(i * 7) % 4, (i * 3) % 4, (i * 5) % 4, 2];
        v[k] = 12 + (i * 11) % 5;
        if flip && i == 0 {
            v[3] = 3;
        }
        s.push_str(&format!("{},{},{},{},{k}\n", v[0], v[1], v[2], v[3]));
    }
    s
}

const CLASSIFIER: &str = r#"kind = "classifier"
description = "toy"
csv = "img.csv"
label = "label"
scale = 16.0
split_seed = 3
test_fraction = 0.4
hidden = [16, 4]
steps = 300
batch = 32
lr = 1e-2
seed = 1
"#;

const METRIC_FIT: &str = r#"kind = "image_fit"
description = "toy"
seeds = [1, 2]
csv = "img.csv"
exclude = ["label"]
scale = 16.0
noise = 0.1
chains = 60
tests = 0
grid_images = 60
metric = { classifier = "rc/models/cls/classifier.safetensors" }
[train]
steps = 40
batch = 16
eval_every = 20
[[fit]]
name = "nc"
model = { kind = "noise_conditional_mlp", hidden = [8] }
objective = { kind = "dsm_multi", sigma_max = 1.0, sigma_min = 0.1, levels = 3 }
[[fit.sample]]
name = "nc_annealed"
sampler = { kind = "annealed_langevin", eps = 0.001, steps = 5, sigma_max = 1.0, sigma_min = 0.1, levels = 3, denoise = true }
[[fit]]
name = "pre"
pretrained = "pre"
[[fit.sample]]
name = "pre_heun"
sampler = { kind = "heun", steps = 5, schedule = { kind = "edm", sigma_min = 0.1, sigma_max = 1.0 } }
"#;

const PRETRAIN: &str = r#"seed = 5
[data]
csv = "img.csv"
columns = ["p0", "p1", "p2", "p3"]
transform = "scale"
scale = 16.0
test_fraction = 0.4
split_seed = 3
[model]
kind = "noise_conditional_mlp"
hidden = [8]
precondition = "edm"
[objective]
kind = "dsm_continuous"
sigma_min = 0.05
sigma_max = 2.0
[train]
steps = 30
batch = 16
eval_every = 10
"#;

/// The labelled images, the classifier (in `rc`) and a network trained on its split (`pre`).
fn metric_setup(d: &Path) {
    fs::write(d.join("img.csv"), labelled_csv(false)).unwrap();
    fs::write(d.join("cls.toml"), CLASSIFIER).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "cls.toml", "--results", "rc"],
        d,
    ));
    fs::write(d.join("pre.toml"), PRETRAIN).unwrap();
    ok(&scorelab(
        &["train", "--config", "pre.toml", "--out", "pre"],
        d,
    ));
}

/// The digit metric end to end: a classifier trained on a fixed split and saved with its data's
/// record; an image fit judged by the Fréchet distance of its features in chunks of the floor
/// set's size, with the floor set and uniform noise as the two ends, the class counts of every
/// sample set, a pretrained network sampled beside trained ones, byte-identical reruns; and the
/// refusals: a changed data file, a pretrained network of another split, too few chains.
#[test]
fn the_digit_metric_judges_samples_against_its_floor_and_refuses_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    metric_setup(d);
    let acc = fs::read_to_string(d.join("rc/cls.csv")).unwrap();
    // 60 held out: 30 reference, 30 floor; the classes are separable.
    assert!(
        acc.contains("reference,30,") && acc.contains("floor,30,"),
        "{acc}"
    );
    assert!(column(&acc, "floor", "accuracy")[0] > 0.9, "{acc}");
    fs::write(d.join("img.toml"), METRIC_FIT).unwrap();
    runs_twice_identically(
        d,
        "img.toml",
        &[
            "img.csv",
            "img_summary.csv",
            "img_samples.csv",
            "img_classes.csv",
            "img_frechet_bias.csv",
        ],
    );
    let csv = fs::read_to_string(d.join("r1/img.csv")).unwrap();
    let floor = column(&csv, "real_digits", "frechet");
    let noise = column(&csv, "uniform_noise", "frechet");
    assert_eq!(floor.len(), 2);
    assert!(
        floor[0] > 0.0 && noise[0] > 3.0 * floor[0],
        "{floor:?} {noise:?}"
    );
    for m in ["nc_annealed", "pre_heun"] {
        let f = column(&csv, m, "frechet");
        assert!(f.iter().all(|v| v.is_finite() && *v >= 0.0), "{m}: {f:?}");
        let c = column(&csv, m, "coverage");
        assert!(c.iter().all(|v| (0.0..=1.0).contains(v)), "{m}: {c:?}");
    }
    // Every sample set's class counts add up to its finite chains.
    let classes = fs::read_to_string(d.join("r1/img_classes.csv")).unwrap();
    let total: usize = classes
        .lines()
        .filter(|l| l.starts_with("uniform_noise,1,"))
        .map(|l| l.rsplit(',').next().unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(total, 60);
    // The bias table ends with the whole floor set, as in the CSV.
    let bias = fs::read_to_string(d.join("r1/img_frechet_bias.csv")).unwrap();
    let last: Vec<&str> = bias.lines().last().unwrap().split(',').collect();
    assert_eq!(last[0], "30");
    assert_eq!(last[2].parse::<f64>().unwrap(), floor[0]);
    // The samples file keeps all 60 of both samplers of the first seed and the 30 floor images.
    let grid = fs::read_to_string(d.join("r1/img_samples.csv")).unwrap();
    assert_eq!(grid.lines().count(), 1 + 30 + 60 * 2);
    // Refusals, each naming its key and writing nothing.
    refused_experiment(
        d,
        &METRIC_FIT.replace("chains = 60", "chains = 20"),
        "chains",
    );
    fs::write(
        d.join("pre2.toml"),
        PRETRAIN.replace("split_seed = 3", "split_seed = 4"),
    )
    .unwrap();
    ok(&scorelab(
        &["train", "--config", "pre2.toml", "--out", "pre2"],
        d,
    ));
    refused_experiment(
        d,
        &METRIC_FIT.replace("pretrained = \"pre\"", "pretrained = \"pre2\""),
        "fit pre pretrained",
    );
    refused_experiment(
        d,
        &METRIC_FIT.replace(
            "[[fit]]\nname = \"pre\"\npretrained",
            "[[fit]]\nname = \"pre\"\nmodel = { kind = \"mlp\", hidden = [4] }\npretrained",
        ),
        "fit pre",
    );
    refused_experiment(
        d,
        &METRIC_FIT.replace(
            "rc/models/cls/classifier.safetensors",
            "pre/model.safetensors",
        ),
        "metric.classifier",
    );
    fs::write(d.join("img.csv"), labelled_csv(true)).unwrap();
    refused_experiment(d, METRIC_FIT, "does not match the data");
}

const INPAINT: &str = r#"kind = "inpaint"
description = "toy"
seeds = [1, 2]
csv = "img.csv"
exclude = ["label"]
scale = 16.0
metric = { classifier = "rc/models/cls/classifier.safetensors" }
model = "pre"
sampler = { kind = "pc", steps = 10, snr = 0.16, schedule = { kind = "edm", sigma_min = 0.05, sigma_max = 2.0 } }
grid_images = 3
[[mask]]
name = "lower"
pattern = "lower_half"
[[mask]]
name = "rand"
pattern = "random"
fraction = 0.5
seed = 2
[[mask]]
name = "file"
csv = "mask.csv"
"#;

/// Inpainting end to end on 2 × 2 "images": byte-identical reruns; every completion keeps its
/// known pixels exactly; the accuracies are fractions of the 30 floor images and the masked
/// inputs' accuracy does not depend on the seed; and the refusals: a mask file of the wrong
/// length, one that hides nothing or everything, a random fraction that hides nothing, a
/// sampler off the grid, a classifier of other data, each exit 2, named, nothing written.
#[test]
fn inpainting_keeps_the_known_pixels_and_refuses_bad_masks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    metric_setup(d);
    fs::write(d.join("mask.csv"), "a,b,c,d\n1,0,0,1\n").unwrap();
    fs::write(d.join("inp.toml"), INPAINT).unwrap();
    runs_twice_identically(
        d,
        "inp.toml",
        &["inp.csv", "inp_summary.csv", "inp_images.csv"],
    );
    let csv = fs::read_to_string(d.join("r1/inp.csv")).unwrap();
    for m in ["lower", "rand", "file"] {
        let a = column(&csv, m, "accuracy_completed");
        let z = column(&csv, m, "accuracy_masked");
        assert_eq!(a.len(), 2, "{m}");
        assert!(
            a.iter()
                .chain(&z)
                .all(|v| (v * 30.0 - (v * 30.0).round()).abs() < 1e-9),
            "{m}"
        );
        assert_eq!(z[0], z[1], "{m}");
        assert_eq!(column(&csv, m, "hidden")[0], 0.5, "{m}");
    }
    // Completed images equal the originals wherever the masked row shows a value.
    let images = fs::read_to_string(d.join("r1/inp_images.csv")).unwrap();
    let rows: Vec<Vec<&str>> = images
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    for m in ["lower", "rand", "file"] {
        for i in 0..3 {
            let get = |kind: &str| {
                rows.iter()
                    .find(|r| r[0] == m && r[1] == i.to_string() && r[2] == kind)
                    .unwrap()
                    .clone()
            };
            let (masked, done, orig) = (get("masked"), get("completed"), get("original"));
            for j in 3..7 {
                if !masked[j].is_empty() {
                    assert_eq!(masked[j], done[j], "{m} {i} {j}");
                    assert_eq!(masked[j], orig[j], "{m} {i} {j}");
                }
            }
            assert_eq!(masked.iter().skip(3).filter(|c| c.is_empty()).count(), 2);
        }
    }
    let refuse = |case: &str, mask_csv: &str, want: &str| {
        fs::write(d.join("mask.csv"), mask_csv).unwrap();
        refused_experiment(d, case, want);
    };
    refuse(INPAINT, "1,0,1\n", "mask file: has 3 values");
    refuse(INPAINT, "1,1,1,1\n", "mask file: hides 0 of 4");
    refuse(INPAINT, "0,0,0,0\n", "mask file: hides 4 of 4");
    refuse(INPAINT, "1,0\n0,1\n", "mask file: csv");
    refuse(
        &INPAINT.replace("fraction = 0.5", "fraction = 0.1"),
        "1,0,0,1\n",
        "mask rand: fraction",
    );
    refuse(
        &INPAINT.replace(
            "kind = \"pc\", steps = 10, snr = 0.16",
            "kind = \"ode\", steps = 10",
        ),
        "1,0,0,1\n",
        "sampler.kind",
    );
    fs::write(d.join("img.csv"), labelled_csv(true)).unwrap();
    refuse(INPAINT, "1,0,0,1\n", "does not match the data");
}

/// Copies the text files (CSV, TOML, Markdown) of `from` into `to`, folders included.
fn copy_text_files(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_text_files(&p, &target);
        } else if matches!(
            p.extension().and_then(|x| x.to_str()),
            Some("csv" | "toml" | "md")
        ) {
            fs::copy(&p, &target).unwrap();
        }
    }
}

/// `scorelab paper` on the committed results renders the committed paper's template; with one
/// number of `results/` changed so that a sentence's claim no longer holds (the best digits
/// network's Fréchet distance raised to 30, above 1.5× the floor), it exits 2 naming the check
/// and the numbers, and writes nothing.
#[test]
fn a_claim_the_results_contradict_makes_paper_fail() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    copy_text_files(&repo.join("results"), &d.join("results"));
    let template = repo.join("paper/paper.template.md");
    let t = template.to_str().unwrap();
    let paper = || {
        scorelab(
            &[
                "paper",
                "--results",
                "results",
                "--template",
                t,
                "--out",
                "p.md",
            ],
            d,
        )
    };
    ok(&paper());
    fs::remove_file(d.join("p.md")).unwrap();
    let f = d.join("results/digits_summary.csv");
    let text = fs::read_to_string(&f).unwrap();
    let tampered: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("edm_heun,") {
                let mut c: Vec<&str> = l.split(',').collect();
                c[7] = "30";
                c.join(",")
            } else {
                l.to_string()
            }
        })
        .collect();
    fs::write(&f, tampered.join("\n") + "\n").unwrap();
    let out = paper();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "check best_digits_below_floor_nearer_training_images fails: 30.0 against the floor's"
        ),
        "{err}"
    );
    assert!(!d.join("p.md").exists());
}
