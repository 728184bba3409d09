//! The `scorelab` command line.

use anyhow::Result;
use clap::{Parser, Subcommand};
use scorelab::{
    cost, equivalence, evaluate, experiments, likelihood, sample, score, stop_flag, train,
    InputError,
};
use scorelab_pipeline::equivalence::{builtin, EquivalenceConfig, DEFAULT_SAMPLES};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// scorelab: score matching, checked against the truth.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Audit ESM = ISM + C (+ boundary term) on analytic densities; one CSV row per case.
    ///
    /// Without --config, runs the built-in suite (Gaussians in 1, 2, 10, 50 dims, the NCSN mixture,
    /// two bananas, a Student-t and the half-normal boundary case). Writes OUT and, beside it,
    /// the resolved config as <OUT without .csv>.config.toml.
    Equivalence {
        /// A TOML config with `seed`, `samples` and [[case]] tables (see docs/reference.md).
        #[arg(long, value_name = "FILE.toml")]
        config: Option<PathBuf>,
        /// Where to write the CSV.
        #[arg(
            long,
            value_name = "FILE.csv",
            default_value = "results/equivalence.csv"
        )]
        out: PathBuf,
        /// Overrides the config's seed (default 0).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Overrides the config's samples per case (default 200000).
        #[arg(long, value_name = "N")]
        samples: Option<usize>,
    },
    /// Train a score network (mlp, noise_conditional_mlp, energy_mlp, linear) by esm, ism, ssm,
    /// ssm_vr, dsm, dsm_multi or dsm_continuous; writes DIR/config.toml, loss.csv,
    /// model.safetensors (see docs/reference.md).
    ///
    /// Ctrl-C stops after the current step and saves everything; --resume continues.
    Train(train::TrainArgs),
    /// The Jacobian-cost table: median ms per training step (forward, loss, backward, Adam) for
    /// each objective and D, in the baselines' setting (see docs/reference.md).
    Cost(cost::CostArgs),
    /// A trained model's score at the points of a CSV (header x0..x{D-1}); writes s0..s{D-1}, in
    /// the data's own units.
    Score {
        /// A folder written by `scorelab train`.
        #[arg(long, value_name = "DIR")]
        model: PathBuf,
        /// Points, header x0,…,x{D-1}.
        #[arg(long, value_name = "IN.csv")]
        points: PathBuf,
        /// Where to write the scores.
        #[arg(long, value_name = "OUT.csv")]
        out: PathBuf,
        /// The noise level σ (in the model's units): required for a noise-conditional model, an
        /// error otherwise.
        #[arg(long, value_name = "S", allow_negative_numbers = true)]
        sigma: Option<f64>,
    },
    /// Run a sampler (langevin, mala, annealed_langevin, reverse_sde, pc, ancestral, ddim, heun,
    /// ode; schedules ve, vp, subvp, edm) on an analytic density's score or a trained model's;
    /// writes OUT (one row per chain, header x0..x{D-1}),
    /// <OUT>.config.toml, <OUT>.trace.csv and any snapshots <OUT>.step<K>.csv (see docs/reference.md).
    ///
    /// Ctrl-C stops after the current step, keeping the snapshots already written.
    Sample(sample::SampleArgs),
    /// Exact log-likelihoods through the probability-flow ODE (vp, subvp, ve, edm) of an analytic
    /// density's marginal scores or a noise-conditional network, with the exact divergence
    /// (structured or naive trace) or Hutchinson's; writes OUT (log_p,log_p_se,bits_per_dim,
    /// score_evals, one row per point) and <OUT>.config.toml (see docs/reference.md).
    ///
    /// Ctrl-C stops after the current batch, writing the rows finished.
    Likelihood(likelihood::LikelihoodArgs),
    /// Run one of the paper's experiments (paper/experiments/*.toml): writes RESULTS/NAME.csv,
    /// NAME_summary.csv and NAME.config.toml (see docs/reference.md).
    Experiment {
        #[command(flatten)]
        file: experiments::ExperimentArgs,
        /// Run only the units of shard K of N (into DIR/shards/NAME/K-of-N/, resuming there);
        /// `scorelab gather` then writes the files a whole run writes.
        #[arg(long, value_name = "K/N")]
        shard: Option<scorelab_studies::study::Shard>,
    },
    /// Merges the N shards of an experiment (`experiment --shard K/N`, K = 1…N) into exactly the
    /// files a whole run writes, and removes the shard folders.
    Gather {
        /// The experiment the shards ran (the same --config, --results and --quick).
        #[command(flatten)]
        file: experiments::ExperimentArgs,
        /// The number of shards (N of --shard K/N).
        #[arg(long, value_name = "N")]
        shards: usize,
    },
    /// Run every experiment of the paper, then draw every figure: writes results/ and
    /// paper/figures/ (or DIR/results and DIR/figures). Run it from the repository root.
    ///
    /// Ctrl-C stops after the current unit of work; the steps already finished are kept.
    Reproduce {
        /// Every experiment and figure at reduced size (a few minutes): a smoke test.
        #[arg(long)]
        quick: bool,
        /// Write into DIR/results and DIR/figures instead of the repository's folders.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Run only shard K of N of stage --stage: its whole steps and its units of every
        /// experiment of the stage (see docs/reference.md and scripts/slurm/).
        #[arg(
            long,
            value_name = "K/N",
            requires = "stage",
            conflicts_with = "gather"
        )]
        shard: Option<scorelab_studies::study::Shard>,
        /// Gather the N shards of stage --stage; after the last stage, draw the figures and
        /// write the paper.
        #[arg(long, value_name = "N", requires = "stage")]
        gather: Option<usize>,
        /// The stage of a sharded reproduce (1 or 2: stage 2's experiments use stage 1's results).
        #[arg(long, value_name = "S")]
        stage: Option<usize>,
    },
    /// Write paper/paper.md from paper/paper.template.md: every {{name}} in the template is a
    /// number or table computed from the CSVs in RESULTS.
    Paper {
        /// The results folder.
        #[arg(long, value_name = "DIR", default_value = "results")]
        results: PathBuf,
        /// The template.
        #[arg(
            long,
            value_name = "FILE.md",
            default_value = "paper/paper.template.md"
        )]
        template: PathBuf,
        /// The paper.
        #[arg(long, value_name = "FILE.md", default_value = "paper/paper.md")]
        out: PathBuf,
        /// Also rewrite the generated blocks of this README (each between its NAME:start and
        /// NAME:end markers) from paper/readme.template.md.
        #[arg(long, value_name = "README.md")]
        readme: Option<PathBuf>,
    },
    /// Draw every figure of the paper (SVG and PNG) from the CSVs in RESULTS into FIGURES.
    ///
    /// A figure whose inputs are missing is skipped with the command that makes them, and the
    /// exit status is then 1.
    Figures {
        /// The results folder.
        #[arg(long, value_name = "DIR", default_value = "results")]
        results: PathBuf,
        /// The figures folder.
        #[arg(long, value_name = "DIR", default_value = "paper/figures")]
        figures: PathBuf,
    },
    /// Sample-quality metrics of a samples CSV against a density (MMD², KSD, sliced W2, mode
    /// weights) or a reference sample (MMD², sliced W2); one row per metric:
    /// metric,value,se,p_value,target.
    Eval(evaluate::EvalArgs),
}

