//! Claim coverage: every sentence of the paper's and the README's templates that compares a
//! rendered number carries a named check (`{{check:…}}` or `{{assert:…}}`), and no number of a
//! measurement or a setting is typed into the prose: it is rendered from `results/` (a value, a
//! check's numbers, or a setting as `{{cfg:EXPERIMENT:key}}`). The few numbers that are neither (a
//! target's definition, a data set's size, a software version, arithmetic) are listed in
//! [`TYPED`] with the words around them and the reason; an entry that no longer occurs fails the
//! test, so the list cannot outlive its text.

use std::path::Path;

/// Words that make a sentence a comparison (matched case-insensitively, outside `{{…}}`).
const COMPARING: &[&str] = &[
    "recover",
    "reach",
    "within",
    "faster",
    "slower",
    "better",
    "worse",
    "agree",
    "match",
    "beat",
    "below",
    "above",
    "at most",
    "at least",
    "×",
    "closer",
    "larger",
    "smaller",
    "lower than",
    "higher than",
    "exceed",
    "outperform",
    "tie",
    "lose",
    "loses",
    "than",
];

/// Numbers typed into the prose on purpose: (template, the number, words around it, why).
const TYPED: &[(&str, &str, &str, &str)] = &[
    // Definitions of the analytic targets (the truth every sampler is scored against).
    (
        "paper",
        "0.8",
        "p = 0.8 N((5,5), I)",
        "the NCSN mixture's definition",
    ),
    (
        "paper",
        "0.2",
        "+ 0.2 N((−5,−5), I)",
        "the NCSN mixture's definition",
    ),
    (
        "paper",
        "5,5",
        "N((5,5), I)",
        "the NCSN mixture's definition",
    ),
    (
        "paper",
        "5",
        "N((−5,−5), I)",
        "the NCSN mixture's definition",
    ),
    (
        "paper",
        "0.2",
        "(truth 0.2)",
        "the NCSN mixture's minority weight",
    ),
    (
        "paper",
        "5",
        "N((5, 5), I), plain",
        "the majority mode of the NCSN mixture",
    ),
    (
        "paper",
        "0.2",
        "minority weight 0.2;",
        "the NCSN mixture's minority weight",
    ),
    (
        "paper",
        "0.2",
        "towards 0.2 as",
        "the NCSN mixture's minority weight",
    ),
    (
        "paper",
        "0.2",
        "ODE returns 0.2.",
        "the NCSN mixture's minority weight",
    ),
    (
        "paper",
        "0.2",
        "end nearer 0.2",
        "the NCSN mixture's minority weight",
    ),
    (
        "paper",
        "4",
        "a 4-mode mixture",
        "the second target's definition",
    ),
    (
        "paper",
        "4",
        "the 4-mode mixture",
        "the second target's definition",
    ),
    // Arithmetic on those definitions.
    (
        "paper",
        "5",
        "5·0.8 − 5·0.2 = 3",
        "the mixture's mean, computed in the text",
    ),
    (
        "paper",
        "0.8",
        "5·0.8 − 5·0.2",
        "the mixture's mean, computed in the text",
    ),
    (
        "paper",
        "0.2",
        "− 5·0.2 = 3",
        "the mixture's mean, computed in the text",
    ),
    (
        "paper",
        "3",
        "= 3 in each",
        "the mixture's mean, computed in the text",
    ),
    (
        "paper",
        "0.5",
        "= 0.5 at σ",
        "1/(1 + σ²) at σ = 1, computed in the text",
    ),
    (
        "paper",
        "400",
        "400·3",
        "the largest σ̃ times the data's scale, computed in the text",
    ),
    (
        "paper",
        "3",
        "400·3",
        "the largest σ̃ times the data's scale, computed in the text",
    ),
    (
        "paper",
        "1e-4",
        "[1e-4, 400]",
        "the σ̃ range every sampler of §4.5 asks for",
    ),
    (
        "paper",
        "400",
        "[1e-4, 400]",
        "the σ̃ range every sampler of §4.5 asks for",
    ),
    // The data sets and their published facts.
    ("paper", "64", "64-D images", "the digits' dimension"),
    (
        "paper",
        "64",
        "64 features",
        "the classifier's feature layer, named by the digit metric",
    ),
    (
        "paper",
        "64",
        "64-feature MLP",
        "the classifier's feature layer, named by the digit metric",
    ),
    ("paper", "64", "64 dimensions", "the digits' dimension"),
    (
        "paper",
        "272",
        "272 eruptions",
        "the Old Faithful data set's size",
    ),
    ("paper", "1797", "1797 8×8", "the digits data set's size"),
    ("paper", "8", "8×8 images", "the digits' image size"),
    (
        "paper",
        "16",
        "Pixels /16",
        "the digits' 17 pixel levels 0…16",
    ),
    (
        "paper",
        "17",
        "17-level",
        "the digits' 17 pixel levels 0…16",
    ),
    (
        "paper",
        "8",
        "8-bit",
        "published image benchmarks' pixel depth",
    ),
    ("paper", "10", "log 10", "the digits' ten classes"),
    ("readme", "8", "8×8 handwritten", "the digits' image size"),
    (
        "readme",
        "64",
        "2 to 64",
        "the digits' dimension, the largest here",
    ),
    // Software versions.
    (
        "paper",
        "0.13",
        "dfdx 0.13",
        "the autodiff library's version",
    ),
    (
        "readme",
        "0.13",
        "0.13, which",
        "the autodiff library's version",
    ),
    ("paper", "0.10", "JAX 0.10", "the peer's version"),
    // The built-in audit and the cost benchmark's fixed design (their commands print it).
    (
        "paper",
        "50",
        "1–50 dimensions",
        "the built-in audit's Gaussians (`scorelab equivalence --help`)",
    ),
    (
        "paper",
        "64",
        "a 64-64 MLP trained by ISM",
        "the lock-step run's network (its config in results/models)",
    ),
    (
        "paper",
        "128",
        "D → 128 → 128 → D",
        "the cost benchmark's network, fixed in both benchmark programs",
    ),
    (
        "paper",
        "128",
        "batch 128",
        "the cost benchmark's batch, fixed in both benchmark programs",
    ),
    (
        "paper",
        "512",
        "to 512,",
        "the largest D of the cost benchmark",
    ),
    ("paper", "128", "D = 128 and", "a D of the cost benchmark"),
    (
        "paper",
        "512",
        "D = 512 (ranges",
        "the largest D of the cost benchmark",
    ),
    ("readme", "512", "2 … 512", "the cost benchmark's D range"),
    (
        "readme",
        "512",
        "D = 512 |",
        "the largest D of the cost benchmark",
    ),
    // Figures' own design.
    (
        "paper",
        "0.5",
        "(0.5, 1.5, 3 and 5",
        "the contour levels drawn",
    ),
    ("paper", "1.5", "0.5, 1.5, 3", "the contour levels drawn"),
    ("paper", "3", "1.5, 3 and 5", "the contour levels drawn"),
    ("paper", "5", "3 and 5 nats", "the contour levels drawn"),
    (
        "paper",
        "512",
        "three hidden layers of 512",
        "the committed best network's width",
    ),
];

