//! The paper's figures, drawn with [plotters] only from the CSVs in a results folder.
//!
//! Every figure is written twice, as `NAME.svg` and `NAME.png`, into the figures folder; each is
//! staged to a temporary file and renamed, so an interrupted run never leaves half a figure. Text
//! is drawn with the bundled DejaVu Sans (`assets/DejaVuSans.ttf`, Bitstream Vera licence beside
//! it) through plotters' `ab_glyph` feature, so a bare machine with no fonts installed renders the
//! same PNGs.
//!
//! [`catalogue`] lists the figures with the result files each one reads; [`draw_all`] draws every
//! figure whose inputs exist and reports the others with the command that makes their inputs.
//!
//! ```
//! let names: Vec<&str> = scorelab_figures::catalogue().iter().map(|f| f.name).collect();
//! assert!(names.contains(&"equivalence"));
//! ```

pub mod checks;
pub mod cost;
mod figs;
pub mod guidance_study;
pub use figs::{curves_against, error_curves, Curve, CurvePanel};
pub mod paper;
pub mod paths_study;
mod plot;
pub mod solver_study;
pub mod table;

pub use table::Table;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// One figure: its name (file stem), the result files it reads, what it shows, how to make its
/// inputs, and the function that draws it.
pub struct Figure {
    /// The file stem: `NAME.svg` and `NAME.png`.
    pub name: &'static str,
    /// The files it reads, relative to the results folder.
    pub inputs: &'static [&'static str],
    /// One sentence saying what it shows (the paper's caption starts with it).
    pub caption: &'static str,
    /// The `scorelab` command that writes its inputs.
    pub made_by: &'static str,
    /// Draws it: `draw(results, stem)` writes `stem.svg` and `stem.png`.
    pub draw: fn(&Path, &Path) -> Result<()>,
}

/// Every figure of the paper, in the paper's order.
pub fn catalogue() -> Vec<Figure> {
    figs::catalogue()
}

/// What [`draw_all`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// The figures drawn (their stems).
    pub drawn: Vec<PathBuf>,
    /// The figures not drawn: name, the missing input, the command that makes it.
    pub missing: Vec<(String, PathBuf, String)>,
}

/// Draws every figure of [`catalogue`] whose inputs are in `results` into `figures` (created if
/// needed); `on_figure` is called with each name before it is drawn.
///
/// # Errors
/// If a present input cannot be read or a figure cannot be written.
pub fn draw_all(results: &Path, figures: &Path, mut on_figure: impl FnMut(&str)) -> Result<Report> {
    plot::register_font();
    std::fs::create_dir_all(figures)
        .with_context(|| format!("cannot create {}", figures.display()))?;
    let mut report = Report::default();
    for f in catalogue() {
        if let Some(m) = f
            .inputs
            .iter()
            .map(|i| results.join(i))
            .find(|p| !p.exists())
        {
            report
                .missing
                .push((f.name.to_string(), m, f.made_by.to_string()));
            continue;
        }
        on_figure(f.name);
        let stem = figures.join(f.name);
        (f.draw)(results, &stem).with_context(|| format!("figure {}", f.name))?;
        report.drawn.push(stem);
    }
    Ok(report)
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    scorelab_core::fsio::write_atomic(path, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The temporary PNG path of a figure (plotters picks the encoder from the extension).
fn tmp_png(stem: &Path) -> PathBuf {
    let name = stem.file_name().map(|n| n.to_string_lossy().to_string());
    stem.with_file_name(format!(".{}.tmp.png", name.unwrap_or_default()))
}

/// The paper rendered from `template` with the values of the CSVs in `results`
/// ([`paper::values`]), written nowhere (a caller renders the paper and the README's blocks, so
/// that every check has run, before it writes either); `strict` refuses a template whose checks
/// fail ([`checks`]), `false` marks them in place ([`paper::render_with`]). A comment that opens
/// the template (`<!-- … -->`, its note to editors) is left out.
///
/// # Errors
/// If the template cannot be read, names a value no file gives or (strict) a failing check.
pub fn render_paper(results: &Path, template: &Path, strict: bool) -> Result<String> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    let values = paper::values(results)?;
    paper::render_with(without_editor_note(&text), &values, strict)
        .with_context(|| format!("template {}", template.display()))
}

/// `text` without a comment that opens it (`<!-- … -->` and the line breaks after it): a
/// template's note to its editors.
///
/// ```
/// use scorelab_figures::without_editor_note;
/// assert_eq!(without_editor_note("<!-- edit me -->\n\n# Title\n"), "# Title\n");
/// assert_eq!(without_editor_note("# Title <!-- kept -->\n"), "# Title <!-- kept -->\n");
/// ```
pub fn without_editor_note(text: &str) -> &str {
    match text.strip_prefix("<!--").and_then(|t| t.split_once("-->")) {
        Some((_, after)) => after.trim_start_matches('\n'),
        None => text,
    }
}

/// The line of the README template that opens its block `NAME`: `<!-- block:NAME -->`.
const BLOCK_OPEN: (&str, &str) = ("<!-- block:", " -->");

/// The blocks of a rendered README template, in order: `(NAME, text)` for each part that follows
/// a line `<!-- block:NAME -->`.
///
/// ```
/// use scorelab_figures::template_blocks;
/// let b = template_blocks("<!-- block:pitch -->\nHello.\n<!-- block:table -->\n| a |\n").unwrap();
/// assert_eq!(b, vec![("pitch".into(), "Hello.\n".into()), ("table".into(), "| a |\n".into())]);
/// assert!(template_blocks("text before any block\n").is_err());
/// ```
///
/// # Errors
/// If text other than blank lines comes before the first block, or a name repeats.
pub fn template_blocks(text: &str) -> Result<Vec<(String, String)>> {
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let name = line
            .trim_end()
            .strip_prefix(BLOCK_OPEN.0)
            .and_then(|l| l.strip_suffix(BLOCK_OPEN.1));
        match (name, blocks.last_mut()) {
            (Some(n), _) => {
                if blocks.iter().any(|(m, _)| m == n) {
                    anyhow::bail!("the README template opens block {n} twice");
                }
                blocks.push((n.to_string(), String::new()));
            }
            (None, Some((_, body))) => body.push_str(line),
            (None, None) if line.trim().is_empty() => {}
            (None, None) => anyhow::bail!(
                "the README template has text before its first {}NAME{} line",
                BLOCK_OPEN.0,
                BLOCK_OPEN.1
            ),
        }
    }
    Ok(blocks)
}

