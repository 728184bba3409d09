//! The figures and the paper, drawn from the committed results.

use scorelab_figures::paper::{pm, render, sig, values};
use scorelab_figures::{catalogue, draw_all};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_figure_draws_from_the_committed_results_and_is_deterministic() {
    let results = repo().join("results");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let ra = draw_all(&results, a.path(), |_| {}).unwrap();
    assert!(ra.missing.is_empty(), "missing inputs: {:?}", ra.missing);
    assert_eq!(ra.drawn.len(), catalogue().len());
    draw_all(&results, b.path(), |_| {}).unwrap();
    for f in catalogue() {
        for ext in ["svg", "png"] {
            let name = format!("{}.{ext}", f.name);
            let x = std::fs::read(a.path().join(&name)).unwrap();
            let y = std::fs::read(b.path().join(&name)).unwrap();
            assert!(x.len() > 1000, "{name} is nearly empty");
            assert_eq!(x, y, "{name} differs between two draws");
        }
        // A PNG starts with its signature; an SVG with its root element.
        let png = std::fs::read(a.path().join(format!("{}.png", f.name))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(a.path().join(format!("{}.svg", f.name))).unwrap();
        assert!(svg.contains("<svg"));
    }
    // No temporary files are left behind.
    let left: Vec<_> = std::fs::read_dir(a.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_missing_input_is_reported_with_the_command_that_makes_it() {
    let empty = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let r = draw_all(empty.path(), out.path(), |_| {}).unwrap();
    assert!(r.drawn.is_empty());
    assert_eq!(r.missing.len(), catalogue().len());
    assert!(r
        .missing
        .iter()
        .all(|(_, _, cmd)| cmd.starts_with("scorelab ") || cmd.starts_with("bash scripts/")));
}

#[test]
fn the_committed_paper_is_the_template_rendered_with_the_committed_results() {
    let template = std::fs::read_to_string(repo().join("paper/paper.template.md")).unwrap();
    let v = values(&repo().join("results")).unwrap();
    let rendered = render(scorelab_figures::without_editor_note(&template), &v).unwrap();
    let committed = std::fs::read_to_string(repo().join("paper/paper.md")).unwrap();
    assert!(
        rendered == committed,
        "paper/paper.md is stale: run `cargo run --release -- paper`"
    );
    // Every figure of the catalogue is shown.
    for f in catalogue() {
        assert!(
            committed.contains(&format!("figures/{}.svg", f.name)),
            "paper.md does not show {}",
            f.name
        );
    }
}

#[test]
fn numbers_are_formatted_to_their_precision() {
    assert_eq!(sig(4.3203, 3), "4.32");
    assert_eq!(sig(-0.0123456, 2), "-0.012");
    assert_eq!(sig(128.4, 3), "128");
    assert_eq!(sig(2.5e-5, 2), "2.5e-5");
    assert_eq!(pm(-4.3203, 0.2636), "-4.32 ± 0.26");
    assert_eq!(pm(0.0023306, 0.00624), "0.0023 ± 0.0062");
    assert_eq!(pm(1.0, f64::NAN), "1.00");
}

#[test]
fn render_refuses_unknown_and_unclosed_names() {
    let v = std::collections::BTreeMap::new();
    let e = render("a {{nope}} b {{also}}", &v).unwrap_err().to_string();
    assert!(e.contains("nope") && e.contains("also"), "{e}");
    assert!(render("a {{open", &v).is_err());
}

#[test]
fn the_readme_blocks_are_rendered_from_the_committed_results() {
    let template = std::fs::read_to_string(repo().join("paper/readme.template.md")).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let updated =
        scorelab_figures::render_readme(&repo().join("results"), &template, &readme).unwrap();
    assert!(
        updated == readme,
        "README.md's generated blocks are stale: run `cargo run --release -- paper --readme README.md`"
    );
}

/// The README's prose up to its citation section, without its generated blocks and code: where a
/// measured number could be typed by hand.
fn readme_prose(readme: &str) -> String {
    let body = readme.split("## How to cite").next().unwrap_or(readme);
    let mut out = String::new();
    let (mut generated, mut code) = (false, false);
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("<!--") && t.ends_with(":start -->") {
            generated = true;
        } else if t.starts_with("<!--") && t.ends_with(":end -->") {
            generated = false;
        } else if t.starts_with("```") {
            code = !code;
        } else if !generated && !code {
            // Inline code is a command or a name, not a claim.
            let mut inline = false;
            for part in line.split('`') {
                if !inline {
                    out.push_str(part);
                }
                inline = !inline;
            }
            out.push('\n');
        }
    }
    out
}

#[test]
fn every_measured_number_in_the_readme_is_rendered() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let prose = readme_prose(&readme).replace("dfdx 0.13", "dfdx");
    // A decimal, a ratio or a percentage outside the generated blocks would be a number no check
    // backs.
    let chars: Vec<char> = prose.chars().collect();
    for (i, w) in chars.windows(3).enumerate() {
        let decimal = w[0].is_ascii_digit() && w[1] == '.' && w[2].is_ascii_digit();
        let ratio = w[0].is_ascii_digit() && (w[1] == '×' || w[1] == '%');
        if decimal || ratio {
            let at: String = chars[i.saturating_sub(40)..(i + 40).min(chars.len())]
                .iter()
                .collect();
            panic!("the README types a number outside its generated blocks: …{at}…");
        }
    }
    // The mechanism sees a typed number.
    let typed = "# T\n<!-- a:start -->\n2.5×\n<!-- a:end -->\nabout 1.4× faster\n";
    assert!(readme_prose(typed).contains("1.4×") && !readme_prose(typed).contains("2.5×"));
}
