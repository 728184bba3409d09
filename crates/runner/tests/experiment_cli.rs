//! `scorelab experiment` as a user runs it, at toy size: both kinds write their CSVs and config,
//! rerun byte for byte, train the networks they need, and refuse bad files with exit 2.

use std::fs;

mod common;
use common::{ok, scorelab};

const MIX: &str = r#"density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }"#;

#[test]
fn a_samplers_experiment_writes_every_seed_and_a_summary_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = format!(
        "seed = 1\n[data]\n{MIX}\n[model]\nkind = \"noise_conditional_mlp\"\nhidden = [8]\n[objective]\nkind = \"dsm_multi\"\nsigma_max = 20.0\nsigma_min = 1.0\n[train]\nsteps = 30\nbatch = 32\n"
    );
    fs::write(d.join("t.toml"), train).unwrap();
    let exp = format!(
        r#"kind = "samplers"
description = "toy"
seeds = [1, 2]
tests = 9
[base]
chains = 40
{MIX}
init = {{ kind = "uniform", low = -8.0, high = 8.0 }}
[train.nc]
config = "t.toml"
[[run]]
name = "ula"
steps_sweep = [5, 10]
sampler = {{ kind = "langevin", eps = 0.1, steps = 1 }}
[[run]]
name = "ald"
noised_score = "ncsn_toy"
sampler = {{ kind = "annealed_langevin", eps = 0.1, steps = 2, sigma_max = 20.0, sigma_min = 1.0, levels = 3 }}
[[run]]
name = "ode"
model = "nc"
sampler = {{ kind = "ode", steps = 3, sigma_max = 20.0, sigma_min = 1.0 }}
"#
    );
    fs::write(d.join("toy.toml"), &exp).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "toy.toml", "--results", "r"],
        d,
    ));
    let csv = fs::read_to_string(d.join("r/toy.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "run,sampler,score,seed,steps,score_evals,metric,value,se,p_value,target"
    );
    // ula: 2 budgets × 2 seeds × 8 metrics; ald and ode: 2 seeds × 8 metrics.
    assert_eq!(lines.len(), 1 + 32 + 16 + 16);
    assert!(csv.contains("\nula,langevin,exact,2,10,10,mode_weight_1,"));
    assert!(csv.contains("\nald,annealed_langevin,exact:ncsn_toy,1,6,6,mmd2,"));
    assert!(csv.contains("\node,ode,learned:nc,1,3,6,ksd,"));
    assert!(lines
        .iter()
        .filter(|l| l.starts_with("ode,"))
        .all(|l| l.ends_with(",p_sigma=1")));
    assert!(lines
        .iter()
        .filter(|l| l.starts_with("ald,"))
        .all(|l| l.ends_with(",p")));
    let summary = fs::read_to_string(d.join("r/toy_summary.csv")).unwrap();
    assert_eq!(
        summary.lines().next().unwrap(),
        "run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target"
    );
    assert_eq!(summary.lines().count(), 1 + 16 + 8 + 8);
    assert!(d.join("r/models/toy/nc/model.safetensors").exists());
    let config = fs::read_to_string(d.join("r/toy.config.toml")).unwrap();
    assert!(config.contains("[run_info]") && config.contains("commit = "));
    ok(&scorelab(
        &["experiment", "--config", "toy.toml", "--results", "r2"],
        d,
    ));
    assert_eq!(csv, fs::read_to_string(d.join("r2/toy.csv")).unwrap());
    assert_eq!(
        summary,
        fs::read_to_string(d.join("r2/toy_summary.csv")).unwrap()
    );

    // A run naming a model without [train.NAME], and a bad sampler key: exit 2, nothing written.
    for (i, (from, to, needle)) in [
        (
            "model = \"nc\"",
            "model = \"other\"",
            "has no [train.other]",
        ),
        (
            "eps = 0.1, steps = 1 }",
            "eps = 0.1, steps = 1, levels = 2 }",
            "unknown field `levels`",
        ),
    ]
    .iter()
    .enumerate()
    {
        fs::write(d.join(format!("bad{i}.toml")), exp.replace(from, to)).unwrap();
        let out = scorelab(
            &[
                "experiment",
                "--config",
                &format!("bad{i}.toml"),
                "--results",
                "rb",
            ],
            d,
        );
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains(needle));
        assert!(!d.join(format!("rb/bad{i}.csv")).exists());
    }
}

