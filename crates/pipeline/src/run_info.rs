//! What a run records about itself and how it ends early: [`provenance`] (the commit, compiler,
//! CPU and threads written beside every result) and [`Interrupted`] (Ctrl-C or SIGTERM stopped
//! the work; the message says what was kept and where).
//!
//! ```
//! let t = scorelab_pipeline::run_info::provenance(2);
//! assert_eq!(t["threads"].as_integer(), Some(2));
//! assert!(t.contains_key("commit") && t.contains_key("rustc"));
//! ```

use thiserror::Error;

/// Ctrl-C or SIGTERM stopped the work: a command line exits 130. The message says what was kept
/// and where.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Whether `e` is (or wraps) an [`Interrupted`].
pub fn is_interrupted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if c.downcast_ref::<Interrupted>().is_some() {
            return true;
        }
        cur = c.source();
    }
    false
}

/// The commit (with `+dirty` when the code, experiment files, data or templates differ from it),
/// compiler, CPU and thread count of this run, as the `[run_info]` (or `[run]`) table of a result's
/// config.
pub fn provenance(threads: usize) -> toml::Table {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(c) => {
            // Dirty when what makes the results differs from the commit: the code, the
            // experiment files, the data and the templates; not the outputs a run (`reproduce`
            // among them) writes itself, which would mark every step after the first.
            let dirty = git(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":/",
                ":(exclude,top)results",
                ":(exclude,top)paper/figures",
                ":(exclude,top)paper/paper.md",
                ":(exclude,top)README.md",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut t = toml::Table::new();
    t.insert("commit".into(), commit.into());
    t.insert("rustc".into(), env!("SCORELAB_RUSTC_VERSION").into());
    t.insert("cpu".into(), cpu.into());
    t.insert("threads".into(), (threads as i64).into());
    t.insert("scorelab".into(), env!("CARGO_PKG_VERSION").into());
    t
}
