//! Hostile files and inputs: outputs that are device nodes, FIFOs, links or the command's own
//! inputs; a tampered model transform; values and cells built to overflow; configs that used to be
//! accepted and then failed late. Each is refused with exit code 2 before anything is written.

mod common;

use common::{ok, scorelab};
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn refused(out: &std::process::Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    err
}

const SAMPLE: &str = "seed = 1\nchains = 16\ndensity = { kind = \"standard_normal\", dim = 2 }\ninit = { kind = \"gaussian\", std = 1.0 }\n[sampler]\nkind = \"langevin\"\neps = 0.1\nsteps = 5\n";

/// A trained model on a CSV file (so it has a transform), a points file and a sample config.
fn setup(d: &Path) {
    let mut csv = String::from("a,b\n");
    for i in 0..60 {
        let t = i as f64 / 5.0;
        csv.push_str(&format!("{},{}\n", t.sin() * 4.0, t.cos() + 3.0));
    }
    fs::write(d.join("data.csv"), csv).unwrap();
    fs::write(
        d.join("t.toml"),
        "[data]\ncsv = \"data.csv\"\n[model]\nkind = \"mlp\"\nhidden = [8]\n[objective]\nkind = \"ssm_vr\"\n[train]\nsteps = 10\neval_every = 5\n",
    )
    .unwrap();
    ok(&scorelab(&["train", "--config", "t.toml", "--out", "m"], d));
    fs::write(d.join("p.csv"), "x0,x1\n0.5,3\n-1,2.5\n").unwrap();
    fs::write(d.join("s.toml"), SAMPLE).unwrap();
    fs::write(
        d.join("d.toml"),
        "density = { kind = \"standard_normal\", dim = 2 }\n",
    )
    .unwrap();
}

#[cfg(unix)]
fn is_fifo(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    fs::symlink_metadata(p).unwrap().file_type().is_fifo()
}

