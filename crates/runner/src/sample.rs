//! `scorelab sample`: a [`SamplePlan`] file run by [`scorelab_pipeline::sample`] (its module
//! docs give the score sources and the randomness), with a progress bar and Ctrl-C; writes the
//! chains, the resolved config, the per-step trace and any snapshots.

use crate::{bad, in_config, provenance};
use anyhow::Result;
use scorelab_core::fsio::fault;
use scorelab_pipeline::files::{beside, check_distinct, matrix_csv, write_whole, Staged};
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::sample::{trace_csv, AnySampler, SamplePlan};
use scorelab_pipeline::train::run_files;
use scorelab_pipeline::PipelineError;
use scorelab_samplers::Info;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The flags of `scorelab sample`.
#[derive(clap::Args)]
pub struct SampleArgs {
    /// The TOML config (seed, chains, density or model_dir, init, snapshots, and a sampler table).
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// Where to write the samples.
    #[arg(long, value_name = "FILE.csv")]
    pub out: PathBuf,
    /// Overrides the config's seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

/// Runs `scorelab sample` (module docs); returns whether Ctrl-C interrupted it.
///
/// Files: `OUT.config.toml` is written first (its `[run] status` is `running`), each snapshot
/// `OUT.step<K>.csv` as it is reached, and at the end the trace, the samples and the config again
/// (`status = "complete"`, with the run's figures). Ctrl-C or SIGTERM rewrites the config with
/// `status = "interrupted"` and the steps done, beside the snapshots reached.
///
/// # Errors
/// An input error for bad input (an output that is an input, or not a regular file, among
/// them), other errors for I/O failures.
pub fn run(args: &SampleArgs, stop: &AtomicBool) -> Result<bool> {
    if args.out.is_dir() {
        return Err(bad(format!(
            "--out {}: is a folder; give a file name such as samples.csv",
            args.out.display()
        ))
        .into());
    }
    let mut file = SamplePlan::from_file(&args.config)?;
    if let Some(s) = args.seed {
        file.seed = s;
    }
    let plan = file.prepare().map_err(in_config(&args.config))?;
    let config_out = beside(&args.out, ".config.toml");
    let trace_out = beside(&args.out, ".trace.csv");
    let snapshot_out = |k: usize| beside(&args.out, &format!(".step{k}.csv"));
    let snapshots: Vec<PathBuf> = plan
        .resolved
        .snapshots
        .iter()
        .map(|&k| snapshot_out(k))
        .collect();
    let model_files: Vec<PathBuf> = plan
        .resolved
        .model_dir
        .as_deref()
        .map(run_files)
        .unwrap_or_default();
    let mut outputs = vec![
        ("--out", args.out.as_path()),
        ("the config written beside --out", config_out.as_path()),
        ("the trace written beside --out", trace_out.as_path()),
    ];
    outputs.extend(
        snapshots
            .iter()
            .map(|p| ("a snapshot written beside --out", p.as_path())),
    );
    let mut inputs = vec![("--config", args.config.as_path())];
    inputs.extend(
        model_files
            .iter()
            .map(|p| ("a file of model_dir", p.as_path())),
    );
    check_distinct(&outputs, &inputs)?;
    let steps = plan.sampler.outline().num_steps();
    let mut resolved = plan.resolved.clone();
    let mut run = provenance(rayon::current_num_threads());
    run.insert("target".into(), plan.target_label().into());
    run.insert("status".into(), "running".into());
    resolved.run = Some(run.clone());
    // The config first, so every snapshot has its config beside it; outputs of an earlier run
    // that this one replaces go, so none is left beside a config it does not belong to.
    write_whole(&config_out, resolved.to_toml().as_bytes())?;
    for p in [&args.out, &trace_out] {
        if p.is_file() {
            std::fs::remove_file(p)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", p.display()))?;
        }
    }
    fault("sample:config-written")?;
    let bar = crate::bar(
        steps as u64,
        "{bar:30} {pos}/{len} steps · {msg} · {per_sec} · eta {eta}",
    );
    let started = std::time::Instant::now();
    let mut reached = 0usize;
    let out = plan.run_with(
        plan.resolved.seed,
        &mut |i: &Info| {
            bar.inc(1);
            if i.step.is_multiple_of(10) {
                let mut msg = match i.sigma {
                    Some(s) => format!("σ {s:.3}"),
                    None => format!("ε {}", i.step_size),
                };
                if let Some(a) = i.acceptance_rate {
                    msg.push_str(&format!(" · accept {a:.2}"));
                }
                bar.set_message(msg);
            }
            if stop.load(Ordering::SeqCst) {
                Control::Stop
            } else {
                Control::Continue
            }
        },
        &mut |k, x| {
            write_whole(&snapshot_out(k), matrix_csv(x, "x").as_bytes())?;
            reached += 1;
            fault("sample:snapshot-saved").map_err(|e| PipelineError::io(&args.out, e))
        },
    );
    bar.finish_and_clear();
    let out = out?;
    let seconds = started.elapsed().as_secs_f64();
    if out.interrupted {
        run.insert("status".into(), "interrupted".into());
        run.insert("steps_done".into(), (out.trace.len() as i64).into());
        resolved.run = Some(run);
        write_whole(&config_out, resolved.to_toml().as_bytes())?;
        eprintln!(
            "interrupted after {} of {steps} steps; wrote the {reached} snapshot(s) reached and {}, no samples",
            out.trace.len(),
            config_out.display()
        );
        return Ok(true);
    }
    run.insert("status".into(), "complete".into());
    run.insert(
        "score_evals_per_chain".into(),
        (out.score_evals as i64).into(),
    );
    let diverged = out
        .x
        .rows()
        .into_iter()
        .filter(|r| r.iter().any(|v| !v.is_finite()))
        .count();
    run.insert("diverged_chains".into(), (diverged as i64).into());
    resolved.run = Some(run);
    let init_evals = usize::from(matches!(plan.sampler, AnySampler::Mala(_)));
    // The config last: `status = "complete"` is written only once the samples are.
    let mut staged = Staged::default();
    staged.stage(&trace_out, trace_csv(&out.trace, init_evals).as_bytes())?;
    staged.stage(&args.out, matrix_csv(&out.x, "x").as_bytes())?;
    staged.stage(&config_out, resolved.to_toml().as_bytes())?;
    staged.commit()?;
    let mean_accept = {
        let a: Vec<f64> = out.trace.iter().filter_map(|i| i.acceptance_rate).collect();
        (!a.is_empty()).then(|| a.iter().sum::<f64>() / a.len() as f64)
    };
    println!(
        "{} chains × {steps} steps of {} in {seconds:.1} s ({} score evaluations per chain; targets {}{})",
        plan.resolved.chains,
        plan.resolved.sampler.kind(),
        out.score_evals,
        plan.target_label(),
        mean_accept
            .map(|a| format!("; mean acceptance {a:.3}"))
            .unwrap_or_default()
    );
    if diverged > 0 {
        eprintln!(
            "warning: {diverged} of {} chains diverged (non-finite coordinates, written as NaN/inf): lower eps, or start closer to the data",
            plan.resolved.chains
        );
    }
    println!(
        "wrote {}, {} and {}",
        args.out.display(),
        config_out.display(),
        trace_out.display()
    );
    Ok(false)
}
