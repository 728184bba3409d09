//! The `scorelab` binary as a user runs it: outputs, determinism, and bad input.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn scorelab(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorelab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

const HEADER: &str = "case,density,model,dim,samples,esm,esm_se,ism,ism_se,gap,gap_se,constant,boundary_term,z_score,grad_rel_diff,grad_boundary_rel,grad_residual_rel,grad_residual_se,grad_residual_p,grad_difference_p,grad_batches,esm_closed,ism_closed,esm_quad,ism_quad";

/// The index of the column `name` of the equivalence CSV.
fn col(name: &str) -> usize {
    HEADER
        .split(',')
        .position(|c| c == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

const ISSUE_EXAMPLE: &str = r#"
seed = 7
samples = 200000
[[case]]
name = "g3"
density = { kind = "gaussian", mean = [0.5, -1.0, 2.0], cov = [[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]] }
model = { kind = "linear", a = [[-0.5, 0.1, 0.0], [0.0, -1.0, 0.2], [0.1, 0.0, -2.0]], b = [0.1, 0.2, -0.3] }
[[case]]
name = "hn"
density = { kind = "half_normal", scale = 1.0 }
model = { kind = "random_linear", seed = 3, scale = 0.5 }
[[case]]
name = "mlp2"
density = { kind = "gaussian", mean = [0.0, 1.0], cov = [[1.0, 0.3], [0.3, 0.5]] }
model = { kind = "mlp", hidden = [32, 32], activation = "tanh", seed = 1 }
"#;

#[test]
fn builtin_suite_writes_csv_and_config_and_regenerates_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let out = scorelab(
        &["equivalence", "--samples", "2000", "--out", "r/eq.csv"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = fs::read_to_string(dir.path().join("r/eq.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), HEADER);
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 45);
    assert!(rows
        .iter()
        .all(|r| r.split(',').count() == HEADER.split(',').count()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("half_normal/b+1") && stdout.contains("Per density"),
        "{stdout}"
    );
    // The resolved config (seed and samples included) reproduces the CSV byte for byte.
    let cfg = fs::read_to_string(dir.path().join("r/eq.config.toml")).unwrap();
    assert!(
        cfg.contains("seed = 0") && cfg.contains("samples = 2000"),
        "{cfg}"
    );
    let again = scorelab(
        &[
            "equivalence",
            "--config",
            "r/eq.config.toml",
            "--out",
            "r/eq2.csv",
        ],
        dir.path(),
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        csv,
        fs::read_to_string(dir.path().join("r/eq2.csv")).unwrap()
    );
    // A different seed gives different numbers.
    let other = scorelab(
        &[
            "equivalence",
            "--samples",
            "2000",
            "--seed",
            "1",
            "--out",
            "r/eq3.csv",
        ],
        dir.path(),
    );
    assert!(other.status.success());
    assert_ne!(
        csv,
        fs::read_to_string(dir.path().join("r/eq3.csv")).unwrap()
    );
}

#[test]
fn the_issue_example_config_runs() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("c.toml"), ISSUE_EXAMPLE).unwrap();
    let out = scorelab(
        &[
            "equivalence",
            "--config",
            "c.toml",
            "--samples",
            "5000",
            "--out",
            "o.csv",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = fs::read_to_string(dir.path().join("o.csv")).unwrap();
    let g3: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(&g3[..5], &["g3", "gaussian", "linear", "3", "5000"]);
    // esm_closed − ism_closed = ½ tr Σ⁻¹ for the g3 case; quadrature is empty in 3-D.
    let (esm_c, ism_c): (f64, f64) = (
        g3[col("esm_closed")].parse().unwrap(),
        g3[col("ism_closed")].parse().unwrap(),
    );
    let c: f64 = g3[11].parse().unwrap();
    assert!((esm_c - ism_c - c).abs() < 1e-12);
    assert_eq!((g3[col("esm_quad")], g3[col("ism_quad")]), ("", ""));
    let hn: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(&hn[..3], &["hn", "half_normal", "random_linear"]);
    assert!(
        hn[col("esm_quad")].parse::<f64>().is_ok(),
        "1-D has quadrature"
    );
    // The issue's network model: the quadrature identity holds for it too (f64 door).
    let mlp: Vec<&str> = csv.lines().nth(3).unwrap().split(',').collect();
    assert_eq!(&mlp[..4], &["mlp2", "gaussian", "mlp", "2"]);
    let (esm_q, ism_q): (f64, f64) = (
        mlp[col("esm_quad")].parse().unwrap(),
        mlp[col("ism_quad")].parse().unwrap(),
    );
    let c: f64 = mlp[11].parse().unwrap();
    assert!(
        (esm_q - ism_q - c).abs() < 1e-9 * c,
        "{esm_q} − {ism_q} vs {c}"
    );
    let cfg = fs::read_to_string(dir.path().join("o.config.toml")).unwrap();
    assert!(
        cfg.contains("seed = 7") && cfg.contains("samples = 5000"),
        "{cfg}"
    );
}

/// Each bad input: exit code 2, a message naming the case and the field, and no output written
/// (an existing result file is left as it was).
#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let g = |extra: &str| format!("[[case]]\nname = \"bad\"\n{extra}\n");
    let gauss =
        "density = { kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]] }";
    let lin = "model = { kind = \"random_linear\", seed = 1, scale = 0.5 }";
    let cases: Vec<(String, &[&str])> = vec![
        (g(&format!("density = {{ kind = \"gausian\", mean = [0.0] }}\n{lin}")), &["case 'bad'", "density", "unknown variant `gausian`", "gaussian_mixture"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"linear\", a = [[1.0]], b = [0.0] }}")), &["case 'bad'", "model.a", "2×2"]),
        (g(&format!("density = {{ kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 2.0], [2.0, 1.0]] }}\n{lin}")), &["case 'bad'", "density.cov", "not positive definite", "-1"]),
        (g(&format!("density = {{ kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 0.5], [0.4, 1.0]] }}\n{lin}")), &["density.cov", "not symmetric"]),
        (g(&format!("density = {{ kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0]] }}\n{lin}")), &["density.cov", "row 1 has 1 entries"]),
        (g(&format!("density = {{ kind = \"gaussian_mixture\", weights = [1.2, -0.2], means = [[0.0], [1.0]], covs = [[[1.0]], [[1.0]]] }}\n{lin}")), &["density.weights", "-0.2", "≥ 0"]),
        (g(&format!("density = {{ kind = \"gaussian_mixture\", weights = [0.5, 0.4], means = [[0.0], [1.0]], covs = [[[1.0]], [[1.0]]] }}\n{lin}")), &["density.weights", "sum to 0.9", "must sum to 1"]),
        (g(&format!("density = {{ kind = \"student_t\", mean = [0.0], scale = [[1.0]], nu = 3.0 }}\n{lin}")), &["density.nu", "nu > 4"]),
        (g(&format!("density = {{ kind = \"gaussian\", mean = [nan, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]] }}\n{lin}")), &["density.mean", "non-finite", "NaN"]),
        (g(&format!("density = {{ kind = \"half_normal\", scale = -1.0 }}\n{lin}")), &["density.scale", "> 0"]),
        (g(&format!("density = {{ kind = \"banana\", a = 1.0 }}\n{lin}")), &["case 'bad'", "density", "missing field `b`"]),
        (g(&format!("density = {{ kind = \"banana\", a = 1.0, b = 0.1, c = 2.0 }}\n{lin}")), &["case 'bad'", "unknown field `c`"]),
        (g(&format!("density = {{ a = 1.0, b = 0.1 }}\n{lin}")), &["missing field `kind`", "half_normal"]),
        (g(gauss), &["case 'bad'", "missing field `model`"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"random_linear\", seed = 1, scale = nan }}")), &["model.scale"]),
        (format!("samples = 1\n{}", g(&format!("{gauss}\n{lin}"))), &["samples", "at least 2"]),
        (format!("sampels = 10\n{}", g(&format!("{gauss}\n{lin}"))), &["unknown field `sampels`"]),
        (format!("{}{}", g(&format!("{gauss}\n{lin}")), g(&format!("{gauss}\n{lin}"))), &["used twice"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"mlp\", hidden = [8], activation = \"relu\" }}")), &["case 'bad'", "activation", "tanh | softplus | silu"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"mlp\", hidden = [8, 0] }}")), &["case 'bad'", "hidden", "width 0"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"mlp\", hidden = [8], tau = 2.0 }}")), &["case 'bad'", "unknown field `tau`"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"energy_mlp\", tau = 0.0 }}")), &["case 'bad'", "tau", "positive"]),
        (g(&format!("{gauss}\nmodel = {{ kind = \"energy_mlp\", hidden = [] }}")), &["case 'bad'", "at least one hidden layer"]),
        ("seed = 1\n".to_string(), &["no cases"]),
        ("seed = = 1\n".to_string(), &["line 1"]),
    ];
    for (k, (config, needles)) in cases.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("c.toml"), config).unwrap();
        fs::write(dir.path().join("old.csv"), "previous result\n").unwrap();
        let out = scorelab(
            &["equivalence", "--config", "c.toml", "--out", "old.csv"],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "case {k}: {err}");
        assert!(!err.contains("panicked"), "case {k}: {err}");
        for n in *needles {
            assert!(err.contains(n), "case {k}: expected {n:?} in: {err}");
        }
        assert_eq!(
            fs::read_to_string(dir.path().join("old.csv")).unwrap(),
            "previous result\n"
        );
        assert!(!dir.path().join("old.config.toml").exists());
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 2, "case {k}: {leftovers:?}");
    }
    // An unreadable config file.
    let dir = tempfile::tempdir().unwrap();
    let out = scorelab(&["equivalence", "--config", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config missing.toml"));
    assert!(!dir.path().join("results").exists());
    // An output path that cannot be written (under a regular file), and a folder as --out.
    fs::write(dir.path().join("file"), "x").unwrap();
    for bad in ["file/eq.csv", "."] {
        let out = scorelab(
            &["equivalence", "--samples", "100", "--out", bad],
            dir.path(),
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("--out"), "{err}");
    }
    // A bad flag.
    let out = scorelab(&["equivalence", "--seed", "minus-one"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}
