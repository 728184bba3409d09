//! The paper's values and checks of the solver study (`results/solvers_*.csv`, written by
//! `scorelab experiment --config paper/experiments/solvers.toml`).

use crate::checks::{edit, Check, Outcome};
use crate::paper::sig;
use crate::table::Table;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// The budget at which the paper reads Euler ancestral's log-p gap.
const ANCESTRAL_AT: f64 = 16.0;

/// The deterministic samplers in the paper's order, with the names the tables give them.
const DETERMINISTIC: &[(&str, &str)] = &[
    ("ddim", "DDIM"),
    ("heun", "Heun (EDM)"),
    ("dpm2", "DPM-Solver-2"),
    ("dpmpp_2m", "DPM-Solver++(2M)"),
    ("dpmpp_3m", "DPM-Solver++(3M)"),
    ("unipc", "UniPC (bh2)"),
];

/// The samplers whose measured order on the Gaussian is held to their nominal order (3M is
/// reported beside them: its warm-up keeps it at order 2, module docs of the samplers' solver).
const HELD_TO_ORDER: &[&str] = &["ddim", "heun", "dpm2", "dpmpp_2m", "unipc"];

/// The grid a sampler runs on in the headline comparison: Karras's where it takes a grid, else
/// the schedule's own (EDM's is Karras's).
fn headline_grid(sampler: &str) -> &'static str {
    if matches!(sampler, "ddim" | "heun") {
        "schedule"
    } else {
        "karras"
    }
}

fn read(r: &Path, suffix: &str) -> Result<Table> {
    Table::read(&r.join(format!("solvers_{suffix}.csv")))
}

/// The cell `col` of the row of (target, schedule, sampler, grid) of `t`.
fn cell(
    t: &Table,
    target: &str,
    schedule: &str,
    sampler: &str,
    grid: &str,
    col: &str,
) -> Result<String> {
    let r = t
        .filter("target", target)?
        .filter("schedule", schedule)?
        .filter("sampler", sampler)?
        .filter("grid", grid)?;
    let c = t.col(col)?;
    r.rows
        .first()
        .map(|row| row[c].clone())
        .with_context(|| format!("solvers: no row {target}/{schedule}/{sampler}/{grid}"))
}

/// The measured order of a sampler on EDM's schedule and its headline grid.
fn order(orders: &Table, target: &str, sampler: &str) -> Result<f64> {
    Ok(cell(
        orders,
        target,
        "edm",
        sampler,
        headline_grid(sampler),
        "measured_order",
    )?
    .parse()
    .unwrap_or(f64::NAN))
}

/// The mean of `metric` over seeds for one run and start, along its sweep: (nfe, mean).
fn curve(
    s: &Table,
    target: &str,
    sampler: &str,
    start: &str,
    metric: &str,
) -> Result<Vec<(f64, f64)>> {
    let r = s
        .filter("target", target)?
        .filter("schedule", "edm")?
        .filter("sampler", sampler)?
        .filter("grid", headline_grid(sampler))?
        .filter("start", start)?
        .filter("metric", metric)?;
    Ok(r.f64s("nfe")?.into_iter().zip(r.f64s("mean")?).collect())
}

/// The budget column name of a stated flow error.
fn flow_col(budgets: &Table, which: usize) -> Result<String> {
    budgets
        .header
        .iter()
        .filter(|h| h.starts_with("nfe_flow_error_"))
        .nth(which)
        .cloned()
        .context("solvers_budgets.csv: no nfe_flow_error_ column")
}

/// An empty budget cell reads "—" (not reached within the sweep).
fn budget_text(v: &str) -> String {
    if v.is_empty() {
        "—".into()
    } else {
        v.into()
    }
}