#[cfg(unix)]
#[test]
fn outputs_that_are_fifos_links_or_folders_are_refused_and_left_as_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let made = std::process::Command::new("mkfifo")
        .args(["fifo", "x.config.toml"])
        .current_dir(d)
        .status()
        .unwrap();
    assert!(made.success());
    std::os::unix::fs::symlink("elsewhere.csv", d.join("link.csv")).unwrap();
    // Each command line split at spaces.
    let cases = [
        "score --model m --points p.csv --out fifo",
        "sample --config s.toml --out fifo",
        // The config written beside x.csv would be the FIFO x.config.toml.
        "sample --config s.toml --out x.csv",
        "eval --samples p.csv --density d.toml --out fifo",
        "equivalence --samples 1000 --out fifo",
        "cost --dims 2 --steps 1 --out fifo",
        "score --model m --points p.csv --out link.csv",
    ];
    for line in cases {
        let args: Vec<&str> = line.split(' ').collect();
        let out = scorelab(&args, d);
        let err = refused(&out, &["regular file"]);
        assert!(err.lines().count() == 1, "one line: {err}");
    }
    assert!(is_fifo(&d.join("fifo")) && is_fifo(&d.join("x.config.toml")));
    assert!(fs::symlink_metadata(d.join("link.csv"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!d.join("x.csv").exists() && !d.join("elsewhere.csv").exists());
    // The lock file of an output folder is never a FIFO either (opening one would hang).
    fs::create_dir(d.join("run")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg("run/.scorelab.lock")
        .current_dir(d)
        .status()
        .unwrap();
    assert!(made.success());
    refused(
        &scorelab(&["train", "--config", "t.toml", "--out", "run"], d),
        &["regular file"],
    );
}

#[test]
fn an_output_that_is_an_input_of_the_same_command_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    fs::hard_link(d.join("p.csv"), d.join("hard.csv")).unwrap();
    fs::copy(d.join("p.csv"), d.join("r.csv")).unwrap();
    fs::copy(d.join("s.toml"), d.join("x.config.toml")).unwrap();
    let before = |p: &str| fs::read(d.join(p)).unwrap();
    let (p, s, x) = (before("p.csv"), before("s.toml"), before("x.config.toml"));
    let cases = [
        ("sample --config s.toml --out s.toml", "--config"),
        // sample writes x.config.toml beside x.csv: the config it reads.
        ("sample --config x.config.toml --out x.csv", "--config"),
        ("score --model m --points p.csv --out p.csv", "--points"),
        (
            "score --model m --points p.csv --out ./hard.csv",
            "--points",
        ),
        ("score --model m --points p.csv --out m/loss.csv", "--model"),
        (
            "eval --samples p.csv --density d.toml --out p.csv",
            "--samples",
        ),
        (
            "eval --samples p.csv --density d.toml --out d.toml",
            "--density",
        ),
        (
            "eval --samples p.csv --reference r.csv --out r.csv",
            "--reference",
        ),
    ];
    for (line, input) in cases {
        let args: Vec<&str> = line.split(' ').collect();
        let out = scorelab(&args, d);
        refused(&out, &["same file as", input]);
    }
    assert_eq!(before("p.csv"), p);
    assert_eq!(before("s.toml"), s);
    assert_eq!(before("x.config.toml"), x);
    assert!(!d.join("x.csv").exists());
    // train --force would remove the config it was given.
    fs::copy(d.join("m/config.toml"), d.join("m/mine.toml")).unwrap();
    let out = scorelab(
        &[
            "train",
            "--config",
            "m/config.toml",
            "--out",
            "m",
            "--force",
        ],
        d,
    );
    refused(&out, &["--config", "--force"]);
    assert!(d.join("m/config.toml").exists());
}

#[test]
fn paper_checks_every_input_and_marker_before_it_writes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = repo();
    let out_md = d.join("out.md");
    fs::write(d.join("README.md"), "# no markers here\n").unwrap();
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "paper",
            "--results",
            "results",
            "--template",
            "paper/paper.template.md",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(out_md.to_string_lossy().into());
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let readme = d.join("README.md").to_string_lossy().to_string();
    let a = args(&["--readme", &readme]);
    let out = scorelab(&a.iter().map(String::as_str).collect::<Vec<_>>(), &root);
    refused(&out, &["pitch:start"]);
    assert!(
        !out_md.exists(),
        "--out is not written when --readme cannot be"
    );
    // The template as its own output.
    let tmpl = d.join("t.md");
    fs::copy(root.join("paper/paper.template.md"), &tmpl).unwrap();
    let before = fs::read(&tmpl).unwrap();
    let t = tmpl.to_string_lossy().to_string();
    let out = scorelab(
        &[
            "paper",
            "--results",
            "results",
            "--template",
            &t,
            "--out",
            &t,
        ],
        &root,
    );
    refused(&out, &["same file as --template"]);
    assert_eq!(fs::read(&tmpl).unwrap(), before);
}

/// Rewrites `transform.toml` of the model in `m`.
fn edit_transform(d: &Path, f: impl Fn(&str) -> String) {
    let p = d.join("m/transform.toml");
    let text = fs::read_to_string(&p).unwrap();
    fs::write(&p, f(&text)).unwrap();
}

