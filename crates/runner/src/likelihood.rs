//! `scorelab likelihood`: a [`LikelihoodPlan`] file run by [`scorelab_pipeline::likelihood`] on
//! the points of a CSV file, batch by batch with a progress bar and Ctrl-C; writes one row per
//! point and the resolved config.

use crate::{bad, in_config, provenance};
use anyhow::Result;
use scorelab_pipeline::data::read_points;
use scorelab_pipeline::files::{beside, check_distinct, Staged};
use scorelab_pipeline::likelihood::{to_csv, LikelihoodPlan, Progress};
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::train::run_files;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The flags of `scorelab likelihood`.
#[derive(clap::Args)]
pub struct LikelihoodArgs {
    /// The TOML config (density or model_dir, schedule, divergence, solver, prior, dequantize).
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// The points, header x0,…,x{D-1}, in the data's units.
    #[arg(long, value_name = "IN.csv")]
    pub points: PathBuf,
    /// Where to write log_p,log_p_se,bits_per_dim,score_evals.
    #[arg(long, value_name = "OUT.csv")]
    pub out: PathBuf,
    /// Overrides the config's seed (Hutchinson's probes, the dequantisation noise).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Runs `scorelab likelihood` (module docs); returns whether Ctrl-C interrupted it.
///
/// Every input is checked before any work: the config, the model, and every point (dimension,
/// finiteness, the dequantisation grid). `OUT.csv` and `OUT.config.toml` are written together at
/// the end. Ctrl-C or SIGTERM stops after the current batch and writes the rows of the finished
/// batches, with `status = "interrupted"` and `points_done` in the config.
///
/// # Errors
/// An input error for bad input, other errors for I/O failures.
pub fn run(args: &LikelihoodArgs, stop: &AtomicBool) -> Result<bool> {
    if args.out.is_dir() {
        return Err(bad(format!(
            "--out {}: is a folder; give a file name such as loglik.csv",
            args.out.display()
        ))
        .into());
    }
    let mut file = LikelihoodPlan::from_file(&args.config)?;
    if let Some(s) = args.seed {
        file.seed = s;
    }
    let est = file.prepare().map_err(in_config(&args.config))?;
    let config_out = beside(&args.out, ".config.toml");
    let model_files: Vec<PathBuf> = est
        .resolved
        .model_dir
        .as_deref()
        .map(run_files)
        .unwrap_or_default();
    let outputs = [
        ("--out", args.out.as_path()),
        ("the config written beside --out", config_out.as_path()),
    ];
    let mut inputs = vec![
        ("--config", args.config.as_path()),
        ("--points", args.points.as_path()),
    ];
    inputs.extend(
        model_files
            .iter()
            .map(|p| ("a file of model_dir", p.as_path())),
    );
    check_distinct(&outputs, &inputs)?;
    let x = read_points(&args.points, "--points", Some(est.dim))?;
    est.check_points(x.view(), "--points")
        .map_err(in_config(&args.config))?;
    let n = x.nrows();
    let bar = crate::bar(
        n as u64,
        "{bar:30} {pos}/{len} points · {per_sec} · eta {eta}",
    );
    let started = std::time::Instant::now();
    let out = est.run(x.view(), &mut |p: &Progress| {
        bar.set_position(p.done as u64);
        if stop.load(Ordering::SeqCst) {
            Control::Stop
        } else {
            Control::Continue
        }
    });
    bar.finish_and_clear();
    let out = out.map_err(in_config(&args.config))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut run = provenance(rayon::current_num_threads());
    for (k, v) in est.describe() {
        run.insert(k, v);
    }
    run.insert(
        "status".into(),
        if out.interrupted {
            "interrupted"
        } else {
            "complete"
        }
        .into(),
    );
    run.insert("points_done".into(), (out.rows.len() as i64).into());
    run.insert("points".into(), (n as i64).into());
    let mut resolved = est.resolved.clone();
    resolved.run = Some(run);
    let mut staged = Staged::default();
    staged.stage(&args.out, to_csv(&out.rows).as_bytes())?;
    staged.stage(&config_out, resolved.to_toml().as_bytes())?;
    staged.commit()?;
    let mean = |f: &dyn Fn(&scorelab_pipeline::likelihood::LikelihoodRow) -> f64| {
        out.rows.iter().map(f).sum::<f64>() / out.rows.len().max(1) as f64
    };
    if out.interrupted {
        eprintln!(
            "interrupted after {} of {n} points; wrote their rows to {} and {}",
            out.rows.len(),
            args.out.display(),
            config_out.display()
        );
        return Ok(true);
    }
    println!(
        "{n} points in {seconds:.1} s: mean log p {:.4} nats, {:.4} bits/dim, {:.0} score evaluations per point; wrote {} and {}",
        mean(&|r| r.log_p),
        mean(&|r| r.bits_per_dim),
        mean(&|r| r.score_evals as f64),
        args.out.display(),
        config_out.display()
    );
    Ok(false)
}