/// The prose of a template: comments, headings, images and the reference list removed.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("<!--") {
        out.push_str(&rest[..i]);
        rest = rest[i..].find("-->").map_or("", |j| &rest[i + j + 3..]);
    }
    out.push_str(rest);
    let body = out
        .split("## 7. References")
        .next()
        .unwrap_or("")
        .to_string();
    body.lines()
        .map(|l| {
            if l.starts_with('#') || l.starts_with("![") || l.starts_with("| ---") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The units a claim lives in: table rows, list items and sentences of paragraphs.
fn units(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = vec![];
    let mut cur = String::new();
    let flush = |cur: &mut String, blocks: &mut Vec<String>| {
        if !cur.trim().is_empty() {
            blocks.push(std::mem::take(cur));
        }
        cur.clear();
    };
    for line in text.lines() {
        let t = line.trim_start();
        let item = t.starts_with("- ")
            || t.split_once(". ")
                .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if line.trim().is_empty() || t.starts_with('|') || item {
            flush(&mut cur, &mut blocks);
        }
        if t.starts_with('|') {
            blocks.push(t.to_string());
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    flush(&mut cur, &mut blocks);
    // Sentences: a full stop followed by white space and a capital, `(`, `*` or `{`, except
    // after an abbreviation.
    let mut out = vec![];
    for b in blocks {
        let chars: Vec<char> = b.chars().collect();
        let mut start = 0;
        for i in 0..chars.len() {
            if chars[i] != '.' || i + 2 >= chars.len() || !chars[i + 1].is_whitespace() {
                continue;
            }
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            let before: String = chars[start..i].iter().collect();
            let word = before
                .rsplit(|c: char| c.is_whitespace() || c == '(')
                .next()
                .unwrap_or("");
            let abbreviation = ["e.g", "i.e", "al", "Fig", "App", "eq", "cf", "vs"].contains(&word);
            if !abbreviation
                && next.is_some_and(|c| c.is_uppercase() || matches!(c, '(' | '*' | '{' | '`'))
            {
                out.push(chars[start..=i].iter().collect());
                start = i + 1;
            }
        }
        out.push(chars[start..].iter().collect());
    }
    out.into_iter()
        .filter(|u: &String| !u.trim().is_empty())
        .collect()
}

/// Whether `text` contains `word` starting and ending at word boundaries (for a word that begins
/// or ends with a letter); `reach` matches "reaches", not "overreach".
fn contains_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let starts_alpha = word.chars().next().is_some_and(char::is_alphabetic);
        !(starts_alpha && before.is_some_and(char::is_alphabetic))
    })
}

/// The names rendered in a unit (`{{name}}`).
fn names(unit: &str) -> Vec<String> {
    let mut out = vec![];
    let mut rest = unit;
    while let Some(i) = rest.find("{{") {
        let Some(j) = rest[i..].find("}}") else { break };
        out.push(rest[i + 2..i + j].trim().to_string());
        rest = &rest[i + j + 2..];
    }
    out
}

/// A unit with its `{{…}}`, code spans and link targets removed.
fn bare(unit: &str) -> String {
    let mut s = String::new();
    let mut depth = 0;
    let mut code = false;
    let chars: Vec<char> = unit.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if !code && chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
            depth += 1;
            i += 2;
            s.push(' ');
            continue;
        }
        if depth > 0 && chars[i] == '}' && chars.get(i + 1) == Some(&'}') {
            depth -= 1;
            i += 2;
            continue;
        }
        if depth == 0 && chars[i] == '`' {
            code = !code;
            i += 1;
            continue;
        }
        if depth == 0 && !code {
            // A link target: `](…)`.
            if chars[i] == ']' && chars.get(i + 1) == Some(&'(') {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                continue;
            }
            s.push(chars[i]);
        }
        i += 1;
    }
    s
}