#[test]
fn a_missing_or_tampered_transform_is_refused_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    setup(d);
    let score = || {
        scorelab(
            &[
                "score", "--model", "m", "--points", "p.csv", "--out", "o.csv",
            ],
            d,
        )
    };
    ok(&score());
    let good = fs::read_to_string(d.join("m/transform.toml")).unwrap();
    let line = |key: &str| {
        good.lines()
            .find(|l| l.starts_with(key))
            .unwrap()
            .to_string()
    };
    let (scale, mean) = (line("scale = "), line("mean = "));
    let edits: Vec<(String, String)> = vec![
        (scale.clone(), "scale = [0.0, 0.0]".into()),
        (scale.clone(), "scale = [1.0]".into()),
        (mean.clone(), "mean = [nan, 0.0]".into()),
        (scale.clone(), scale.replace('[', "[ ")),
    ];
    for (from, to) in &edits {
        edit_transform(d, |t| t.replace(from, to));
        fs::remove_file(d.join("o.csv")).ok();
        refused(&score(), &["transform.toml", "checksum"]);
        assert!(!d.join("o.csv").exists());
        // sample from the model is refused the same way.
        fs::write(
            d.join("ms.toml"),
            "chains = 4\nmodel_dir = \"m\"\ninit = { kind = \"gaussian\", std = 1.0 }\n[sampler]\nkind = \"langevin\"\neps = 0.1\nsteps = 2\n",
        )
        .unwrap();
        refused(
            &scorelab(&["sample", "--config", "ms.toml", "--out", "ms.csv"], d),
            &["transform.toml"],
        );
        fs::write(d.join("m/transform.toml"), &good).unwrap();
    }
    fs::remove_file(d.join("m/transform.toml")).unwrap();
    refused(&score(), &["transform.toml", "missing"]);
    fs::write(d.join("m/transform.toml"), &good).unwrap();
    ok(&score());

    // Weights that record no transform (copied in, or of an older scorelab) beside a
    // transform.toml: the transform was not part of their training, so it is refused, never
    // applied, whatever it holds; without it, the folder's config still says the data were a
    // file, so the missing transform is refused too.
    let net = scorelab_models::Network::load(&d.join("m/model.safetensors")).unwrap();
    net.save(&d.join("m/model.safetensors")).unwrap();
    for t in [good.clone(), good.replace(&scale, "scale = [0.0, 1.0]")] {
        fs::write(d.join("m/transform.toml"), &t).unwrap();
        fs::remove_file(d.join("o.csv")).ok();
        refused(&score(), &["transform.toml", "records no transform"]);
        assert!(!d.join("o.csv").exists());
    }
    fs::remove_file(d.join("m/transform.toml")).unwrap();
    refused(&score(), &["transform.toml", "missing"]);
}

#[test]
fn values_built_to_overflow_and_huge_cells_are_refused_in_one_short_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(
        d.join("big.csv"),
        "a,b\n1,2\n3,1e308\n2,2\n5,1\n4,4\n1,0\n7,3\n8,1\n9,9\n3,3\n",
    )
    .unwrap();
    fs::write(
        d.join("t.toml"),
        "[data]\ncsv = \"big.csv\"\n[model]\nkind = \"mlp\"\nhidden = [8]\n[objective]\nkind = \"ssm_vr\"\n[train]\nsteps = 10\n",
    )
    .unwrap();
    let err = refused(
        &scorelab(&["train", "--config", "t.toml", "--out", "r"], d),
        &["row 2", "column \"b\"", "1e308", "overflows"],
    );
    assert!(err.lines().count() == 1, "{err}");
    assert!(!d.join("r/config.toml").exists());
    // A 50 MB cell is quoted, not echoed.
    let mut cell = String::from("x0,x1\n1,");
    cell.push_str(&"9".repeat(50_000_000));
    cell.push('\n');
    fs::write(
        d.join("d.toml"),
        "density = { kind = \"standard_normal\", dim = 2 }\n",
    )
    .unwrap();
    // The same cell as a number too large, then as a non-number.
    let eval: Vec<&str> = "eval --samples huge.csv --density d.toml --out e.csv"
        .split(' ')
        .collect();
    for (text, needle) in [("1,9", "50000000 characters"), ("1,a9", "is not a number")] {
        fs::write(d.join("huge.csv"), cell.replace("1,9", text)).unwrap();
        let err = refused(&scorelab(&eval, d), &[needle]);
        assert!(err.len() < 400, "{} characters", err.len());
    }
}

