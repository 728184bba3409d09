//! Shards: an experiment run in pieces (`experiment --shard K/N`, in any order, a shard killed
//! and run again) and gathered (`scorelab gather`) writes the same files as a whole run, byte for
//! byte; a gather before every shard finished, or from shards of another config, is refused and
//! names the shard to run.

mod common;

use common::{ok, scorelab, tree};
use std::fs;
use std::path::Path;

/// `scorelab experiment --config noise.toml --results RESULTS EXTRA…` in `d`.
fn experiment(d: &Path, results: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["experiment", "--config", "noise.toml", "--results", results];
    args.extend_from_slice(extra);
    scorelab(&args, d)
}

/// `scorelab gather --config noise.toml --results RESULTS --shards N` in `d`.
fn gather(d: &Path, results: &str, n: &str) -> std::process::Output {
    scorelab(
        &[
            "gather",
            "--config",
            "noise.toml",
            "--results",
            results,
            "--shards",
            n,
        ],
        d,
    )
}

const NOISE: &str = r#"kind = "noise"
description = "toy"
seeds = [1, 2]
sigmas = [0.1, 1.0]
density = { kind = "gaussian_mixture", weights = [0.3, 0.7], means = [[2.0, 0.0], [-1.0, 1.0]], covs = [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.8]]] }
points = 100
box_low = -6.0
box_high = 6.0
box_points = 100
data_points = 50
bins = [0.0, 1.0, 3.0, 20.0]
field_grid = 4
[model]
kind = "mlp"
hidden = [8]
[train]
steps = 20
batch = 16
"#;

#[test]
fn shards_in_any_order_gather_into_the_files_of_a_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("noise.toml"), NOISE).unwrap();
    ok(&experiment(d, "whole", &[]));
    let shard = |k: &str| experiment(d, "sharded", &["--shard", k]);
    // Four units over three shards, the last first.
    ok(&shard("3/3"));
    ok(&shard("1/3"));
    // A gather before every shard finished names the one missing.
    let early = gather(d, "sharded", "3");
    let err = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(2), "{err}");
    assert!(
        err.contains("shard 2/3") && err.contains("sigma0.1_seed2"),
        "{err}"
    );
    assert!(!d.join("sharded/noise.csv").exists());
    // A shard run again keeps its finished units.
    let again = shard("1/3");
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).contains("ran 0 unit(s), kept 2"));
    ok(&shard("2/3"));
    ok(&gather(d, "sharded", "3"));
    let (whole, sharded) = (tree(&d.join("whole")), tree(&d.join("sharded")));
    assert_eq!(
        whole.keys().collect::<Vec<_>>(),
        sharded.keys().collect::<Vec<_>>()
    );
    for (k, v) in &whole {
        assert!(sharded[k] == *v, "{k} differs");
    }
    assert!(
        whole.contains_key("noise_field.csv")
            && whole.contains_key("models/noise/sigma1_seed2/model.safetensors")
    );
    assert!(
        !d.join("sharded/shards").exists(),
        "the shard folders are removed"
    );
}

#[test]
fn shards_of_another_config_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("noise.toml"), NOISE).unwrap();
    for k in ["1/2", "2/2"] {
        ok(&experiment(d, "r", &["--shard", k]));
    }
    fs::write(
        d.join("noise.toml"),
        NOISE.replace("points = 100", "points = 101"),
    )
    .unwrap();
    let out = gather(d, "r", "2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("another config") && err.contains("remove"),
        "{err}"
    );
    // Running a shard with the changed config is refused too, before any work.
    let out = experiment(d, "r", &["--shard", "1/2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("another config"), "{err}");
    for bad in ["0/2", "3/2", "2", "a/b"] {
        let out = experiment(d, "r", &["--shard", bad]);
        assert_eq!(out.status.code(), Some(2), "--shard {bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("K/N"));
    }
}
