//! `scorelab sample`: a [`SamplePlan`] file run by [`scorelab_pipeline::sample`] (its module
//! docs give the score sources and the randomness), with a progress bar and Ctrl-C; writes the
//! chains, the resolved config, the per-step trace and any snapshots.

use crate::{bad, in_config, provenance};
use anyhow::Result;
use scorelab_core::fsio::fault;
use scorelab_pipeline::files::{
    beside, check_distinct, matrix_csv, write_whole, FolderLock, Staged, LOCK_FILE,
};
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::sample::{trace_csv, AnySampler, SamplePlan};
use scorelab_pipeline::train::run_files;
use scorelab_pipeline::PipelineError;
use scorelab_samplers::Info;
use std::path::{Path, PathBuf};
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
    // The run is written aside, into OUT.partial/ (locked for the whole run, as `train` locks
    // its folder), and moved beside --out only when complete: an earlier complete result stays
    // in place until then, and two runs to one --out cannot mix.
    let aside = Aside::open(&args.out, &inputs)?;
    let config_aside = aside.path(&config_out);
    let snapshot_aside = |k: usize| aside.path(&snapshot_out(k));
    // The config first, so every snapshot has its config beside it.
    write_whole(&config_aside, resolved.to_toml().as_bytes())?;
    fault("sample:config-written")?;
    let bar = crate::bar(
        steps as u64,
        "{bar:30} {pos}/{len} steps · {msg} · {per_sec} · eta {eta}",
    );
    let started = std::time::Instant::now();
    let mut reached = 0usize;
    let out = plan.run_with(
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
            write_whole(&snapshot_aside(k), matrix_csv(x, "x").as_bytes())?;
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
        write_whole(&config_aside, resolved.to_toml().as_bytes())?;
        eprintln!(
            "interrupted after {} of {steps} steps; wrote the {reached} snapshot(s) reached and {} into {} (no samples); {}",
            out.trace.len(),
            config_aside.display(),
            aside.dir().display(),
            if args.out.exists() {
                format!("the earlier complete run beside {} is untouched", args.out.display())
            } else {
                "nothing was written beside --out".to_string()
            }
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
    aside.swap_in(&args.out, &config_out, &snapshots, staged)?;
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

/// Where a `sample` run writes before it is complete: the folder `OUT.partial/` beside `--out`,
/// locked for the whole run (a second run to the same `--out` is refused at once). Its config and
/// snapshots move beside `--out` when the run completes ([`Aside::swap_in`]); an interrupted run
/// leaves them there, and the next run to the same `--out` clears them.
struct Aside {
    lock: FolderLock,
}

impl Aside {
    fn open(out: &Path, inputs: &[(&str, &Path)]) -> Result<Self> {
        let dir = beside(out, ".partial");
        // An input inside the run folder would be cleared with it: refused first.
        for (flag, p) in inputs {
            if scorelab_pipeline::files::same_file(&scorelab_core::fsio::parent_of(p), &dir) {
                return Err(bad(format!(
                    "{flag} {}: is inside {}, the folder where this run writes before it is complete; move it elsewhere",
                    p.display(),
                    dir.display()
                ))
                .into());
            }
        }
        // What an earlier interrupted run left there is not a complete result: cleared.
        let lock = FolderLock::acquire_emptied(&dir, "--out (its run folder)")?;
        Ok(Aside { lock })
    }

    fn dir(&self) -> &Path {
        self.lock.dir()
    }

    /// The aside twin of an output beside `--out`.
    fn path(&self, final_path: &Path) -> PathBuf {
        self.dir()
            .join(final_path.file_name().expect("an output has a file name"))
    }

    /// Moves the complete run beside `--out`: the files of the run it replaces are removed, its
    /// config first (no complete config ever stands beside another run's files), then this run's
    /// snapshots, trace and samples are renamed in, its config last.
    fn swap_in(
        self,
        out: &Path,
        config_out: &Path,
        snapshots: &[PathBuf],
        staged: Staged,
    ) -> Result<()> {
        let parent = scorelab_core::fsio::parent_of(out);
        // The earlier run goes whole, its config first, so that a kill inside the swap leaves
        // only files of this run, and no config claiming them complete.
        let trace_out = beside(out, ".trace.csv");
        for p in [config_out, out, trace_out.as_path()] {
            if p.is_file() {
                std::fs::remove_file(p).map_err(|e| PipelineError::io(p, e))?;
            }
        }
        for old in earlier_snapshots(out)? {
            std::fs::remove_file(&old).map_err(|e| PipelineError::io(&old, e))?;
        }
        for p in snapshots {
            let from = self.path(p);
            std::fs::rename(&from, p).map_err(|e| PipelineError::io(p, e))?;
        }
        staged.commit()?;
        scorelab_core::fsio::sync_dir(&parent).map_err(|e| PipelineError::io(&parent, e))?;
        let dir = self.dir().to_path_buf();
        let config_aside = self.path(config_out);
        if config_aside.is_file() {
            std::fs::remove_file(&config_aside).map_err(|e| PipelineError::io(&config_aside, e))?;
        }
        // The folder goes with its lock file while the lock is held.
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        let _ = std::fs::remove_dir(&dir);
        drop(self);
        Ok(())
    }
}

/// The snapshots `<stem>.step<K>.csv` beside `out` (an earlier run's).
fn earlier_snapshots(out: &Path) -> Result<Vec<PathBuf>> {
    let parent = scorelab_core::fsio::parent_of(out);
    let stem = beside(out, ".step");
    let prefix = stem
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut found = vec![];
    let entries = match std::fs::read_dir(&parent) {
        Ok(e) => e,
        Err(_) => return Ok(found),
    };
    for entry in entries {
        let entry = entry.map_err(|e| PipelineError::io(&parent, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_snapshot = name
            .strip_prefix(&prefix)
            .and_then(|r| r.strip_suffix(".csv"))
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()));
        if is_snapshot && entry.file_type().is_ok_and(|t| t.is_file()) {
            found.push(entry.path());
        }
    }
    Ok(found)
}