/// The options of the sampler zoo: a fixed MMD² bandwidth, KSD left out, the timing file, and the
/// prior's predicted mode weight for deterministic runs (0.254 for the VE ODE from σ_max = 20 on
/// the NCSN toy; the weight itself with prior = "exact").
#[test]
fn a_samplers_experiment_fixes_the_bandwidth_times_runs_and_predicts_prior_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let toy = r#"density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }"#;
    let exp = format!(
        r#"kind = "samplers"
description = "zoo"
seeds = [1]
tests = 0
mmd_bandwidth = 2.0
ksd = false
timing = true
prior_prediction = true
[base]
chains = 60
{toy}
[[run]]
name = "ode_ve"
sampler = {{ kind = "ode", steps = 20, schedule = {{ kind = "ve", sigma_min = 0.01, sigma_max = 20.0 }} }}
[[run]]
name = "ode_ve_exact"
prior = "exact"
sampler = {{ kind = "ode", steps = 20, schedule = {{ kind = "ve", sigma_min = 0.01, sigma_max = 20.0 }} }}
[[run]]
name = "sde_vp"
steps_sweep = [10, 20]
sampler = {{ kind = "reverse_sde", steps = 5, schedule = {{ kind = "vp" }} }}
"#
    );
    fs::write(d.join("zoo.toml"), &exp).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "zoo.toml", "--results", "r"],
        d,
    ));
    let csv = fs::read_to_string(d.join("r/zoo.csv")).unwrap();
    assert!(!csv.contains(",ksd,"), "KSD was left out");
    assert!(csv.contains(",mmd_bandwidth,2,"), "{csv}");
    let timing = fs::read_to_string(d.join("r/zoo_timing.csv")).unwrap();
    assert_eq!(
        timing.lines().next().unwrap(),
        "run,steps,score_evals,seed,seconds,ms_per_sample"
    );
    assert_eq!(timing.lines().count(), 1 + 4);
    let prior = fs::read_to_string(d.join("r/zoo_prior.csv")).unwrap();
    let rows: Vec<&str> = prior.lines().collect();
    // Only the deterministic runs: the reverse SDE has no prediction.
    assert_eq!(rows.len(), 3, "{prior}");
    assert!(
        rows[1].starts_with("ode_ve,20,gaussian,1,20,20,0.254"),
        "{prior}"
    );
    assert!(
        rows[2].starts_with("ode_ve_exact,20,exact,") && rows[2].ends_with(",0.2"),
        "{prior}"
    );
}

