//! `scorelab likelihood` as a user runs it: both score sources, the files, byte-for-byte
//! determinism, dequantisation, and bad input (exit 2, the field named, nothing written).

use std::fs;
use std::path::Path;
use std::process::Output;

mod common;
use common::{ok, scorelab};

/// Exit 2, the message contains `needle`, and no file of `outs` exists.
fn refused(out: &Output, needle: &str, dir: &Path, outs: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    for f in outs {
        assert!(!dir.join(f).exists(), "{f} was written");
    }
}

const MIXTURE: &str = r#"density = { kind = "gaussian_mixture", weights = [0.3, 0.7], means = [[2.0, 0.0], [-1.0, 1.0]], covs = [[[1.0, 0.3], [0.3, 0.5]], [[0.4, 0.0], [0.0, 0.8]]] }"#;

/// log N(x; m, S) for 2-D m, S.
fn log_normal2(x: [f64; 2], m: [f64; 2], s: [[f64; 2]; 2]) -> f64 {
    let det = s[0][0] * s[1][1] - s[0][1] * s[1][0];
    let (a, b) = (x[0] - m[0], x[1] - m[1]);
    let q = (s[1][1] * a * a - 2.0 * s[0][1] * a * b + s[0][0] * b * b) / det;
    -0.5 * q - 0.5 * det.ln() - (2.0 * std::f64::consts::PI).ln()
}

fn rows(path: &Path) -> Vec<Vec<String>> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn exact_scores_give_the_closed_form_log_density_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("pts.csv"),
        "x0,x1\n0.5,0.5\n2.0,0.1\n-1.0,1.2\n3,-2\n",
    )
    .unwrap();
    fs::write(
        d.join("lik.toml"),
        format!("{MIXTURE}\nschedule = {{ kind = \"vp\" }}\nprior = \"exact\"\nrtol = 1e-7\natol = 1e-7\n"),
    )
    .unwrap();
    ok(&scorelab(
        &[
            "likelihood",
            "--config",
            "lik.toml",
            "--points",
            "pts.csv",
            "--out",
            "out.csv",
        ],
        d,
    ));
    let first = fs::read(d.join("out.csv")).unwrap();
    assert!(
        String::from_utf8_lossy(&first).starts_with("log_p,log_p_se,bits_per_dim,score_evals\n")
    );
    // The truth: p_{t₀} = Σ wₖ N(α mₖ, α²(Sₖ + σ̃²I)) at t₀ = 1e-5 (α, σ̃ from the config written beside).
    let cfg: toml::Table =
        toml::from_str(&fs::read_to_string(d.join("out.config.toml")).unwrap()).unwrap();
    let run = cfg["run"].as_table().unwrap();
    let (a, s) = (
        run["alpha_t0"].as_float().unwrap(),
        run["sigma_t0"].as_float().unwrap(),
    );
    assert_eq!(cfg["schedule"]["t_min"].as_float(), Some(1e-5));
    let comps = [
        (0.3, [2.0, 0.0], [[1.0, 0.3], [0.3, 0.5]]),
        (0.7, [-1.0, 1.0], [[0.4, 0.0], [0.0, 0.8]]),
    ];
    let pts = [[0.5, 0.5], [2.0, 0.1], [-1.0, 1.2], [3.0, -2.0]];
    for (row, x) in rows(&d.join("out.csv")).iter().zip(pts) {
        let truth = comps
            .iter()
            .map(|(w, m, c)| {
                let cov = [
                    [a * a * (c[0][0] + s * s), a * a * c[0][1]],
                    [a * a * c[1][0], a * a * (c[1][1] + s * s)],
                ];
                w * log_normal2(x, [a * m[0], a * m[1]], cov).exp()
            })
            .sum::<f64>()
            .ln();
        let log_p: f64 = row[0].parse().unwrap();
        assert!((log_p - truth).abs() < 1e-5, "{log_p} vs {truth}");
        assert_eq!(row[1], "", "no standard error for the exact divergence");
        let bpd: f64 = row[2].parse().unwrap();
        assert!((bpd + log_p / (2.0 * std::f64::consts::LN_2)).abs() < 1e-12);
    }
    // The same config and points: the same bytes.
    ok(&scorelab(
        &[
            "likelihood",
            "--config",
            "lik.toml",
            "--points",
            "pts.csv",
            "--out",
            "out.csv",
        ],
        d,
    ));
    assert_eq!(fs::read(d.join("out.csv")).unwrap(), first);
    // Hutchinson with 4 probes: a standard error in every row, the same bytes for the same seed.
    fs::write(
        d.join("h.toml"),
        format!("{MIXTURE}\ndivergence = \"hutchinson\"\nprojections = 4\nprobe = \"gaussian\"\n"),
    )
    .unwrap();
    for out in ["h1.csv", "h2.csv"] {
        ok(&scorelab(
            &[
                "likelihood",
                "--config",
                "h.toml",
                "--points",
                "pts.csv",
                "--out",
                out,
                "--seed",
                "3",
            ],
            d,
        ));
    }
    assert_eq!(
        fs::read(d.join("h1.csv")).unwrap(),
        fs::read(d.join("h2.csv")).unwrap()
    );
    assert!(rows(&d.join("h1.csv"))
        .iter()
        .all(|r| r[1].parse::<f64>().unwrap() > 0.0));
}