fn cost_cmd(args: cost::CostArgs) -> Result<()> {
    let (dims, batch, width, out) = (args.dims, args.batch, args.width, args.out);
    let ids = args.objectives.unwrap_or_else(|| {
        scorelab_pipeline::cost::OBJECTIVES
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let rows = cost::run(&ids, &dims, batch, width, args.steps, &out)?;
    let mut table = scorelab::markdown_table();
    let mut header = vec!["objective".to_string()];
    header.extend(dims.iter().map(|d| format!("D={d}")));
    table.set_header(header);
    for id in &ids {
        let mut line = vec![id.clone()];
        for &d in &dims {
            let r = rows
                .iter()
                .find(|r| &r.objective == id && r.dim == d)
                .expect("measured");
            line.push(format!("{:.2}", r.median_ms));
        }
        table.add_row(line);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "median ms per training step (batch {batch}, width {width}):\n{table}\nwrote {}",
        out.display()
    );
    Ok(())
}

fn sample_cmd(args: sample::SampleArgs) -> Result<()> {
    let stop = stop_flag();
    if sample::run(&args, &stop)? {
        std::process::exit(130);
    }
    Ok(())
}

fn likelihood_cmd(args: likelihood::LikelihoodArgs) -> Result<()> {
    let stop = stop_flag();
    if likelihood::run(&args, &stop)? {
        std::process::exit(130);
    }
    Ok(())
}

fn reproduce_cmd(args: scorelab::reproduce::ReproduceArgs) -> Result<()> {
    let stop = stop_flag();
    let started = std::time::Instant::now();
    let quick = args.quick;
    let (reports, interrupted) = scorelab::reproduce::run(&args, &stop, |k, n, name| {
        eprintln!(
            "[{k}/{n}] {name} ({:.0} s so far)",
            started.elapsed().as_secs_f64()
        );
    })?;
    let mut table = scorelab::markdown_table();
    table.set_header(["step", "seconds", "wrote"]);
    for r in &reports {
        table.add_row([r.name.clone(), format!("{:.1}", r.seconds), r.wrote.clone()]);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{table}\n{} in {:.0} s{}",
        if quick {
            "reproduce --quick"
        } else {
            "reproduce"
        },
        started.elapsed().as_secs_f64(),
        if interrupted {
            " (interrupted: the steps above are complete)"
        } else {
            ""
        }
    );
    if interrupted {
        std::process::exit(130);
    }
    Ok(())
}

fn paper_cmd(
    results: &std::path::Path,
    template: &std::path::Path,
    out: &std::path::Path,
    readme: Option<&std::path::Path>,
) -> Result<()> {
    let input = |e: anyhow::Error| anyhow::Error::from(InputError(format!("{e:#}")));
    let readme_template = std::path::Path::new("paper/readme.template.md");
    let mut outputs = vec![("--out", out)];
    outputs.extend(readme.map(|r| ("--readme", r)));
    let mut inputs = vec![("--template", template)];
    if readme.is_some() {
        inputs.push(("the README template", readme_template));
    }
    scorelab_pipeline::files::check_distinct(&outputs, &inputs)?;
    // Everything is rendered (and every marker found) before anything is written.
    let paper = scorelab_figures::render_paper(results, template, true).map_err(input)?;
    let readme_text = match readme {
        Some(r) => {
            scorelab_figures::render_readme_blocks(results, readme_template, r).map_err(input)?
        }
        None => None,
    };
    scorelab_pipeline::files::write_whole(out, paper.as_bytes())?;
    println!("wrote {}", out.display());
    if let (Some(r), Some(text)) = (readme, readme_text) {
        scorelab_pipeline::files::write_whole(r, text.as_bytes())?;
        println!("updated the generated blocks of {}", r.display());
    } else if let Some(r) = readme {
        println!("the generated blocks of {} are up to date", r.display());
    }
    Ok(())
}

fn figures_cmd(results: PathBuf, figures: PathBuf) -> Result<()> {
    if !results.is_dir() {
        return Err(InputError(format!(
            "--results {}: not a folder; run `scorelab reproduce` (or the experiments) first",
            results.display()
        ))
        .into());
    }
    let _lock = scorelab_pipeline::files::FolderLock::acquire(&figures, "--figures")?;
    let report = scorelab_figures::draw_all(&results, &figures, |name| {
        eprintln!("drawing {name}");
    })?;
    let mut stdout = std::io::stdout().lock();
    for stem in &report.drawn {
        let _ = writeln!(stdout, "wrote {}.{{svg,png}}", stem.display());
    }
    if report.missing.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = report
        .missing
        .iter()
        .map(|(name, file, cmd)| format!("  {name}: needs {} (made by `{cmd}`)", file.display()))
        .collect();
    Err(anyhow::anyhow!(
        "{} figure(s) not drawn:\n{}",
        report.missing.len(),
        lines.join("\n")
    ))
}

fn experiment_cmd(
    args: experiments::ExperimentArgs,
    shard: Option<scorelab_studies::study::Shard>,
) -> Result<()> {
    let stop = stop_flag();
    let started = std::time::Instant::now();
    experiments::check(&args)?;
    if let Some(shard) = shard {
        // Shards run at once into their own folders: the results folder is not locked.
        let line = experiments::run_shard(&args, shard, &stop)?;
        let _ = writeln!(
            std::io::stdout().lock(),
            "{line} ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        return Ok(());
    }
    let _lock = scorelab_pipeline::files::FolderLock::acquire(&args.results, "--results")?;
    let summary = experiments::run(&args, &stop)?;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{summary}done in {:.0} s; wrote {}",
        started.elapsed().as_secs_f64(),
        args.results.display()
    );
    Ok(())
}

fn gather_cmd(args: experiments::ExperimentArgs, shards: usize) -> Result<()> {
    let _lock = scorelab_pipeline::files::FolderLock::acquire(&args.results, "--results")?;
    let summary = experiments::gather(&args, shards)?;
    let _ = writeln!(
        std::io::stdout().lock(),
        "{summary}gathered {shards} shard(s) into {}",
        args.results.display()
    );
    Ok(())
}

fn eval_cmd(args: evaluate::EvalArgs) -> Result<()> {
    let rows = evaluate::run(&args)?;
    let mut table = scorelab::markdown_table();
    table.set_header(["metric", "value", "se", "p_value", "target"]);
    let cell = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_default();
    for r in &rows {
        table.add_row([
            r.metric.clone(),
            format!("{:.4}", r.value),
            cell(r.se),
            cell(r.p_value),
            r.target.clone(),
        ]);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{table}\nwrote {}", args.out.display());
    Ok(())
}

fn train_cmd(args: train::TrainArgs) -> Result<()> {
    if let Some(n) = args.threads {
        if n == 0 {
            return Err(InputError("--threads: must be at least 1".into()).into());
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| InputError(format!("--threads: {e}")))?;
    }
    let stop = stop_flag();
    let out = &args.out;
    match train::run(&args, &stop)? {
        train::Outcome::Finished => {
            println!(
                "wrote {}/{{config.toml, loss.csv, model.safetensors}}",
                out.display()
            );
            Ok(())
        }
        train::Outcome::Interrupted(step) => {
            eprintln!(
                "interrupted: saved step {step} in {}; rerun with --resume to continue",
                out.display()
            );
            std::process::exit(130);
        }
    }
}

fn equivalence_cmd(
    config: Option<PathBuf>,
    out: PathBuf,
    seed: Option<u64>,
    samples: Option<usize>,
) -> Result<()> {
    if out.is_dir() {
        return Err(InputError(format!(
            "--out {}: is a folder; give a file name such as results/equivalence.csv",
            out.display()
        ))
        .into());
    }
    let mut cfg = match &config {
        Some(path) => EquivalenceConfig::from_file(path, seed)?,
        None => builtin(seed.unwrap_or(0), DEFAULT_SAMPLES),
    };
    if let Some(n) = samples {
        cfg.samples = n;
    }
    let config_written = scorelab_pipeline::files::beside(&out, ".config.toml");
    let inputs: Vec<(&str, &std::path::Path)> =
        config.iter().map(|c| ("--config", c.as_path())).collect();
    scorelab_pipeline::files::check_distinct(
        &[
            ("--out", out.as_path()),
            ("the config written beside --out", config_written.as_path()),
        ],
        &inputs,
    )?;
    let rows = equivalence::write(&cfg, config.as_deref(), &out)?;
    let config_out = scorelab_pipeline::files::beside(&out, ".config.toml");
    // The files are written; a closed stdout (`| head`) must not turn into a panic.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", equivalence::table(&rows));
    let _ = writeln!(
        stdout,
        "wrote {} and {}",
        out.display(),
        config_out.display()
    );
    Ok(())
}

/// dfdx allocates (and zeroes) a fresh buffer for every tensor op; the system allocator returns
/// large ones to the kernel and page-faults them back, which cost more than the arithmetic.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Equivalence {
            config,
            out,
            seed,
            samples,
        } => equivalence_cmd(config, out, seed, samples),
        Command::Train(args) => train_cmd(args),
        Command::Cost(args) => cost_cmd(args),
        Command::Score {
            model,
            points,
            out,
            sigma,
        } => score::run(&model, &points, &out, sigma),
        Command::Sample(args) => sample_cmd(args),
        Command::Likelihood(args) => likelihood_cmd(args),
        Command::Experiment { file, shard } => experiment_cmd(file, shard),
        Command::Gather { file, shards } => gather_cmd(file, shards),
        Command::Figures { results, figures } => figures_cmd(results, figures),
        Command::Paper {
            results,
            template,
            out,
            readme,
        } => paper_cmd(&results, &template, &out, readme.as_deref()),
        Command::Reproduce {
            quick,
            out,
            shard,
            gather,
            stage,
        } => reproduce_cmd(scorelab::reproduce::ReproduceArgs {
            quick,
            out,
            part: match (shard, gather, stage) {
                (Some(shard), _, Some(stage)) => scorelab::reproduce::Part::Shard(shard, stage),
                (None, Some(n), Some(stage)) => scorelab::reproduce::Part::Gather(n, stage),
                (None, None, None) => scorelab::reproduce::Part::Whole,
                _ => {
                    eprintln!("error: --stage: give it with --shard K/N or --gather N");
                    return ExitCode::from(2);
                }
            },
        }),
        Command::Eval(args) => eval_cmd(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if scorelab::is_interrupted(&e) => {
            eprintln!("interrupted: {e:#}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            if scorelab::is_input(&e) {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
