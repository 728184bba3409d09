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

/// The rest of the sizes a hostile run tried (each aborted the process, out of memory): every
/// one exits 2 with its estimate, and nothing is written.
#[test]
fn every_other_absurd_size_exits_2_with_its_estimate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = "[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"mlp\"\n[objective]\nkind = \"ssm\"\n[train]\nsteps = 2\n";
    for (from, to, needle) in [
        ("[train]", "[train]\nval_batch = 1000000000000", "training"),
        (
            "kind = \"ssm\"",
            "kind = \"ssm\"\nprojections = 1000000000",
            "objective ssm",
        ),
        (
            "kind = \"mlp\"",
            "kind = \"mlp\"\nhidden = [100000000, 100000000]",
            "hidden [100000000, 100000000]",
        ),
        (
            "dim = 2",
            "dim = 100000000",
            "100000000-dimensional standard_normal",
        ),
    ] {
        fs::write(d.join("t.toml"), base.replace(from, to)).unwrap();
        let err = refused(&["train", "--config", "t.toml", "--out", "run"], d);
        assert!(err.contains(needle), "{err}");
        assert!(!d.join("run").exists(), "nothing is written");
    }
    fs::write(d.join("x.csv"), "x0,x1\n1,2\n3,4\n").unwrap();
    fs::write(
        d.join("p.toml"),
        "density = { kind = \"standard_normal\", dim = 2 }\n",
    )
    .unwrap();
    let err = refused(
        &[
            "eval",
            "--samples",
            "x.csv",
            "--density",
            "p.toml",
            "--out",
            "m.csv",
            "--tests",
            "1000000000000",
        ],
        d,
    );
    assert!(err.contains("--tests"), "{err}");
    let err = refused(
        &[
            "cost",
            "--dims",
            "2",
            "--width",
            "100000000",
            "--steps",
            "1",
            "--out",
            "c.csv",
        ],
        d,
    );
    assert!(err.contains("width 100000000"), "{err}");
    assert!(!d.join("m.csv").exists() && !d.join("c.csv").exists());
    // A model file whose header claims D = 10¹²: refused from the header, before allocating.
    let meta = r#"{\"activation\":\"softplus\",\"dim\":1000000000000,\"format\":1,\"hidden\":[64],\"kind\":\"mlp\"}"#;
    let header = format!(
        "{{\"__metadata__\":{{\"scorelab\":\"{meta}\"}},\"layers.0.weight\":{{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}}}"
    );
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(&[0u8; 16]);
    fs::create_dir(d.join("m")).unwrap();
    fs::write(d.join("m/model.safetensors"), bytes).unwrap();
    let out = scorelab(
        &[
            "score", "--model", "m", "--points", "x.csv", "--out", "s.csv",
        ],
        d,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("claims an architecture") && err.contains("the file holds 4"),
        "{err}"
    );
    assert!(!d.join("s.csv").exists());
}

/// Sizes near the memory limit, drawn at random (seeded) on both sides of it: a size whose
/// estimate is within the limit runs to the end, one over it is refused with exit 2 before any
/// work, naming its estimate, and writes nothing. `SCORELAB_MEMORY_LIMIT` sets a limit of 2 MiB
/// so that the sizes stay small.
#[test]
fn sizes_drawn_on_both_sides_of_the_limit_run_or_are_refused_before_any_work() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let limit: u64 = 2 << 20;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(28);
    let (dim, snapshots) = (3usize, 1usize);
    // The estimate's chains at the limit.
    let per_chain = scorelab_pipeline::memory::sample_bytes(1, dim, snapshots);
    let at_limit = (limit / per_chain) as f64;
    let (mut ran, mut refused_n) = (0, 0);
    for i in 0..10 {
        // Log-uniform within a factor 1.5 of the limit, either side.
        let chains = (at_limit * rng.gen_range(-0.4f64..0.4).exp())
            .round()
            .max(1.0) as usize;
        let fits = scorelab_pipeline::memory::sample_bytes(chains, dim, snapshots) <= limit;
        fs::write(
            d.join("s.toml"),
            format!("chains = {chains}\nsnapshots = [1]\ndensity = {{ kind = \"standard_normal\", dim = {dim} }}\ninit = {{ kind = \"gaussian\", std = 1.0 }}\n[sampler]\nkind = \"langevin\"\neps = 0.1\nsteps = 2\n"),
        )
        .unwrap();
        let out_name = format!("x{i}.csv");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_scorelab"))
            .args(["sample", "--config", "s.toml", "--out", &out_name])
            .env("SCORELAB_MEMORY_LIMIT", limit.to_string())
            .current_dir(d)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        if fits {
            ok(&out);
            assert_eq!(
                fs::read_to_string(d.join(&out_name))
                    .unwrap()
                    .lines()
                    .count(),
                chains + 1
            );
            ran += 1;
        } else {
            assert_eq!(out.status.code(), Some(2), "{chains} chains: {err}");
            assert!(err.contains("over the limit of 2.0 MiB"), "{err}");
            assert!(!d.join(&out_name).exists(), "{chains} chains: written");
            refused_n += 1;
        }
    }
    assert!(
        ran >= 2 && refused_n >= 2,
        "{ran} ran, {refused_n} refused: draw both sides"
    );
}