/// The paper's values of the solver study.
///
/// # Errors
/// If the study's files are missing or malformed.
pub fn values(r: &Path) -> Result<BTreeMap<String, String>> {
    let mut v = BTreeMap::new();
    let orders = read(r, "orders")?;
    let budgets = read(r, "budgets")?;
    let tol: f64 = crate::paper::config_value(r, "solvers:flow_tol")?.parse()?;
    v.insert("solvers_flow_tol".into(), format!("{tol:e}"));
    v.insert("solvers_ancestral_at".into(), ANCESTRAL_AT.to_string());
    let summary = read(r, "summary")?;
    let targets = orders.distinct("target")?;
    // Orders: one row per sampler, one column per target.
    let mut rows = vec![];
    for (s, name) in DETERMINISTIC {
        let nominal = cell(
            &orders,
            &targets[0],
            "edm",
            s,
            headline_grid(s),
            "nominal_order",
        )?;
        let mut row = vec![name.to_string(), nominal];
        for t in &targets {
            row.push(sig(order(&orders, t, s)?, 3));
        }
        rows.push(row);
    }
    let fit =
        |c: &str| -> Result<String> { cell(&orders, &targets[0], "edm", "dpmpp_2m", "karras", c) };
    v.insert("solvers_fit_from".into(), fit("from_nfe")?);
    v.insert("solvers_fit_to".into(), fit("to_nfe")?);
    let mut header = vec!["sampler", "nominal order"];
    let names: Vec<String> = targets.clone();
    header.extend(names.iter().map(String::as_str));
    v.insert(
        "table_solvers_orders".into(),
        crate::paper::md_table(&header, &rows),
    );
    // Budgets at each stated flow error, EDM and the headline grid.
    let (c1, c2) = (flow_col(&budgets, 0)?, flow_col(&budgets, 1)?);
    v.insert(
        "solvers_flow_error_1".into(),
        c1.trim_start_matches("nfe_flow_error_").into(),
    );
    v.insert(
        "solvers_flow_error_2".into(),
        c2.trim_start_matches("nfe_flow_error_").into(),
    );
    let mut rows = vec![];
    for (s, name) in DETERMINISTIC {
        let mut row = vec![name.to_string()];
        for t in &targets {
            let a = cell(&budgets, t, "edm", s, headline_grid(s), &c1)?;
            let b = cell(&budgets, t, "edm", s, headline_grid(s), &c2)?;
            row.push(format!("{} / {}", budget_text(&a), budget_text(&b)));
        }
        rows.push(row);
    }
    let mut header = vec!["sampler"];
    header.extend(names.iter().map(String::as_str));
    v.insert(
        "table_solvers_budgets".into(),
        crate::paper::md_table(&header, &rows),
    );
    // Grids and schedules: the budget at the first stated error of the two multistep solvers.
    let mut rows = vec![];
    for s in ["dpmpp_2m", "unipc"] {
        for g in ["karras", "log_snr", "uniform_t"] {
            let mut row = vec![format!("{s}, {g}")];
            for sch in ["vp", "edm", "linear"] {
                for t in &targets {
                    if t == "gaussian" || t == "ncsn" {
                        row.push(budget_text(&cell(&budgets, t, sch, s, g, &c1)?));
                    }
                }
            }
            rows.push(row);
        }
    }
    let mut row = vec!["heun, its schedule's grid".to_string()];
    for sch in ["vp", "edm", "linear"] {
        for t in ["gaussian", "ncsn"] {
            row.push(budget_text(&cell(
                &budgets, t, sch, "heun", "schedule", &c1,
            )?));
        }
    }
    rows.push(row);
    v.insert(
        "table_solvers_grids".into(),
        crate::paper::md_table(
            &[
                "solver, grid",
                "VP gaussian",
                "VP ncsn",
                "EDM gaussian",
                "EDM ncsn",
                "linear gaussian",
                "linear ncsn",
            ],
            &rows,
        ),
    );
    // The prior's mismatch: the exact flow's own output from each start, EDM.
    let mut rows = vec![];
    for t in targets.iter().filter(|t| t.as_str() != "gaussian") {
        let mut row = vec![t.clone()];
        for sch in ["vp", "edm", "linear"] {
            for start in ["prior", "exact"] {
                let r = summary
                    .filter("target", t)?
                    .filter("schedule", sch)?
                    .filter("sampler", "exact_flow")?
                    .filter("start", start)?
                    .filter("metric", "weight_error")?;
                row.push(sig(
                    *r.f64s("mean")?.first().context("no exact_flow row")?,
                    2,
                ));
            }
        }
        rows.push(row);
    }
    v.insert(
        "table_solvers_prior".into(),
        crate::paper::md_table(
            &[
                "target",
                "VP prior",
                "VP p_T",
                "EDM prior",
                "EDM p_T",
                "linear prior",
                "linear p_T",
            ],
            &rows,
        ),
    );
    Ok(v)
}