#[test]
fn configs_that_used_to_fail_late_are_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let train = |model: &str, objective: &str| {
        fs::write(
            d.join("c.toml"),
            format!("[data]\ndensity = {{ kind = \"standard_normal\", dim = 2 }}\n[model]\n{model}\n[objective]\n{objective}\n[train]\nsteps = 5\n"),
        )
        .unwrap();
        scorelab(&["train", "--config", "c.toml", "--out", "r"], d)
    };
    refused(
        &train("kind = \"mlp\"\nhidden = []", "kind = \"ism\""),
        &["model.hidden", "kind = \"linear\""],
    );
    refused(
        &train(
            "kind = \"noise_conditional_mlp\"",
            "kind = \"dsm_multi\"\nlevels = 1",
        ),
        &["objective.levels", "at least 2"],
    );
    refused(
        &train("kind = \"mlp\"", "kind = \"dsm\"\nsigma = 1e300"),
        &["objective.sigma", "outside"],
    );
    assert!(!d.join("r").exists());
    // A TOML syntax error is one line, naming the file and the line.
    fs::write(d.join("bad.toml"), "seed = 1\n[data\ndensity = 3\n").unwrap();
    let err = refused(
        &scorelab(&["train", "--config", "bad.toml", "--out", "r"], d),
        &["bad.toml", "line 2"],
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn experiments_refuse_duplicate_runs_and_reproduce_checks_every_file_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = fs::read_to_string(repo().join("paper/experiments/ncsn_toy.toml")).unwrap();
    let dup = base.replacen("name = \"annealed_exact\"", "name = \"langevin\"", 1);
    fs::write(d.join("dup.toml"), dup).unwrap();
    refused(
        &scorelab(
            &["experiment", "--config", "dup.toml", "--results", "res"],
            d,
        ),
        &["run[1]", "\"langevin\"", "run[0]"],
    );
    assert!(!d.join("res").exists(), "nothing was written");
    // An experiment whose results folder another process holds is refused at once.
    fs::write(d.join("ok.toml"), &base).unwrap();
    let held = scorelab_pipeline::files::FolderLock::acquire(&d.join("res"), "test").unwrap();
    refused(
        &scorelab(
            &["experiment", "--config", "ok.toml", "--results", "res"],
            d,
        ),
        &[&format!("pid {}", std::process::id()), "res"],
    );
    drop(held);
    // reproduce with one broken experiment among the good ones stops before its first step.
    let exp = d.join("paper/experiments");
    fs::create_dir_all(&exp).unwrap();
    for e in fs::read_dir(repo().join("paper/experiments")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), exp.join(e.file_name())).unwrap();
    }
    // The studies' checks read their data files too.
    std::os::unix::fs::symlink(repo().join("datasets"), d.join("datasets")).unwrap();
    let digits = fs::read_to_string(exp.join("digits.toml")).unwrap();
    fs::write(
        exp.join("digits.toml"),
        format!("no_such_key = 1\n{digits}"),
    )
    .unwrap();
    refused(
        &scorelab(&["reproduce", "--quick"], d),
        &["digits.toml", "no_such_key"],
    );
    // Refused before any step: nothing written (a timing bound would depend on the machine's load).
    assert!(!d.join("results").exists(), "no step ran");
}

