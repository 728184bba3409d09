//! `scorelab likelihood`: a [`LikelihoodPlan`] file run by [`scorelab_pipeline::likelihood`] on
//! the points of a CSV file, batch by batch with a progress bar and Ctrl-C; writes one row per
//! point and the resolved config. The points are read twice, a batch at a time (once to check
//! every one before any work, once to solve), and each batch's rows go to the output's temporary
//! file as it finishes, so memory holds one batch whatever the number of points.

use crate::{bad, in_config, provenance};
use anyhow::Result;
use scorelab_pipeline::data::open_points;
use scorelab_pipeline::files::Fingerprint;
use scorelab_pipeline::files::{beside, check_distinct, Staged};
use scorelab_pipeline::likelihood::{csv_line, LikelihoodPlan, CSV_HEADER};
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
/// finiteness, the dequantisation grid). `OUT.csv` grows in a temporary file beside it and
/// appears, with `OUT.config.toml`, at the end. Ctrl-C or SIGTERM stops after the current batch and writes the rows of the finished
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
    // An interrupted run's rows go beside --out, never over an earlier complete result.
    let partial_out = beside(&args.out, ".partial.csv");
    let partial_config = beside(&args.out, ".partial.config.toml");
    let model_files: Vec<PathBuf> = est
        .resolved
        .model_dir
        .as_deref()
        .map(run_files)
        .unwrap_or_default();
    let outputs = [
        ("--out", args.out.as_path()),
        ("the config written beside --out", config_out.as_path()),
        (
            "the rows of an interrupted run, beside --out",
            partial_out.as_path(),
        ),
        (
            "the config of an interrupted run, beside --out",
            partial_config.as_path(),
        ),
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
    // Pass 1: every point checked, a batch at a time, before any work. The file is read twice:
    // it must be a regular file, and the same file (fingerprint) when pass 2 starts and ends.
    let fingerprint = Fingerprint::of(&args.points, "--points")?;
    let batch = est.batch();
    let mut points = open_points(&args.points, "--points", Some(est.dim))?;
    let mut n = 0;
    while let Some(b) = points.next_batch(batch)? {
        est.check_points_from(b.view(), "--points", n)
            .map_err(in_config(&args.config))?;
        n += b.nrows();
    }
    // Pass 2: solve batch by batch, each batch's rows appended as it finishes.
    scorelab_core::fsio::fault("likelihood:checked")?;
    fingerprint.unchanged(&args.points, "--points")?;
    let mut grown = Staged::grow(&args.out, CSV_HEADER.as_bytes())?;
    let mut points = open_points(&args.points, "--points", Some(est.dim))?;
    let bar = crate::bar(
        n as u64,
        "{bar:30} {pos}/{len} points · {per_sec} · eta {eta}",
    );
    let started = std::time::Instant::now();
    let mut run_batches = est.batches();
    let (mut done, mut sums) = (0usize, [0.0f64; 3]);
    let mut interrupted = false;
    while let Some(b) = points.next_batch(batch)? {
        if done + b.nrows() > n {
            bar.abandon();
            fingerprint.unchanged(&args.points, "--points")?;
            return Err(bad(format!(
                "--points {}: has more rows than when it was checked ({n}); nothing was written: rerun once the file is complete",
                args.points.display()
            ))
            .into());
        }
        let rows = match run_batches.run_batch(b.view()) {
            Ok(rows) => rows,
            Err(e) => {
                bar.abandon();
                return Err(in_config(&args.config)(e));
            }
        };
        let mut text = String::new();
        for r in &rows {
            text.push_str(&csv_line(r));
            sums[0] += r.log_p;
            sums[1] += r.bits_per_dim;
            sums[2] += r.score_evals as f64;
        }
        grown.append(text.as_bytes())?;
        scorelab_core::fsio::fault("likelihood:batch")?;
        done += rows.len();
        bar.set_position(done as u64);
        if stop.load(Ordering::SeqCst) && done < n {
            interrupted = true;
            break;
        }
    }
    bar.finish_and_clear();
    // A file that shrank, grew or was rewritten since pass 1 is refused before anything is written.
    fingerprint.unchanged(&args.points, "--points")?;
    if !interrupted && done != n {
        return Err(bad(format!(
            "--points {}: has {done} rows now against {n} when it was checked; nothing was written: rerun once the file is complete",
            args.points.display()
        ))
        .into());
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut run = provenance(rayon::current_num_threads());
    for (k, v) in est.describe() {
        run.insert(k, v);
    }
    run.insert(
        "status".into(),
        if interrupted {
            "interrupted"
        } else {
            "complete"
        }
        .into(),
    );
    run.insert("points_done".into(), (done as i64).into());
    run.insert("points".into(), (n as i64).into());
    let mut resolved = est.resolved.clone();
    resolved.run = Some(run);
    let mut staged = Staged::default();
    if interrupted {
        staged.stage_grown(grown.redirect(&partial_out)?)?;
        staged.stage(&partial_config, resolved.to_toml().as_bytes())?;
    } else {
        staged.stage_grown(grown)?;
        staged.stage(&config_out, resolved.to_toml().as_bytes())?;
    }
    staged.commit()?;
    if !interrupted {
        // What an earlier interrupted run left beside --out is superseded.
        for p in [&partial_out, &partial_config] {
            if p.is_file() {
                std::fs::remove_file(p).map_err(|e| scorelab_pipeline::PipelineError::io(p, e))?;
            }
        }
    }
    let mean = |k: usize| sums[k] / done.max(1) as f64;
    if interrupted {
        eprintln!(
            "interrupted after {done} of {n} points; wrote their rows to {} and {} ({})",
            partial_out.display(),
            partial_config.display(),
            if args.out.exists() {
                format!("{} is untouched", args.out.display())
            } else {
                "nothing was written to --out".to_string()
            }
        );
        return Ok(true);
    }
    println!(
        "{n} points in {seconds:.1} s: mean log p {:.4} nats, {:.4} bits/dim, {:.0} score evaluations per point; wrote {} and {}",
        mean(0),
        mean(1),
        mean(2),
        args.out.display(),
        config_out.display()
    );
    Ok(false)
}
