//! `scorelab sample`: a [`SamplePlan`] file run by [`scorelab_pipeline::sample`] (its module
//! docs give the score sources and the randomness), with a progress bar and Ctrl-C; writes the
//! chains, the resolved config, the per-step trace and any snapshots.

use crate::{bad, in_config, provenance};
use anyhow::Result;
use scorelab_pipeline::files::{beside, matrix_csv, Staged};
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::sample::{trace_csv, AnySampler, SamplePlan};
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
/// # Errors
/// An input error for bad input, other errors for I/O failures.
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
    let steps = plan.sampler.outline().num_steps();
    let bar = crate::bar(
        steps as u64,
        "{bar:30} {pos}/{len} steps · {msg} · {per_sec} · eta {eta}",
    );
    let started = std::time::Instant::now();
    let out = plan.run(plan.resolved.seed, &mut |i: &Info| {
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
    });
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let mut resolved = plan.resolved.clone();
    let mut run = provenance(rayon::current_num_threads());
    run.insert("target".into(), plan.target_label().into());
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
    // Snapshots first, each on its own, so an interruption keeps those reached.
    for (k, x) in &out.snapshots {
        let mut staged = Staged::default();
        staged.stage(
            &beside(&args.out, &format!(".step{k}.csv")),
            matrix_csv(x, "x").as_bytes(),
        )?;
        staged.commit()?;
    }
    if out.interrupted {
        eprintln!(
            "interrupted after {} of {steps} steps; wrote the {} snapshot(s) reached, no samples",
            out.trace.len(),
            out.snapshots.len()
        );
        return Ok(true);
    }
    let mut staged = Staged::default();
    staged.stage(
        &beside(&args.out, ".config.toml"),
        resolved.to_toml().as_bytes(),
    )?;
    staged.stage(
        &beside(&args.out, ".trace.csv"),
        trace_csv(&out.trace, init_evals).as_bytes(),
    )?;
    staged.stage(&args.out, matrix_csv(&out.x, "x").as_bytes())?;
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
        beside(&args.out, ".config.toml").display(),
        beside(&args.out, ".trace.csv").display()
    );
    Ok(false)
}
