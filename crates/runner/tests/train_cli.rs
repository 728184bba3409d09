//! `scorelab train` and `scorelab score` as a user runs them: files, provenance, determinism,
//! interruption and resumption, the data transform, and bad input.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{ok, scorelab};

const MIXTURE: &str = r#"density = { kind = "gaussian_mixture", weights = [0.5, 0.5], means = [[1.0, 1.0], [-1.0, 0.0]], covs = [[[0.3, 0.0], [0.0, 0.3]], [[0.5, 0.2], [0.2, 0.4]]] }"#;

fn config(model: &str, objective: &str, train: &str) -> String {
    format!("seed = 3\n[data]\n{MIXTURE}\n[model]\n{model}\n[objective]\n{objective}\n[train]\n{train}\n")
}

#[test]
fn a_run_writes_its_files_with_provenance_and_reruns_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "kind = \"mlp\"\nhidden = [16, 16]",
        "kind = \"ism\"",
        "steps = 120\nbatch = 64\nlr = 1e-2\neval_every = 50",
    );
    fs::write(dir.path().join("c.toml"), cfg).unwrap();
    ok(&scorelab(
        &["train", "--config", "c.toml", "--out", "run"],
        dir.path(),
    ));
    let run = dir.path().join("run");
    for f in [
        "config.toml",
        "loss.csv",
        "model.safetensors",
        "checkpoint.safetensors",
    ] {
        assert!(run.join(f).exists(), "{f}");
    }
    let loss = fs::read_to_string(run.join("loss.csv")).unwrap();
    let lines: Vec<&str> = loss.lines().collect();
    assert_eq!(
        lines[0],
        "step,loss,val_loss,esm,ism,relative_fisher,esm_ism_se"
    );
    let steps: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(steps, ["0", "50", "100", "120"]);
    // ESM − ISM is the same constant C at every evaluation (same evaluation batch).
    let gaps: Vec<f64> = lines[1..]
        .iter()
        .map(|l| {
            let c: Vec<f64> = l
                .split(',')
                .skip(3)
                .take(2)
                .map(|v| v.parse().unwrap())
                .collect();
            c[0] - c[1]
        })
        .collect();
    for g in &gaps {
        assert!((g - gaps[0]).abs() < 0.05 * gaps[0].abs(), "{gaps:?}");
    }
    let written = fs::read_to_string(run.join("config.toml")).unwrap();
    for key in [
        "[run]",
        "commit = ",
        "rustc = \"rustc 1.",
        "cpu = ",
        "threads = ",
        "val_batch = 1024",
        "trace = \"structured\"",
    ] {
        assert!(written.contains(key), "{key} in {written}");
    }
    // The written config reruns to the same loss.csv and weights.
    fs::copy(run.join("config.toml"), dir.path().join("again.toml")).unwrap();
    ok(&scorelab(
        &["train", "--config", "again.toml", "--out", "run2"],
        dir.path(),
    ));
    assert_eq!(
        loss,
        fs::read_to_string(dir.path().join("run2/loss.csv")).unwrap()
    );
    assert_eq!(
        fs::read(run.join("model.safetensors")).unwrap(),
        fs::read(dir.path().join("run2/model.safetensors")).unwrap()
    );
    // An existing folder is refused without --force, and replaced with it.
    let again = scorelab(&["train", "--config", "c.toml", "--out", "run"], dir.path());
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    ok(&scorelab(
        &["train", "--config", "c.toml", "--out", "run", "--force"],
        dir.path(),
    ));
    assert_eq!(loss, fs::read_to_string(run.join("loss.csv")).unwrap());
}

