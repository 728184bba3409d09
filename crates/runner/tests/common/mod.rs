//! Helpers shared by the CLI tests: run the built `scorelab` binary in a folder.

use std::path::Path;
use std::process::{Command, Output};

/// Runs `scorelab ARGS` in `dir`.
pub fn scorelab(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorelab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

/// Asserts that the command succeeded, showing its stderr if not.
pub fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
