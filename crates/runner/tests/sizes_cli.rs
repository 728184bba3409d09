//! Absurd sizes are refused by the memory rule with exit code 2 and a message naming the estimate
//! and the limit, before anything is allocated or written (an allocation of that size aborts).

mod common;

use common::{ok, scorelab};
use std::fs;

fn refused(args: &[&str], d: &std::path::Path) -> String {
    let out = scorelab(args, d);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("over the limit of"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn absurd_batches_chains_and_samples_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("t.toml"),
        "[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"mlp\"\n[objective]\nkind = \"ism\"\n[train]\nbatch = 100000000000\n",
    )
    .unwrap();
    let err = refused(&["train", "--config", "t.toml", "--out", "run"], d);
    assert!(err.contains("train.batch"), "{err}");
    assert!(!d.join("run").exists(), "nothing is written");
    fs::write(
        d.join("s.toml"),
        "chains = 100000000000\ndensity = { kind = \"standard_normal\", dim = 2 }\ninit = { kind = \"gaussian\", std = 1.0 }\n[sampler]\nkind = \"langevin\"\neps = 0.1\nsteps = 10\n",
    )
    .unwrap();
    refused(&["sample", "--config", "s.toml", "--out", "x.csv"], d);
    assert!(!d.join("x.csv").exists());
    refused(
        &["equivalence", "--samples", "100000000000", "--out", "e.csv"],
        d,
    );
    assert!(!d.join("e.csv").exists());
    // An ordinary run fits under the default limit; the limit is the user's to set, and a tiny
    // one refuses the same run.
    ok(&scorelab(
        &["equivalence", "--samples", "1000", "--out", "e.csv"],
        d,
    ));
    fs::remove_file(d.join("e.csv")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorelab"))
        .args(["equivalence", "--samples", "1000", "--out", "e.csv"])
        .env("SCORELAB_MEMORY_LIMIT", "1K")
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SCORELAB_MEMORY_LIMIT"));
}