/// The numbers typed into a bare unit, each with the unit's text: digits (with inner `.` or
/// `,` between digits, or an exponent `e-4`) that are not part of a word, other than 0, 1 and 2
/// (arithmetic), a year, a list marker or a reference to a section, figure, appendix, algorithm
/// or equation.
fn typed_numbers(unit: &str) -> Vec<String> {
    let chars: Vec<char> = unit.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || (matches!(chars[i], '.' | ',')
                    && chars.get(i + 1).is_some_and(char::is_ascii_digit))
                || (chars[i] == 'e'
                    && chars.get(i + 1) == Some(&'-')
                    && chars.get(i + 2).is_some_and(char::is_ascii_digit))
                || (chars[i] == '-' && i > 0 && chars[i - 1] == 'e'))
        {
            i += 1;
        }
        let token: String = chars[start..i].iter().collect();
        let word_before = start > 0
            && (chars[start - 1].is_alphabetic() || matches!(chars[start - 1], '_' | '.' | '§'));
        let word_after = chars.get(i).is_some_and(|c| c.is_alphabetic() || *c == '_');
        let prefix: String = chars[start.saturating_sub(12)..start].iter().collect();
        let reference = ["Figure ", "App. ", "Algorithm ", "eq. ", "Table ", "§"]
            .iter()
            .any(|r| prefix.ends_with(r))
            || prefix.rsplit(' ').next().is_some_and(|w| w.contains('§'));
        let year = token.len() == 4 && (token.starts_with("19") || token.starts_with("20"));
        let marker = prefix.trim().is_empty() && chars.get(i) == Some(&'.');
        let arithmetic = ["0", "1", "2"].contains(&token.as_str());
        if !(word_before || word_after || reference || year || marker || arithmetic) {
            out.push(token);
        }
    }
    out
}

