//! The solver study end to end on a small config: its orders table recovers known orders on a
//! Gaussian, its exact-flow rows are the floor, and bad keys are refused by name.

use scorelab_studies::study::{run_serial, Context};
use scorelab_studies::ExperimentFile;
use std::sync::atomic::AtomicBool;

const CONFIG: &str = r#"
kind = "solvers"
description = "test"
seeds = [1]
budgets = [16, 32, 64]
[[target]]
name = "g"
chains = 200
density = { kind = "gaussian", mean = [1.0, -2.0], cov = [[2.0, 0.6], [0.6, 0.5]] }
[[schedule]]
name = "edm"
schedule = { kind = "edm" }
[[sampler]]
sampler = { kind = "ddim" }
[[sampler]]
sampler = { kind = "unipc" }
grids = ["log_snr"]
[[sampler]]
sampler = { kind = "euler_ancestral" }
grids = ["karras"]
"#;

fn load(text: &str) -> anyhow::Result<scorelab_studies::Experiment> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.toml");
    std::fs::write(&path, text)?;
    scorelab_studies::Experiment::load(&path, false)
}

/// DDIM is first order and UniPC third on a Gaussian's smooth flow (the solvers' own tests
/// measure the same on a closed-form flow; here it is the study's fit of its own rows); a
/// stochastic sampler gets no flow error and no order; the exact flow from p_T has one mode and
/// so no weight error.
#[test]
fn the_study_recovers_known_orders_on_a_gaussian() {
    let e = load(CONFIG).unwrap();
    let stop = AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let out = run_serial(e.file.study(), &mut Context::new(dir.path(), &stop))
        .unwrap()
        .expect("not stopped");
    let orders = out.get("orders").unwrap().to_csv();
    let order = |s: &str| -> f64 {
        let line = orders
            .lines()
            .find(|l| l.contains(&format!(",{s},")))
            .unwrap();
        line.split(',').nth(5).unwrap().parse().unwrap()
    };
    assert!((order("ddim") - 1.0).abs() < 0.15, "{orders}");
    assert!((order("unipc") - 3.0).abs() < 0.2, "{orders}");
    assert!(!orders.contains("euler_ancestral"), "{orders}");
    let main = out.get("").unwrap().to_csv();
    assert!(!main.contains("euler_ancestral,karras,16,16,prior,1,flow_error"));
    assert!(
        main.contains("g,edm,exact_flow,none,0,0,exact,1,weight_error,0\n"),
        "{main}"
    );
    let budgets = out.get("budgets").unwrap().to_csv();
    assert!(budgets.starts_with("target,schedule,sampler,grid,nfe_flow_error_0.1,nfe_flow_error_0.01,nfe_log_p_prior,nfe_log_p_exact\n"));
}

/// Keys the study sets, unknown grids and non-mixture targets are refused naming the key.
#[test]
fn bad_keys_are_refused_by_name() {
    for (from, to, says) in [
        (
            r#"sampler = { kind = "ddim" }"#,
            r#"sampler = { kind = "ddim", steps = 3 }"#,
            "sampler[0].sampler.steps",
        ),
        (
            r#"grids = ["log_snr"]"#,
            r#"grids = ["logsnr"]"#,
            "sampler[1].grids",
        ),
        (
            r#"kind = "gaussian", mean"#,
            r#"kind = "banana", a = 1.0, b = 1.0, mean"#,
            "target",
        ),
        ("budgets = [16, 32, 64]", "budgets = [32, 16]", "budgets"),
        ("chains = 200", "chains = 200\ncolour = 1", "colour"),
        (
            r#"sampler = { kind = "ddim" }"#,
            r#"sampler = { kind = "langevin", eps = 0.1 }"#,
            "sampler[0]",
        ),
    ] {
        assert!(CONFIG.contains(from), "{from}");
        let err = format!("{:#}", load(&CONFIG.replacen(from, to, 1)).err().expect(to));
        assert!(err.contains(says), "{to}: {err}");
    }
    assert!(matches!(
        load(CONFIG).unwrap().file,
        ExperimentFile::Solvers(_)
    ));
}