/// The markers around the README's generated block `name`.
pub fn readme_markers(name: &str) -> (String, String) {
    (
        format!("<!-- {name}:start -->"),
        format!("<!-- {name}:end -->"),
    )
}

/// `readme` with the text between the markers of each block ([`readme_markers`]) replaced by
/// that block's text.
///
/// ```
/// use scorelab_figures::replace_blocks;
/// let readme = "# T\n<!-- a:start -->\nold\n<!-- a:end -->\nrest\n";
/// let new = replace_blocks(readme, &[("a".into(), "new\n".into())]).unwrap();
/// assert_eq!(new, "# T\n<!-- a:start -->\nnew\n<!-- a:end -->\nrest\n");
/// assert!(replace_blocks(readme, &[("b".into(), "x\n".into())]).is_err());
/// ```
///
/// # Errors
/// If a block's markers are missing, repeated or out of order.
pub fn replace_blocks(readme: &str, blocks: &[(String, String)]) -> Result<String> {
    let mut out = readme.to_string();
    for (name, block) in blocks {
        let (a, b) = readme_markers(name);
        let (Some(i), Some(j)) = (out.find(&a), out.find(&b)) else {
            anyhow::bail!("the README has no {a} … {b} block");
        };
        if out.matches(&a).count() > 1 || out.matches(&b).count() > 1 {
            anyhow::bail!("the README has more than one {a} … {b} block");
        }
        if j < i {
            anyhow::bail!("the README's {b} comes before {a}");
        }
        out = format!("{}{a}\n{block}{}", &out[..i], &out[j..]);
    }
    Ok(out)
}

/// The README with every generated block rendered from `template` (see [`template_blocks`]) and
/// the values of `results`.
///
/// # Errors
/// As [`paper::render`], or if a block's markers are missing from `readme`.
pub fn render_readme(results: &Path, template: &str, readme: &str) -> Result<String> {
    let rendered = paper::render(template, &paper::values(results)?)?;
    replace_blocks(readme, &template_blocks(&rendered)?)
}

/// The README `readme` with its generated blocks rendered, or `None` if it would not change;
/// written nowhere, so that a caller can check everything before it writes anything.
///
/// # Errors
/// As [`render_paper`], or if the README lacks a block's markers.
pub fn render_readme_blocks(
    results: &Path,
    template: &Path,
    readme: &Path,
) -> Result<Option<String>> {
    let text = std::fs::read_to_string(template)
        .with_context(|| format!("cannot read {}", template.display()))?;
    let current = std::fs::read_to_string(readme)
        .with_context(|| format!("cannot read {}", readme.display()))?;
    let updated = render_readme(results, &text, &current)
        .with_context(|| format!("--readme {} from {}", readme.display(), template.display()))?;
    Ok((updated != current).then_some(updated))
}