fn template(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../paper");
    std::fs::read_to_string(root.join(format!("{name}.template.md"))).unwrap()
}

/// Every comparing sentence that renders a number carries a check.
#[test]
fn every_comparing_sentence_carries_a_check() {
    let mut bad = vec![];
    for t in ["paper", "readme"] {
        for u in units(&prose(&template(t))) {
            let rendered = names(&u);
            // A unit that renders only settings (`cfg:`) compares settings, not measurements.
            let states = rendered
                .iter()
                .any(|n| !n.starts_with("table_") && !n.starts_with("cfg:"));
            let checked = rendered
                .iter()
                .any(|n| n.starts_with("check:") || n.starts_with("assert:"));
            let text = bare(&u).to_lowercase();
            let compares = COMPARING.iter().find(|w| contains_word(&text, w));
            if let (true, false, Some(w)) = (states, checked, compares) {
                bad.push(format!("{t}: “{w}” in: {}", u.trim().replace('\n', " ")));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} comparing sentences carry no {{{{check:…}}}} or {{{{assert:…}}}}:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// No number is typed into the prose but those of [`TYPED`], each where it says.
#[test]
fn no_number_is_typed_into_the_prose() {
    let mut bad = vec![];
    let mut used = vec![false; TYPED.len()];
    for t in ["paper", "readme"] {
        for u in units(&prose(&template(t))) {
            let b = bare(&u);
            let flat = b.split_whitespace().collect::<Vec<_>>().join(" ");
            for n in typed_numbers(&b) {
                let mut found = false;
                for (k, e) in TYPED.iter().enumerate() {
                    if e.0 == t && e.1 == n && flat.contains(e.2) {
                        used[k] = true;
                        found = true;
                    }
                }
                if !found {
                    bad.push(format!("{t}: {n} in: {flat}"));
                }
            }
        }
    }
    let stale: Vec<String> = TYPED
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(e, _)| format!("{}: {} in “{}”", e.0, e.1, e.2))
        .collect();
    assert!(
        bad.is_empty() && stale.is_empty(),
        "numbers typed into the prose (render them from results/, e.g. {{{{cfg:EXPERIMENT:key}}}}):\n{}\n\nallowed entries that no longer occur:\n{}",
        bad.join("\n"),
        stale.join("\n")
    );
}

/// The detectors themselves: a comparison without a check is found, a check silences it, and
/// only numbers outside `{{…}}`, words and references count as typed.
#[test]
fn the_detectors_find_what_they_should() {
    let u = units("Ours reaches {{x}}. It is fine.\n\nOurs beats {{y}} ({{check:z}}).\n| row | {{v}} below |\n");
    assert_eq!(u.len(), 4, "{u:?}");
    assert_eq!(names(&u[0]), vec!["x"]);
    assert!(bare(&u[2]).contains("beats") && !bare(&u[2]).contains('y'));
    assert_eq!(
        typed_numbers("took 9 s at {{n}} steps, rk45, §4.2, Figure 3, (2019), 0.5× and 1e-4"),
        vec!["9", "0.5", "1e-4"]
    );
}