/// Ctrl-C mid-run saves a checkpoint; --resume from it ends with the weights of a run that was
/// never interrupted.
#[test]
fn an_interrupted_run_resumes_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let long = config(
        "kind = \"mlp\"\nhidden = [16]",
        "kind = \"ssm_vr\"",
        "steps = 10000000\nbatch = 32\neval_every = 1000\nema = 0.9",
    );
    fs::write(dir.path().join("long.toml"), &long).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_scorelab"))
        .args(["train", "--config", "long.toml", "--out", "b"])
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !dir.path().join("b/loss.csv").exists() {
        assert!(start.elapsed() < Duration::from_secs(60), "no loss.csv");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let loss = fs::read_to_string(dir.path().join("b/loss.csv")).unwrap();
    let k: u64 = loss
        .lines()
        .last()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(k > 0, "{loss}");
    // Finish at k + 150 steps, and compare with a run that never stopped.
    let total = k + 150;
    let short = long.replace("steps = 10000000", &format!("steps = {total}"));
    fs::write(dir.path().join("short.toml"), &short).unwrap();
    ok(&scorelab(
        &["train", "--config", "short.toml", "--out", "b", "--resume"],
        dir.path(),
    ));
    ok(&scorelab(
        &["train", "--config", "short.toml", "--out", "a"],
        dir.path(),
    ));
    for f in ["model.safetensors", "checkpoint.safetensors", "loss.csv"] {
        assert_eq!(
            fs::read(dir.path().join("a").join(f)).unwrap(),
            fs::read(dir.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    let last = |d: &str| {
        fs::read_to_string(dir.path().join(d).join("loss.csv"))
            .unwrap()
            .lines()
            .last()
            .unwrap()
            .to_string()
    };
    assert_eq!(last("a"), last("b"));
    // Resuming with another model is refused.
    let other = short.replace("hidden = [16]", "hidden = [8]");
    fs::write(dir.path().join("other.toml"), other).unwrap();
    let out = scorelab(
        &["train", "--config", "other.toml", "--out", "b", "--resume"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only [train] may change"));
}

#[test]
fn a_diverging_run_names_the_step_and_keeps_what_it_finished() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        "kind = \"mlp\"\nhidden = [16]",
        "kind = \"ism\"\ntrace = \"naive\"",
        "steps = 1000\nlr = 1e30\neval_every = 1",
    );
    fs::write(dir.path().join("c.toml"), cfg).unwrap();
    let out = scorelab(&["train", "--config", "c.toml", "--out", "r"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("at step") && err.contains("Lower lr"), "{err}");
    assert!(dir.path().join("r/model.safetensors").exists());
}

/// The data transform: data in other units give the same standardised problem, and the score in
/// data units scales by exactly 1/scale (the chain rule), an independent check of `score`.
#[test]
fn scores_come_back_in_the_data_units() {
    let dir = tempfile::tempdir().unwrap();
    let faithful = fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/old_faithful.csv"
    ))
    .unwrap();
    let mut scaled = String::from("a,b\n");
    for line in faithful.lines().skip(1) {
        let v: Vec<f64> = line.split(',').map(|s| s.parse().unwrap()).collect();
        scaled.push_str(&format!("{},{}\n", v[0] * 60.0, v[1] / 10.0));
    }
    fs::write(
        dir.path().join("f.csv"),
        faithful.replace("eruptions_min,waiting_min", "a,b"),
    )
    .unwrap();
    fs::write(dir.path().join("g.csv"), scaled).unwrap();
    let cfg = |file: &str| {
        format!("seed = 2\n[data]\ncsv = \"{file}\"\n[model]\nkind = \"energy_mlp\"\nhidden = [16]\n[objective]\nkind = \"dsm\"\nsigma = 0.3\n[train]\nsteps = 60\nbatch = 32\n")
    };
    fs::write(dir.path().join("f.toml"), cfg("f.csv")).unwrap();
    fs::write(dir.path().join("g.toml"), cfg("g.csv")).unwrap();
    ok(&scorelab(
        &["train", "--config", "f.toml", "--out", "f"],
        dir.path(),
    ));
    ok(&scorelab(
        &["train", "--config", "g.toml", "--out", "g"],
        dir.path(),
    ));
    fs::write(dir.path().join("pf.csv"), "x0,x1\n3.5,70\n2.0,55\n").unwrap();
    fs::write(dir.path().join("pg.csv"), "x0,x1\n210,7\n120,5.5\n").unwrap();
    ok(&scorelab(
        &[
            "score", "--model", "f", "--points", "pf.csv", "--out", "sf.csv",
        ],
        dir.path(),
    ));
    ok(&scorelab(
        &[
            "score", "--model", "g", "--points", "pg.csv", "--out", "sg.csv",
        ],
        dir.path(),
    ));
    let read = |f: &str| -> Vec<Vec<f64>> {
        let text = fs::read_to_string(dir.path().join(f)).unwrap();
        assert_eq!(text.lines().next().unwrap(), "s0,s1");
        text.lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (sf, sg) = (read("sf.csv"), read("sg.csv"));
    for (a, b) in sf.iter().zip(&sg) {
        // x_g = (60 x₀, x₁/10) ⇒ s_g = (s₀/60, 10 s₁)
        assert!(
            (a[0] / 60.0 - b[0]).abs() < 1e-9 * (1.0 + a[0].abs()),
            "{a:?} {b:?}"
        );
        assert!(
            (a[1] * 10.0 - b[1]).abs() < 1e-9 * (1.0 + a[1].abs()),
            "{a:?} {b:?}"
        );
    }
}

#[test]
fn score_checks_sigma_points_and_the_model_folder() {
    let dir = tempfile::tempdir().unwrap();
    let nc = config(
        "kind = \"noise_conditional_mlp\"\nhidden = [8]",
        "kind = \"dsm_multi\"\nsigma_max = 2.0\nsigma_min = 0.1\nlevels = 3",
        "steps = 5",
    );
    fs::write(dir.path().join("nc.toml"), nc).unwrap();
    ok(&scorelab(
        &["train", "--config", "nc.toml", "--out", "nc"],
        dir.path(),
    ));
    fs::write(dir.path().join("p.csv"), "x0,x1\n0.5,0.5\n").unwrap();
    ok(&scorelab(
        &[
            "score", "--model", "nc", "--points", "p.csv", "--out", "s.csv", "--sigma", "0.5",
        ],
        dir.path(),
    ));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "score", "--model", "nc", "--points", "p.csv", "--out", "o.csv",
            ],
            "noise-conditional",
        ),
        (
            vec![
                "score", "--model", "nc", "--points", "p.csv", "--out", "o.csv", "--sigma", "-1",
            ],
            "positive",
        ),
        (
            vec![
                "score", "--model", "missing", "--points", "p.csv", "--out", "o.csv",
            ],
            "no model.safetensors",
        ),
        (
            vec![
                "score", "--model", "nc", "--points", "nope.csv", "--out", "o.csv", "--sigma", "1",
            ],
            "cannot read",
        ),
    ];
    for (args, needle) in cases {
        let out = scorelab(&args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
        assert!(!dir.path().join("o.csv").exists());
    }
    for (points, needle) in [
        ("x0,x2\n1,2\n", "needs x0,x1"),
        ("x0,x1\n1,2\n3\n", "row 2"),
        ("x0,x1\n1,NaN\n", "not finite"),
        ("x0,x1\n1,abc\n", "not a number"),
    ] {
        fs::write(dir.path().join("bad.csv"), points).unwrap();
        let out = scorelab(
            &[
                "score", "--model", "nc", "--points", "bad.csv", "--out", "o.csv", "--sigma", "1",
            ],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{points}: {err}");
        assert!(
            err.contains(needle),
            "{points}: expected {needle:?} in {err}"
        );
    }
    // A plain model refuses --sigma.
    let plain = config("kind = \"linear\"", "kind = \"esm\"", "steps = 3");
    fs::write(dir.path().join("plain.toml"), plain).unwrap();
    ok(&scorelab(
        &["train", "--config", "plain.toml", "--out", "plain"],
        dir.path(),
    ));
    let out = scorelab(
        &[
            "score", "--model", "plain", "--points", "p.csv", "--out", "o.csv", "--sigma", "1",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not noise-conditional"));
}

/// Each bad config: exit code 2, a message naming the key, and no output folder.
/// dsm_continuous with EDM's preconditioning and weighting trains, records σ_d and the σ̃ range,
/// and a sampler that needs σ̃ outside that range is refused naming both ranges.
#[test]
fn continuous_dsm_records_sigma_data_and_its_range_and_sampling_respects_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = config(
        "kind = \"noise_conditional_mlp\"\nhidden = [16]\nprecondition = \"edm\"",
        "kind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 50.0\ndistribution = \"log_normal\"\nlambda = \"edm\"",
        "steps = 40\nbatch = 32\neval_every = 20",
    );
    fs::write(d.join("t.toml"), cfg).unwrap();
    ok(&scorelab(
        &["train", "--config", "t.toml", "--out", "run"],
        d,
    ));
    let resolved = fs::read_to_string(d.join("run/config.toml")).unwrap();
    // σ_d is the data's standard deviation (√ of the mean per-coordinate variance of 10 000
    // draws), written into both tables. The mixture's coordinates have variances
    // (0.3 + 0.5)/2 + 1 = 1.4 and (0.3 + 0.4)/2 + 0.25 = 0.6 (within-component plus between-means), so
    // σ_d = √((1.4 + 0.6)/2) = 1, up to the draws' error (about 0.01 at 10 000).
    let sd: Vec<f64> = resolved
        .lines()
        .filter_map(|l| l.strip_prefix("sigma_data = "))
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(sd.len(), 2, "{resolved}");
    assert_eq!(sd[0], sd[1]);
    assert!((sd[0] - 1.0).abs() < 0.03, "σ_d = {}", sd[0]);
    let model = fs::read(d.join("run/model.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&model);
    // The metadata is JSON inside a JSON string, so its quotes are escaped.
    assert!(
        text.contains(r#"sigma_range\":\"0.01,50.0"#),
        "no σ̃ range in the weights"
    );
    assert!(
        text.contains(r#"precondition\":{\"kind\":\"edm"#),
        "no preconditioning in the weights"
    );
    // A sampler inside the range runs; the default edm schedule (0.002 … 80) is refused.
    let sample = |sampler: &str, name: &str| {
        fs::write(
            d.join(format!("{name}.toml")),
            format!("chains = 20\nmodel_dir = \"run\"\n[sampler]\n{sampler}\n"),
        )
        .unwrap();
        scorelab(
            &[
                "sample",
                "--config",
                &format!("{name}.toml"),
                "--out",
                &format!("{name}.csv"),
            ],
            d,
        )
    };
    ok(&sample(
        "kind = \"heun\"\nsteps = 8\nschedule = { kind = \"edm\", sigma_min = 0.01, sigma_max = 50.0 }",
        "inside",
    ));
    let out = sample("kind = \"heun\"\nsteps = 8", "outside");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("σ̃ from 0.002 to 80") && err.contains("trained on σ̃ from 0.01 to 50"),
        "{err}"
    );
    assert!(!d.join("outside.csv").exists());
    // VP with β_max = 20 reaches σ̃ ≈ 152 at t = 1: refused too.
    let out = sample("kind = \"ddim\"\nsteps = 8", "vp");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_train_configs_are_clear_errors() {
    let m = "kind = \"mlp\"";
    let ism = "kind = \"ism\"";
    let csv =
        |body: &str| format!("[data]\ncsv = \"d.csv\"\n{body}\n[model]\n{m}\n[objective]\n{ism}\n");
    let cases: Vec<(String, &[&str])> = vec![
        (
            config("kind = \"mlpp\"", ism, ""),
            &["unknown variant `mlpp`", "noise_conditional_mlp"],
        ),
        (
            config(m, "kind = \"nce\"", ""),
            &["unknown variant `nce`", "dsm_multi"],
        ),
        (
            config(m, "kind = \"dsm\"\ntrace = \"naive\"", ""),
            &["unknown field `trace`", "sigma"],
        ),
        (
            config(m, "kind = \"ism\"\ntrace = \"fast\"", ""),
            &["objective.trace", "naive | structured"],
        ),
        (config(m, ism, "lr = 0.0"), &["train.lr", "positive"]),
        (config(m, ism, "lr = -1e-3"), &["train.lr"]),
        (config(m, ism, "ema = 1.0"), &["train.ema"]),
        (config(m, ism, "stpes = 10"), &["unknown field `stpes`"]),
        (
            config(m, "kind = \"dsm_multi\"", ""),
            &["noise_conditional_mlp"],
        ),
        (
            config("kind = \"noise_conditional_mlp\"", ism, ""),
            &["dsm, dsm_multi or dsm_continuous"],
        ),
        (
            config(m, "kind = \"dsm_continuous\"", ""),
            &["objective dsm_continuous conditions on σ"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"",
                "kind = \"dsm_continuous\"\np_mean = 0.0",
                "",
            ),
            &["objective.p_mean", "only the log_normal"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"",
                "kind = \"dsm_continuous\"\nsigma_data = 1.0",
                "",
            ),
            &["objective.sigma_data", "only lambda = \"edm\""],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"",
                "kind = \"dsm_continuous\"\nlambda = \"snr\"",
                "",
            ),
            &["lambda: unknown weighting \"snr\"", "likelihood"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"",
                "kind = \"dsm_continuous\"\ndistribution = \"log_normal\"\np_std = 0.0",
                "",
            ),
            &["objective.p_std"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"",
                "kind = \"dsm_continuous\"\nsigma_min = 5.0\nsigma_max = 1.0",
                "",
            ),
            &["objective.sigma_max"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"\nsigma_data = 1.0",
                "kind = \"dsm_continuous\"",
                "",
            ),
            &["model.sigma_data", "precondition = \"edm\""],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"\nprecondition = \"edm\"\nsigma_data = -1.0",
                "kind = \"dsm_continuous\"",
                "",
            ),
            &["model.sigma_data"],
        ),
        (
            config(
                "kind = \"noise_conditional_mlp\"\nprecondition = \"karras\"",
                "kind = \"dsm_continuous\"",
                "",
            ),
            &["unknown variant `karras`", "edm"],
        ),
        (
            config(m, "kind = \"ssm\"\nprobe = \"uniform\"", ""),
            &["objective.probe", "rademacher | gaussian"],
        ),
        (
            config("kind = \"mlp\"\nactivation = \"relu\"", ism, ""),
            &["model.activation", "tanh | softplus | silu"],
        ),
        (
            config("kind = \"energy_mlp\"\ntau = -1.0", ism, ""),
            &["model.tau"],
        ),
        (
            config("kind = \"linear\"\nhidden = [4]", ism, ""),
            &["unknown field `hidden`"],
        ),
        (
            config(
                m,
                "kind = \"dsm_multi\"\nsigma_min = 2.0\nsigma_max = 1.0",
                "",
            ),
            &["sigma_max"],
        ),
        (
            format!("[model]\n{m}\n[objective]\n{ism}\n"),
            &["missing field `data`"],
        ),
        (
            format!("[data]\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["data: missing"],
        ),
        (
            format!("[data]\n{MIXTURE}\ncsv = \"d.csv\"\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["not several"],
        ),
        (
            format!("[data]\n{MIXTURE}\ncolumns = [\"a\"]\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["data.columns", "only applies to csv"],
        ),
        (
            csv("columns = [\"a\", \"zz\"]"),
            &["no column \"zz\"", "a, b"],
        ),
        (csv("test_fraction = 1.5"), &["data.test_fraction"]),
        (
            csv("transform = \"whiten\""),
            &["data.transform", "standardize | scale | none"],
        ),
        (csv("transform = \"scale\""), &["data.scale", "scale = 16"]),
        (csv("scale = 16.0"), &["data.scale", "only applies"]),
        (
            csv("transform = \"scale\"\nscale = -2.0"),
            &["data.scale", "positive"],
        ),
        (csv("noise = -0.1"), &["data.noise"]),
        (
            format!("[data]\ncsv = \"ragged.csv\"\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["ragged.csv", "row 2"],
        ),
        (
            format!("[data]\ncsv = \"nan.csv\"\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["nan.csv", "row 1", "not finite"],
        ),
        (
            format!("[data]\ncsv = \"missing.csv\"\n[model]\n{m}\n[objective]\n{ism}\n"),
            &["missing.csv", "cannot read"],
        ),
        (
            format!("[data]\ncsv = \"d.csv\"\n[model]\n{m}\n[objective]\nkind = \"esm\"\n"),
            &["esm needs the true score"],
        ),
        ("seed = = 1".into(), &["line 1"]),
    ];
    for (k, (cfg, needles)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = String::from("a,b\n");
        for i in 0..20 {
            d.push_str(&format!("{},{}\n", i, i * i % 7));
        }
        fs::write(dir.path().join("d.csv"), d).unwrap();
        fs::write(dir.path().join("ragged.csv"), "a,b\n1,2\n3\n").unwrap();
        fs::write(dir.path().join("nan.csv"), "a,b\nNaN,2\n3,4\n").unwrap();
        fs::write(dir.path().join("c.toml"), cfg).unwrap();
        let out = scorelab(&["train", "--config", "c.toml", "--out", "run"], dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {k}: {err}");
        assert!(!err.contains("panicked"), "case {k}: {err}");
        for n in *needles {
            assert!(err.contains(n), "case {k}: expected {n:?} in: {err}");
        }
        assert!(!dir.path().join("run").exists(), "case {k}: wrote output");
    }
}

/// `data.toy`: a toy data set trains like an analytic density (fresh draws, byte-for-byte
/// reruns, a loss that falls), and bad uses of it are refused by name.
#[test]
fn a_toy_data_set_trains_and_bad_toy_configs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = "seed = 2\n[data]\ntoy = \"moons\"\n[model]\nkind = \"noise_conditional_mlp\"\nhidden = [32, 32]\n[objective]\nkind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 10.0\n[train]\nsteps = 300\nbatch = 128\nlr = 3e-3\neval_every = 100\n";
    fs::write(d.join("t.toml"), cfg).unwrap();
    for out in ["a", "b"] {
        ok(&scorelab(&["train", "--config", "t.toml", "--out", out], d));
    }
    for f in ["loss.csv", "model.safetensors"] {
        assert_eq!(
            fs::read(d.join("a").join(f)).unwrap(),
            fs::read(d.join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    let written = fs::read_to_string(d.join("a/config.toml")).unwrap();
    assert!(written.contains("toy = \"moons\""), "{written}");
    // The held-out loss (on the seed's fixed toy points) falls from the initial weights.
    let loss = fs::read_to_string(d.join("a/loss.csv")).unwrap();
    let val: Vec<f64> = loss
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(val.last().unwrap() < &val[0], "{val:?}");
    let cases = [
        (cfg.replace("moons", "moon"), "data.toy"),
        (
            cfg.replace("toy = \"moons\"", "toy = \"moons\"\ncolumns = [\"x\"]"),
            "data.columns",
        ),
        (
            cfg.replace("toy = \"moons\"", "toy = \"moons\"\ncsv = \"d.csv\""),
            "not several",
        ),
        (
            cfg.replace(
                "kind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 10.0",
                "kind = \"esm\"",
            )
            .replace("noise_conditional_mlp", "mlp"),
            "esm",
        ),
    ];
    for (c, want) in cases {
        fs::write(d.join("bad.toml"), &c).unwrap();
        let out = scorelab(&["train", "--config", "bad.toml", "--out", "bad"], d);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(!d.join("bad/model.safetensors").exists(), "{want}");
    }
}