#[test]
fn a_trained_network_and_dequantised_integer_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = "seed = 2\n[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"noise_conditional_mlp\"\nhidden = [16]\nprecondition = \"edm\"\n[objective]\nkind = \"dsm_continuous\"\nsigma_min = 0.0005\nsigma_max = 200.0\n[train]\nsteps = 30\nbatch = 64\n";
    fs::write(d.join("train.toml"), train).unwrap();
    ok(&scorelab(
        &["train", "--config", "train.toml", "--out", "net"],
        d,
    ));
    fs::write(d.join("ints.csv"), "x0,x1\n0,1\n-2,3\n1,1\n").unwrap();
    fs::write(
        d.join("lik.toml"),
        "model_dir = \"net\"\nschedule = { kind = \"vp\" }\ndequantize = [1.0, 0.0]\ndequantize_draws = 3\n",
    )
    .unwrap();
    ok(&scorelab(
        &[
            "likelihood",
            "--config",
            "lik.toml",
            "--points",
            "ints.csv",
            "--out",
            "out.csv",
        ],
        d,
    ));
    let r = rows(&d.join("out.csv"));
    assert_eq!(r.len(), 3);
    for row in &r {
        let log_p: f64 = row[0].parse().unwrap();
        let bpd: f64 = row[2].parse().unwrap();
        // One quantised column of width 1: Σ log q = 0, so bits/dim = −log p/(D ln 2).
        assert!((bpd + log_p / (2.0 * std::f64::consts::LN_2)).abs() < 1e-12);
        assert!(row[3].parse::<usize>().unwrap() > 0);
    }
    let cfg = fs::read_to_string(d.join("out.config.toml")).unwrap();
    assert!(cfg.contains("status = \"complete\"") && cfg.contains("upper bound"));
}