/// The checks of the solver study.
pub fn checks() -> Vec<Check> {
    vec![
        Check {
            name: "solver_orders_on_the_gaussian",
            claim: "on the anisotropic Gaussian (EDM schedule, Karras grid), the measured flow-map order of DDIM, Heun, DPM-Solver-2, DPM-Solver++(2M) and UniPC is its nominal order within 0.15, and DPM-Solver++(3M)'s is below 2.5 (its warm-up keeps it from order 3)",
            run: |r| {
                let o = read(r, "orders")?;
                let mut pass = true;
                let mut parts = vec![];
                for s in HELD_TO_ORDER {
                    let nominal: f64 = cell(&o, "gaussian", "edm", s, headline_grid(s), "nominal_order")?.parse()?;
                    let m = order(&o, "gaussian", s)?;
                    pass &= (m - nominal).abs() <= 0.15;
                    parts.push(format!("{s} {} (nominal {nominal})", sig(m, 3)));
                }
                let m3 = order(&o, "gaussian", "dpmpp_3m")?;
                pass &= m3 < 2.5;
                parts.push(format!("and dpmpp_3m {} (nominal 3)", sig(m3, 3)));
                Ok(Outcome { pass, numbers: parts.join(", ") })
            },
            tamper: |r| edit(r, "solvers_orders.csv", &|c| c.text("target") == "gaussian" && c.text("schedule") == "edm" && c.text("sampler") == "unipc" && c.text("grid") == "karras", "measured_order", &|_| 2.5),
        },
        Check {
            name: "unipc_first_to_the_first_error",
            claim: "on every target (EDM schedule, Karras grid), UniPC reaches the first stated flow-map error at a budget of the sweep no later than DDIM, Heun, DPM-Solver-2 or DPM-Solver++(2M) (Heun's and DPM-Solver-2's counted budgets are one evaluation short of the sweep's on EDM's grid, whose last step to 0 takes one evaluation: one evaluation is allowed for it)",
            run: |r| {
                let b = read(r, "budgets")?;
                let c1 = flow_col(&b, 0)?;
                let mut pass = true;
                let mut parts = vec![];
                for t in b.distinct("target")? {
                    let n = |s: &str| -> Result<f64> {
                        let v = cell(&b, &t, "edm", s, headline_grid(s), &c1)?;
                        Ok(if v.is_empty() { f64::INFINITY } else { v.parse()? })
                    };
                    let u = n("unipc")?;
                    let others = ["ddim", "heun", "dpm2", "dpmpp_2m"]
                        .iter()
                        .map(|s| n(s))
                        .collect::<Result<Vec<f64>>>()?;
                    let best = others.iter().copied().fold(f64::INFINITY, f64::min);
                    pass &= u.is_finite() && u <= best + 1.0;
                    parts.push(format!("{t} {u} against {best}"));
                }
                Ok(Outcome { pass, numbers: parts.join(", ") })
            },
            tamper: |r| {
                let c1 = flow_col(&read(r, "budgets")?, 0)?;
                edit(r, "solvers_budgets.csv", &|c| c.text("target") == "ncsn" && c.text("schedule") == "edm" && c.text("sampler") == "unipc" && c.text("grid") == "karras", &c1, &|_| 1000.0)
            },
        },
        Check {
            name: "ddim_never_reaches_the_second_error",
            claim: "DDIM, first order, does not reach the second stated flow-map error within the sweep on any target or schedule",
            run: |r| {
                let b = read(r, "budgets")?.filter("sampler", "ddim")?;
                let c2 = flow_col(&b, 1)?;
                let cells = b.strings(&c2)?;
                let reached = cells.iter().filter(|v| !v.is_empty()).count();
                Ok(Outcome { pass: reached == 0 && !cells.is_empty(), numbers: format!("reached in {reached} of {} target × schedule pairs", cells.len()) })
            },
            tamper: |r| {
                let c2 = flow_col(&read(r, "budgets")?, 1)?;
                edit(r, "solvers_budgets.csv", &|c| c.text("sampler") == "ddim" && c.text("target") == "ncsn" && c.text("schedule") == "vp", &c2, &|_| 64.0)
            },
        },
        Check {
            name: "uniform_sigma_grids_fail_on_edm",
            claim: "on EDM's range σ̃ ∈ [0.002, 80], no solver on the grid uniform in t (= σ̃) reaches the first stated flow-map error within the sweep, on any target",
            run: |r| {
                let b = read(r, "budgets")?.filter("schedule", "edm")?.filter("grid", "uniform_t")?;
                let c1 = flow_col(&b, 0)?;
                let cells = b.strings(&c1)?;
                let reached = cells.iter().filter(|v| !v.is_empty()).count();
                Ok(Outcome { pass: reached == 0 && !cells.is_empty(), numbers: format!("reached by {reached} of {} solver × target pairs", cells.len()) })
            },
            tamper: |r| {
                let c1 = flow_col(&read(r, "budgets")?, 0)?;
                edit(r, "solvers_budgets.csv", &|c| c.text("schedule") == "edm" && c.text("grid") == "uniform_t" && c.text("sampler") == "unipc" && c.text("target") == "ncsn", &c1, &|_| 64.0)
            },
        },
        Check {
            name: "euler_ancestral_concentrates",
            claim: "at 16 evaluations (ANCESTRAL_AT; EDM, Karras grid, from the prior), Euler ancestral's samples have a higher mean exact log p than the exact flow's outputs of the same starts on every target: they are concentrated, not spread",
            run: |r| {
                let s = read(r, "summary")?;
                let mut pass = true;
                let mut parts = vec![];
                for t in s.distinct("target")? {
                    let c = curve(&s, &t, "euler_ancestral", "prior", "log_p_gap")?;
                    let at = c.iter().find(|q| (q.0 - ANCESTRAL_AT).abs() < 0.5).map(|q| q.1).unwrap_or(f64::NAN);
                    pass &= at > 0.0;
                    parts.push(format!("{t} {}", sig(at, 2)));
                }
                Ok(Outcome { pass, numbers: format!("{} nats", parts.join(", ")) })
            },
            tamper: |r| edit(r, "solvers_summary.csv", &|c| c.text("sampler") == "euler_ancestral" && c.text("metric") == "log_p_gap" && c.text("target") == "four" && c.text("schedule") == "edm" && c.text("start") == "prior", "mean", &|_| -0.5),
        },
    ]
}