/// The keys of the solvers, grids, guidance, starting points and flow-matching objective, and
/// of the solver and guidance studies: each bad value exits 2 naming its key, and nothing is
/// written.
#[test]
fn bad_solver_guidance_and_path_keys_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mix = "density = { kind = \"gaussian_mixture\", weights = [0.5, 0.5], means = [[-2.0, 0.0], [2.0, 0.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }";
    let sample = |extra: &str, sampler: &str| {
        fs::write(
            d.join("g.toml"),
            format!("seed = 1\nchains = 8\n{mix}\n{extra}\n[sampler]\n{sampler}\n"),
        )
        .unwrap();
        scorelab(&["sample", "--config", "g.toml", "--out", "o.csv"], d)
    };
    let solver = "kind = \"dpmpp_2m\"\nsteps = 4";
    for (extra, sampler, keys) in [
        (
            "",
            "kind = \"dpmpp_2m\"\nsteps = 4\ngrid = \"karras2\"",
            &["grid", "karras"][..],
        ),
        (
            "",
            "kind = \"dpmpp_2m\"\nsteps = 4\neta = 0.5",
            &["eta"][..],
        ),
        (
            "",
            "kind = \"unipc\"\nsteps = 4\ngrid = \"log_snr\"\nrho = 7.0",
            &["rho"][..],
        ),
        ("", "kind = \"euler_ancestral\"\nsteps = 0", &["steps"][..]),
        (
            "guidance = { weight = -1.0, class = [0] }",
            solver,
            &["weight"][..],
        ),
        (
            "guidance = { weight = 1.0, class = [0], interval = [5.0, 1.0] }",
            solver,
            &["interval"][..],
        ),
        (
            "guidance = { weight = 1.0, class = [7] }",
            solver,
            &["class"][..],
        ),
        (
            "guidance = { weight = 1.0, class = [0], scale = 2 }",
            solver,
            &["scale"][..],
        ),
        (
            "init = { csv = \"missing.csv\" }",
            solver,
            &["missing.csv"][..],
        ),
    ] {
        refused(&sample(extra, sampler), keys);
        assert!(!d.join("o.csv").exists(), "{extra} {sampler}");
    }
    let train = |objective: &str| {
        fs::write(
            d.join("f.toml"),
            format!("[data]\n{mix}\n[model]\nkind = \"noise_conditional_mlp\"\nhidden = [8]\n[objective]\n{objective}\n[train]\nsteps = 5\n"),
        )
        .unwrap();
        scorelab(&["train", "--config", "f.toml", "--out", "m"], d)
    };
    refused(&train("kind = \"flow_matching\"\nt_max = 1.5"), &["t_max"]);
    refused(
        &train("kind = \"flow_matching\"\ncoupling = \"sinkhorn\""),
        &["coupling", "ot"],
    );
    assert!(!d.join("m").exists());
    let experiment = |text: &str| {
        fs::write(d.join("e.toml"), text).unwrap();
        scorelab(&["experiment", "--config", "e.toml", "--results", "r"], d)
    };
    let solvers = format!("kind = \"solvers\"\ndescription = \"\"\nseeds = [1]\nbudgets = [4]\n[[target]]\nname = \"t\"\nchains = 8\n{mix}\n[[schedule]]\nname = \"edm\"\nschedule = {{ kind = \"edm\" }}\n[[sampler]]\nsampler = {{ kind = \"unipc\" }}\n");
    refused(
        &experiment(&solvers.replace("budgets = [4]", "budgets = [4]\nflow_tol = 0.5")),
        &["flow_tol"],
    );
    refused(
        &experiment(&solvers.replace("kind = \"unipc\" }", "kind = \"unipc\", steps = 3 }")),
        &["sampler[0].sampler.steps"],
    );
    refused(
        &experiment(&solvers.replace("kind = \"edm\" }", "kind = \"edm\", sigma_max = -1.0 }")),
        &["schedule", "sigma"],
    );
    let guidance = format!("kind = \"guidance\"\ndescription = \"\"\nseeds = [1]\nweights = [1.0]\nchains = 8\n[[target]]\nname = \"t\"\nclass = [0]\n{mix}\n");
    refused(
        &experiment(&guidance.replace("weights = [1.0]", "weights = [-1.0]")),
        &["weights"],
    );
    refused(
        &experiment(&guidance.replace("class = [0]", "class = [0, 1]")),
        &["class"],
    );
    refused(
        &experiment(&format!(
            "{guidance}[[interval]]\nname = \"x\"\nrange = [3.0, 1.0]\n"
        )),
        &["interval[0].range"],
    );
    refused(
        &experiment(&format!(
            "{guidance}quadrature = {{ half_width = 5.0, panels = 0, nodes = 4 }}\n"
        )),
        &["quadrature"],
    );
    assert!(!d.join("r").exists());
}