#[test]
fn bad_input_exits_2_names_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A network that is not noise-conditional, and one trained on a narrow σ̃ range.
    for (name, model, objective) in [
        ("plain", "kind = \"mlp\"", "kind = \"ism\""),
        (
            "narrow",
            "kind = \"noise_conditional_mlp\"",
            "kind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 10.0",
        ),
    ] {
        fs::write(
            d.join(format!("{name}.toml")),
            format!("seed = 1\n[data]\ndensity = {{ kind = \"standard_normal\", dim = 2 }}\n[model]\n{model}\nhidden = [8]\n[objective]\n{objective}\n[train]\nsteps = 5\nbatch = 16\n"),
        )
        .unwrap();
        ok(&scorelab(
            &["train", "--config", &format!("{name}.toml"), "--out", name],
            d,
        ));
    }
    fs::write(d.join("pts.csv"), "x0,x1\n0.5,0.5\n1.0,2.0\n").unwrap();
    fs::write(d.join("pts3.csv"), "x0,x1,x2\n0.5,0.5,1\n").unwrap();
    fs::write(d.join("nan.csv"), "x0,x1\n0.5,NaN\n").unwrap();
    fs::write(d.join("frac.csv"), "x0,x1\n0.5,1\n").unwrap();
    let banana = "density = { kind = \"banana\", a = 1.0, b = 0.5 }";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("none", "schedule = { kind = \"vp\" }".into(), "pts.csv", "density or model_dir"),
        ("both", format!("{MIXTURE}\nmodel_dir = \"narrow\""), "pts.csv", "give one score source"),
        ("banana", banana.into(), "pts.csv", "noise-conditional network is needed"),
        ("student", "density = { kind = \"student_t\", mean = [0.0], scale = [[1.0]], nu = 5.0 }".into(), "pts.csv", "noise-conditional network is needed"),
        ("halfnormal", "density = { kind = \"half_normal\", scale = 1.0 }".into(), "pts.csv", "noise-conditional network is needed"),
        ("plainnet", "model_dir = \"plain\"".into(), "pts.csv", "not noise-conditional"),
        ("range", "model_dir = \"narrow\"".into(), "pts.csv", "was trained on σ̃ from"),
        ("dim", MIXTURE.into(), "pts3.csv", "--points"),
        ("nan", MIXTURE.into(), "nan.csv", "not finite"),
        ("rtol", format!("{MIXTURE}\nrtol = 0.0"), "pts.csv", "rtol"),
        ("proj0", format!("{MIXTURE}\ndivergence = \"hutchinson\"\nprojections = 0"), "pts.csv", "projections"),
        ("projexact", format!("{MIXTURE}\nprojections = 4"), "pts.csv", "projections"),
        ("tracehutch", format!("{MIXTURE}\ndivergence = \"hutchinson\"\ntrace = \"naive\""), "pts.csv", "trace"),
        ("deq", format!("{MIXTURE}\ndequantize = 1.0"), "frac.csv", "dequantize"),
        ("priornet", "model_dir = \"narrow\"\nschedule = { kind = \"ve\", sigma_min = 0.01, sigma_max = 10.0 }\nprior = \"exact\"".into(), "pts.csv", "prior"),
        ("steps", format!("{MIXTURE}\nsteps = 10"), "pts.csv", "steps"),
        ("heunrtol", format!("{MIXTURE}\nsolver = \"heun\"\nsteps = 10\nrtol = 1e-3"), "pts.csv", "rtol"),
        ("sched", format!("{MIXTURE}\nschedule = {{ kind = \"vp\", beta_min = 30.0 }}"), "pts.csv", "schedule"),
        ("unknown", format!("{MIXTURE}\nsolverr = \"rk45\""), "pts.csv", "unknown field"),
    ];
    for (name, cfg, points, needle) in cases {
        fs::write(d.join(format!("{name}.toml")), &cfg).unwrap();
        let out = scorelab(
            &[
                "likelihood",
                "--config",
                &format!("{name}.toml"),
                "--points",
                points,
                "--out",
                &format!("{name}.out.csv"),
            ],
            d,
        );
        refused(
            &out,
            needle,
            d,
            &[
                &format!("{name}.out.csv"),
                &format!("{name}.out.config.toml"),
            ],
        );
    }
    // An output that is an input is refused.
    fs::write(d.join("ok.toml"), MIXTURE).unwrap();
    let out = scorelab(
        &[
            "likelihood",
            "--config",
            "ok.toml",
            "--points",
            "pts.csv",
            "--out",
            "pts.csv",
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        fs::read_to_string(d.join("pts.csv")).unwrap(),
        "x0,x1\n0.5,0.5\n1.0,2.0\n"
    );
}

/// SIGTERM mid-run (as Ctrl-C): exit 130, the rows of the finished batches (a whole number of
/// batches, identical to a run on those points alone) in `OUT.partial.csv`, `status =
/// "interrupted"` with `points_done`; the points are streamed, so the run starts at once on a
/// large file.
#[test]
fn sigterm_writes_the_finished_batches_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let n = 200_000;
    let mut pts = String::from("x0,x1\n");
    for i in 0..n {
        let t = i as f64 * 0.001;
        pts.push_str(&format!("{},{}\n", t.sin() * 2.0, t.cos()));
    }
    fs::write(d.join("pts.csv"), &pts).unwrap();
    fs::write(
        d.join("lik.toml"),
        format!(
            "{MIXTURE}\nschedule = {{ kind = \"vp\" }}\nrtol = 1e-9\natol = 1e-9\nbatch = 16\n"
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_scorelab"))
        .args([
            "likelihood",
            "--config",
            "lik.toml",
            "--points",
            "pts.csv",
            "--out",
            "out.csv",
        ])
        .current_dir(d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    // The rows finished go beside --out (out.partial.csv), never over it.
    assert!(!d.join("out.csv").exists() && !d.join("out.config.toml").exists());
    let cfg: toml::Table =
        toml::from_str(&fs::read_to_string(d.join("out.partial.config.toml")).unwrap()).unwrap();
    let run = cfg["run"].as_table().unwrap();
    assert_eq!(run["status"].as_str(), Some("interrupted"));
    let k = run["points_done"].as_integer().unwrap() as usize;
    let got = rows(&d.join("out.partial.csv"));
    assert_eq!(got.len(), k);
    assert!(k > 0 && k < n && k.is_multiple_of(16), "{k}");
    // The same rows from a run on the first k points.
    let head: String = pts.lines().take(k + 1).map(|l| format!("{l}\n")).collect();
    fs::write(d.join("head.csv"), head).unwrap();
    ok(&scorelab(
        &[
            "likelihood",
            "--config",
            "lik.toml",
            "--points",
            "head.csv",
            "--out",
            "head_out.csv",
        ],
        d,
    ));
    assert_eq!(rows(&d.join("head_out.csv")), got);
    assert!(
        fs::read_dir(d).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".tmp")),
        "a temporary file was left"
    );
}