/// `target = "p"` compares a run that stops at σ = 1 with p itself instead of p_σ: every row is
/// labelled p, the chains (and so the mode weights) are the same, and MMD² with a fixed bandwidth
/// moves from ≈ 0 (against its own p_σ) to the positive distance between p_σ and p.
#[test]
fn a_samplers_experiment_can_compare_every_run_with_p() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exp = |target: &str| {
        format!(
            r#"kind = "samplers"
description = "one target"
seeds = [1]
tests = 0
ksd = false
mmd_bandwidth = 2.0
{target}
[base]
chains = 400
{MIX}
[[run]]
name = "ald"
sampler = {{ kind = "annealed_langevin", eps = 0.1, steps = 30, sigma_max = 20.0, sigma_min = 1.0, levels = 5 }}
"#
        )
    };
    fs::write(d.join("own.toml"), exp("")).unwrap();
    fs::write(d.join("p.toml"), exp("target = \"p\"")).unwrap();
    for name in ["own", "p"] {
        ok(&scorelab(
            &[
                "experiment",
                "--config",
                &format!("{name}.toml"),
                "--results",
                "r",
            ],
            d,
        ));
    }
    let own = fs::read_to_string(d.join("r/own.csv")).unwrap();
    let p = fs::read_to_string(d.join("r/p.csv")).unwrap();
    let rows = |csv: &str, metric: &str| -> Vec<String> {
        csv.lines()
            .filter(|l| l.starts_with("ald,") && l.contains(&format!(",{metric},")))
            .map(str::to_string)
            .collect()
    };
    // Against p, the exact samples of p give every metric's floor; against each run's own
    // target there is no one target to draw them from.
    assert!(
        p.lines()
            .any(|l| l.starts_with("exact_samples,exact,exact,")),
        "{p}"
    );
    assert!(!own.contains("exact_samples"), "{own}");
    assert!(rows(&own, "mmd2")[0].ends_with(",p_sigma=1"), "{own}");
    assert!(p.lines().skip(1).all(|l| l.ends_with(",p")), "{p}");
    // The same chains: the mode weights agree to the last digit.
    let cell = |l: &str, i: usize| l.split(',').nth(i).unwrap().to_string();
    assert_eq!(
        cell(&rows(&own, "mode_weight_1")[0], 7),
        cell(&rows(&p, "mode_weight_1")[0], 7)
    );
    let mmd = |csv: &str| -> (f64, f64) {
        let l = &rows(csv, "mmd2")[0];
        (cell(l, 7).parse().unwrap(), cell(l, 8).parse().unwrap())
    };
    let ((m_own, se_own), (m_p, se_p)) = (mmd(&own), mmd(&p));
    assert!(
        m_own.abs() < 5.0 * se_own,
        "against p_σ: {m_own} ± {se_own}"
    );
    assert!(m_p > 5.0 * se_p, "against p: {m_p} ± {se_p}");
    // An unknown target names the key.
    fs::write(d.join("bad.toml"), exp("target = \"q\"")).unwrap();
    let out = scorelab(
        &["experiment", "--config", "bad.toml", "--results", "rb"],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown variant `q`"));
}

#[test]
fn a_noise_experiment_bins_the_error_by_distance_from_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let exp = format!(
        r#"kind = "noise"
description = "toy"
seeds = [1]
sigmas = [0.1, 1.0]
{MIX}
points = 200
box_low = -12.0
box_high = 12.0
box_points = 300
data_points = 100
bins = [0.0, 1.0, 3.0, 20.0]
[model]
kind = "mlp"
hidden = [8]
[train]
steps = 30
batch = 32
"#
    );
    fs::write(d.join("noise.toml"), exp).unwrap();
    ok(&scorelab(
        &["experiment", "--config", "noise.toml", "--results", "r"],
        d,
    ));
    let csv = fs::read_to_string(d.join("r/noise.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "sigma,seed,region,bin_low,bin_high,points,error_clean,se_clean,error_noised,se_noised,target_noised"
    );
    // Per σ: one row over p, three bins.
    assert_eq!(lines.len(), 1 + 2 * 4);
    // The target's size over p: near a unit-variance mode far from the other, ∇log p_σ(x) ≈
    // −(x − μ)/(1 + σ²), so ½E‖∇log p_σ‖² ≈ (D/2)/(1 + σ²)² = 0.980 at σ = 0.1 and 0.25 at σ = 1
    // in D = 2; the bounds are 4 standard errors of 200 points (sd of ½‖x − μ‖² is 1 before the
    // factor).
    let target = |l: &str| l.split(',').nth(10).unwrap().parse::<f64>().unwrap();
    let (t01, t1) = (target(lines[1]), target(lines[5]));
    let se = |s: f64| 1.0 / (1.0 + s * s).powi(2) / 200f64.sqrt();
    assert!(
        (t01 - 0.980).abs() < 4.0 * se(0.1) && (t1 - 0.25).abs() < 4.0 * se(1.0),
        "{t01} {t1}"
    );
    assert!(lines[1].starts_with("0.1,1,p,,,200,"));
    let binned: usize = lines[2..5]
        .iter()
        .map(|l| l.split(',').nth(5).unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(binned, 300, "every box point falls in one bin");
    let summary = fs::read_to_string(d.join("r/noise_summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3);
    assert!(d
        .join("r/models/noise/sigma1_seed1/model.safetensors")
        .exists());
}
