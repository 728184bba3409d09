//! The [`Study`] trait and what drives it: an experiment lists its units of work, runs each one
//! into [`Tables`] of typed rows, and turns every unit's tables into its files. Because the units
//! are listed, any study runs whole ([`run_serial`]) or in shards ([`run_shard`], one folder per
//! shard, resumable unit by unit) that [`gather`] merges into exactly the files a whole run writes.
//!
//! ```
//! use scorelab_studies::study::{Context, Study, Table, Tables, Unit, run_serial};
//! use serde::Serialize;
//! use std::sync::atomic::AtomicBool;
//!
//! /// The squares of 1..=n, one unit per number.
//! struct Squares(u32);
//! #[derive(Serialize)]
//! struct Row { n: u32, square: u32 }
//!
//! impl Study for Squares {
//!     fn units(&self) -> Vec<Unit> { (1..=self.0).map(|n| Unit::new(format!("n{n}"))).collect() }
//!     fn run(&self, unit: &Unit, _: &Context) -> anyhow::Result<Tables> {
//!         let n: u32 = unit.id()[1..].parse()?;
//!         let mut t = Table::new("n,square");
//!         t.push(&Row { n, square: n * n })?;
//!         Ok(Tables::main(t))
//!     }
//!     fn finish(&self, done: Vec<Tables>) -> anyhow::Result<Tables> {
//!         Ok(Tables::main(Tables::concat(&done, "")?))
//!     }
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let stop = AtomicBool::new(false);
//! let out = run_serial(&Squares(3), &mut Context::new(dir.path(), &stop))?.expect("not stopped");
//! assert_eq!(out.get("").unwrap().to_csv(), "n,square\n1,1\n2,4\n3,9\n");
//! # Ok::<(), anyhow::Error>(())
//! ```

use anyhow::{bail, Context as _, Result};
use scorelab_pipeline::files::write_whole;
use scorelab_pipeline::train::TrainedModel;
use scorelab_pipeline::PipelineError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// One unit of a study's work (a seed of a case, a data set, a fit): what one shard job runs at
/// a time and what a resumed shard skips when it is done. Its id names it in files (letters,
/// digits, `_`, `-`, `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    id: String,
}

impl Unit {
    /// A unit named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Unit { id: id.into() }
    }

    /// Its name.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// One unit per seed, named `seedK`: the units of a study whose seeds are independent.
pub fn seed_units(seeds: &[u64]) -> Vec<Unit> {
    seeds
        .iter()
        .map(|s| Unit::new(format!("seed{s}")))
        .collect()
}

/// The seed of a unit of [`seed_units`], and its index among the seeds.
///
/// # Errors
/// An input error for a unit of another study.
pub fn seed_of(seeds: &[u64], unit: &Unit) -> Result<(usize, u64)> {
    seeds
        .iter()
        .enumerate()
        .find(|(_, s)| format!("seed{s}") == unit.id())
        .map(|(i, s)| (i, *s))
        .ok_or_else(|| {
            PipelineError::Input(format!("no unit {:?} in this experiment", unit.id())).into()
        })
}

/// The steps of each equal-time run (method → steps) from a setup's `budget` table
/// ([`scorelab_pipeline::train::equal_time_budgets`]); none without one.
///
/// # Errors
/// When the table does not parse.
pub fn budget_steps(setup: &Tables) -> Result<Vec<(String, u64)>> {
    #[derive(Deserialize)]
    struct Budget {
        method: String,
        steps: u64,
    }
    Ok(match setup.get("budget") {
        Some(b) => b
            .rows::<Budget>()?
            .into_iter()
            .map(|r| (r.method, r.steps))
            .collect(),
        None => vec![],
    })
}

/// A CSV table: a header and the rows pushed so far, each a `#[derive(Serialize)]` struct whose
/// fields are the header's columns in order. Numbers are written as Rust prints them (`{}`: the
/// shortest text that parses back to the same bits); use [`Num`] for an `f64` field.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Table {
    header: String,
    body: String,
}

impl Table {
    /// An empty table with this header (comma-separated column names, no newline).
    pub fn new(header: &str) -> Self {
        Table {
            header: header.to_string(),
            body: String::new(),
        }
    }

    /// Appends one row.
    ///
    /// # Errors
    /// When the row's fields do not match the header's columns.
    pub fn push<R: Serialize>(&mut self, row: &R) -> Result<()> {
        let mut w = csv::WriterBuilder::new()
            .has_headers(self.body.is_empty())
            .from_writer(vec![]);
        w.serialize(row)?;
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        let text = String::from_utf8(bytes)?;
        let line = if self.body.is_empty() {
            let (head, line) = text.split_once('\n').unwrap_or((&text, ""));
            if head != self.header {
                bail!(
                    "a row of table {:?} has the columns {head:?} (a programming error)",
                    self.header
                );
            }
            line.to_string()
        } else {
            text
        };
        self.body.push_str(&line);
        Ok(())
    }

    /// Appends one row of a table whose width is the data's (a label and a point's D
    /// coordinates, an image's pixels): its cells in the header's order, written by the same CSV
    /// writer as [`Table::push`]'s rows.
    ///
    /// # Errors
    /// When the number of cells is not the header's.
    pub fn push_cells<C: std::fmt::Display>(
        &mut self,
        cells: impl IntoIterator<Item = C>,
    ) -> Result<()> {
        let cells: Vec<String> = cells.into_iter().map(|c| c.to_string()).collect();
        let want = self.header.split(',').count();
        if cells.len() != want {
            bail!(
                "a row of table {:?} has {} cells, not {want} (a programming error)",
                self.header,
                cells.len()
            );
        }
        let mut w = csv::WriterBuilder::new().from_writer(vec![]);
        w.write_record(&cells)?;
        let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        self.body.push_str(&String::from_utf8(bytes)?);
        Ok(())
    }

    /// A table from CSV text: its first line is the header.
    pub fn from_csv(text: &str) -> Self {
        let (header, body) = text.split_once('\n').unwrap_or((text, ""));
        Table {
            header: header.to_string(),
            body: body.to_string(),
        }
    }

    /// The header (no newline).
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// The CSV text: the header, then every row.
    pub fn to_csv(&self) -> String {
        if self.header.is_empty() && self.body.is_empty() {
            return String::new();
        }
        format!("{}\n{}", self.header, self.body)
    }

    /// The rows read back as `R`.
    ///
    /// # Errors
    /// When a row does not parse as `R`.
    pub fn rows<R: serde::de::DeserializeOwned>(&self) -> Result<Vec<R>> {
        let text = self.to_csv();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        r.deserialize()
            .map(|row| row.map_err(anyhow::Error::from))
            .collect()
    }

    /// Appends `other`'s rows (its header must be this one's).
    ///
    /// # Errors
    /// When the headers differ.
    pub fn append(&mut self, other: &Table) -> Result<()> {
        if other.header != self.header {
            bail!(
                "tables with different columns ({:?} and {:?}) cannot be joined",
                self.header,
                other.header
            );
        }
        self.body.push_str(&other.body);
        Ok(())
    }
}

/// An `f64` cell written as Rust prints it (`{}`), read back to the same bits; `NaN` and `inf`
/// as `NaN` and `inf`.
///
/// ```
/// use scorelab_studies::study::Num;
/// assert_eq!(serde_json::to_string(&Num(0.1)).unwrap(), "\"0.1\"");
/// assert_eq!(serde_json::to_string(&Num(1.0)).unwrap(), "\"1\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map(Num)
            .map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}")))
    }
}

/// A row of a paired comparison (`NAME_paired.csv` of a density fit or an image likelihood): one
/// method's per-point differences from a reference on one seed's held-out points, their mean and
/// standard error ([`scorelab_core::stats::MeanSe`]).
#[derive(Debug, Serialize)]
pub struct PairedRow {
    /// The method.
    pub method: String,
    /// The reference it is compared with.
    pub reference: String,
    /// The seed (the split).
    pub seed: u64,
    /// Held-out points.
    pub n_test: usize,
    /// The mean of method − reference over the points.
    pub mean_difference: Num,
    /// Its standard error.
    pub se_difference: Num,
}

/// An `f64` cell in scientific notation (`{:e}`: `1.5e-6`), for errors that span many orders of
/// magnitude.
///
/// ```
/// use scorelab_studies::study::Sci;
/// assert_eq!(serde_json::to_string(&Sci(0.00015)).unwrap(), "\"1.5e-4\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sci(pub f64);

impl Serialize for Sci {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:e}", self.0))
    }
}

/// An `f64` cell with `P` decimals (`{:.P}`), for timings: seconds to the millisecond.
///
/// ```
/// use scorelab_studies::study::Fixed;
/// assert_eq!(serde_json::to_string(&Fixed::<3>(1.23456)).unwrap(), "\"1.235\"");
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fixed<const P: usize>(pub f64);

impl<const P: usize> Serialize for Fixed<P> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.*}", P, self.0))
    }
}

/// The tables of a unit or of a whole study, by name: `""` is the main table (`NAME.csv`),
/// `"summary"` is `NAME_summary.csv`, any other `x` is `NAME_x.csv`; a name starting with `.` is
/// carried between units, shards and [`Study::finish`] but never written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tables {
    tables: BTreeMap<String, Table>,
    /// Ctrl-C stopped the unit: its main table holds the rows finished before it.
    pub stopped: bool,
}

impl Tables {
    /// Tables holding only a main table.
    pub fn main(t: Table) -> Self {
        let mut s = Tables::default();
        s.insert("", t);
        s
    }

    /// Sets the table `name`.
    pub fn insert(&mut self, name: &str, t: Table) {
        self.tables.insert(name.to_string(), t);
    }

    /// The table `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Table> {
        self.tables.get(name)
    }

    /// The tables, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Table)> {
        self.tables.iter()
    }

    /// The table `name` of every unit that has one, joined in unit order.
    ///
    /// # Errors
    /// When no unit has it, or units give it different columns.
    pub fn concat(done: &[Tables], name: &str) -> Result<Table> {
        let mut parts = done.iter().filter_map(|t| t.get(name));
        let Some(first) = parts.next() else {
            bail!("no unit wrote the table {name:?}");
        };
        let mut out = first.clone();
        for t in parts {
            out.append(t)?;
        }
        Ok(out)
    }
}

/// What a unit may use while it runs: the folder it trains networks into, the networks trained
/// so far (shared by the units of one process), the stop flag (Ctrl-C, SIGTERM) and progress bars.
pub struct Context<'a> {
    models: PathBuf,
    stop: &'a AtomicBool,
    trained: Mutex<BTreeMap<String, TrainedModel>>,
    setup: Tables,
}

impl<'a> Context<'a> {
    /// A context training networks under `models`, stopped by `stop`.
    pub fn new(models: &Path, stop: &'a AtomicBool) -> Self {
        Context {
            models: models.to_path_buf(),
            stop,
            trained: Mutex::new(BTreeMap::new()),
            setup: Tables::default(),
        }
    }

    /// What [`Study::setup`] made: every unit of every shard sees the same.
    pub fn setup(&self) -> &Tables {
        &self.setup
    }

    /// The network `name` (in the folder `models/name`): trained by `train(folder)` the first
    /// time a unit of this process asks for it, from memory afterwards. Units of other shards
    /// train it again (deterministically: the same weights), and `gather` keeps one copy.
    ///
    /// # Errors
    /// `train`'s.
    pub fn model(
        &self,
        name: &str,
        train: impl FnOnce(&Path) -> Result<TrainedModel>,
    ) -> Result<TrainedModel> {
        let mut cache = self.trained.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = cache.get(name) {
            return Ok(m.clone());
        }
        let m = train(&self.models.join(name))?;
        cache.insert(name.to_string(), m.clone());
        Ok(m)
    }

    /// The folder networks are trained into (a unit uses a subfolder named after itself).
    pub fn models(&self) -> &Path {
        &self.models
    }

    /// The stop flag.
    pub fn stop(&self) -> &'a AtomicBool {
        self.stop
    }

    /// Whether Ctrl-C (or SIGTERM) asked to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// A progress bar on stderr with indicatif's `template` (hidden when stderr is not a
    /// terminal).
    pub fn bar(&self, len: u64, template: &str) -> indicatif::ProgressBar {
        let bar = indicatif::ProgressBar::new(len);
        bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
        bar
    }
}

/// An experiment as units of work: what `scorelab experiment` runs whole or in shards.
pub trait Study: Sync {
    /// Checks everything that can be checked before any work (keys, files, ranges); `run` may
    /// assume it passed.
    ///
    /// # Errors
    /// An input error naming the field.
    fn check(&self) -> Result<()> {
        Ok(())
    }

    /// Work done once before any unit, whose tables every unit sees ([`Context::setup`]) and which
    /// are written with the study's (e.g. equal-time budgets, measured once so that every seed
    /// and every shard uses the same). A sharded run does it once for all shards.
    ///
    /// # Errors
    /// As [`Study::run`].
    fn setup(&self, _cx: &Context) -> Result<Tables> {
        Ok(Tables::default())
    }

    /// The units, in the order a whole run does them. Their ids are distinct.
    fn units(&self) -> Vec<Unit>;

    /// Whether the units are small and independent enough to run one per core at once, each on
    /// one thread (a 2-D network's training step cannot keep two cores busy). Their results do
    /// not depend on it.
    fn parallel(&self) -> bool {
        false
    }

    /// Runs one unit. A unit stopped by Ctrl-C returns the rows it finished with
    /// [`Tables::stopped`] set.
    ///
    /// # Errors
    /// Bad input found only now, I/O, a diverging run.
    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables>;

    /// Every unit's tables, in unit order, into the study's tables (the main table, the summary,
    /// the extra files); the setup's tables are added to them.
    ///
    /// # Errors
    /// When the units' tables do not fit together.
    fn finish(&self, done: Vec<Tables>) -> Result<Tables>;
}

/// What a run of some units ended with.
pub enum Ran {
    /// Every unit finished; the study's tables.
    Done(Tables),
    /// Ctrl-C: the main table's rows finished before it.
    Stopped(Table),
}

impl Ran {
    /// The tables of a finished run, `None` when stopped.
    pub fn expect_done(self) -> Option<Tables> {
        match self {
            Ran::Done(t) => Some(t),
            Ran::Stopped(_) => None,
        }
    }
}

/// Runs `units` (index, unit), in order or, for a [`Study::parallel`] study, one per core at
/// once, each on a one-thread pool. The results are in the order given.
fn run_batch<S: Study + ?Sized>(
    study: &S,
    units: &[(usize, Unit)],
    cx: &Context,
    mut each: impl FnMut(usize, &Unit, Result<Tables>) -> Result<bool>,
) -> Result<()> {
    let workers = if study.parallel() {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    };
    for chunk in units.chunks(workers) {
        let results: Vec<Result<Tables>> = if workers == 1 {
            chunk.iter().map(|(_, u)| study.run(u, cx)).collect()
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(_, u)| {
                        scope.spawn(move || -> Result<Tables> {
                            let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
                            pool.install(|| study.run(u, cx))
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("a unit's thread panicked"))
                    .collect()
            })
        };
        for ((i, u), r) in chunk.iter().zip(results) {
            if !each(*i, u, r)? {
                return Ok(());
            }
        }
        if cx.stopped() {
            return Ok(());
        }
    }
    Ok(())
}

/// Runs every unit of `study` in order, then [`Study::finish`]: the study's tables, or `None`
/// when Ctrl-C stopped it ([`run_units`] keeps a stopped run's rows).
///
/// # Errors
/// The first unit's error.
pub fn run_serial<S: Study + ?Sized>(study: &S, cx: &mut Context) -> Result<Option<Tables>> {
    Ok(run_units(study, cx)?.expect_done())
}

/// [`run_serial`], keeping a stopped run's finished rows.
///
/// # Errors
/// The first unit's error.
pub fn run_units<S: Study + ?Sized>(study: &S, cx: &mut Context) -> Result<Ran> {
    cx.setup = study.setup(cx)?;
    let cx = &*cx;
    let units: Vec<(usize, Unit)> = study.units().into_iter().enumerate().collect();
    let bar = cx.bar(
        units.len() as u64,
        "{bar:30} {pos}/{len} units · {msg} · eta {eta}",
    );
    let mut done = vec![];
    let mut stopped = false;
    run_batch(study, &units, cx, |_, u, r| {
        let t = r?;
        stopped = t.stopped;
        done.push(t);
        bar.inc(1);
        bar.set_message(u.id().to_string());
        Ok(!stopped)
    })?;
    bar.finish_and_clear();
    if stopped || done.len() < units.len() {
        let mut rows: Option<Table> = None;
        for t in &done {
            if let Some(m) = t.get("") {
                match &mut rows {
                    None => rows = Some(m.clone()),
                    Some(r) => r.append(m)?,
                }
            }
        }
        return Ok(Ran::Stopped(rows.unwrap_or_default()));
    }
    Ok(Ran::Done(finish_with(study, &cx.setup, done)?))
}

/// [`Study::finish`] with the setup's tables added.
fn finish_with<S: Study + ?Sized>(study: &S, setup: &Tables, done: Vec<Tables>) -> Result<Tables> {
    let mut out = study.finish(done)?;
    for (name, t) in setup.iter() {
        out.tables.entry(name.clone()).or_insert_with(|| t.clone());
    }
    Ok(out)
}

/// Shard `k` of `n` (1 ≤ k ≤ n): it owns the units whose index i (from 0, in [`Study::units`]
/// order) has i mod n = k − 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 1.
    pub k: usize,
    /// The number of shards.
    pub n: usize,
}

impl Shard {
    /// Whether it owns unit `i`.
    pub fn owns(&self, i: usize) -> bool {
        i % self.n == self.k - 1
    }

    /// Its folder's name: `K-of-N`.
    pub fn folder(&self) -> String {
        format!("{}-of-{}", self.k, self.n)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("{s:?}: give K/N with 1 ≤ K ≤ N, e.g. 2/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (usize, usize) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        Ok(Shard { k, n })
    }
}

/// A shard's record of one finished unit (`units/INDEX.json` in its folder).
#[derive(Serialize, Deserialize)]
struct UnitFile {
    /// What the shard was run from: the experiment's config as run (without provenance).
    config: String,
    index: usize,
    id: String,
    tables: Tables,
}

/// The setup shared by the shards (`setup.json` beside their folders).
#[derive(Serialize, Deserialize)]
struct SetupFile {
    config: String,
    tables: Tables,
}

fn read_setup(path: &Path, config: &str) -> Result<Option<Tables>> {
    match std::fs::read(path) {
        Ok(b) => {
            let f: SetupFile = serde_json::from_slice(&b)
                .with_context(|| format!("{}: not a setup file of shards", path.display()))?;
            if f.config != config {
                return Err(PipelineError::Input(format!(
                    "{}: was written by a run of another config; remove its folder to rerun the shards",
                    path.display()
                ))
                .into());
            }
            Ok(Some(f.tables))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PipelineError::io(path, e).into()),
    }
}

/// The shards' setup at `path`: read if a shard made it, else made now and published by an
/// atomic create-if-absent (a hard link), so that shards starting at once on several machines
/// all use the first one's.
fn shared_setup<S: Study + ?Sized>(
    study: &S,
    config: &str,
    path: &Path,
    cx: &Context,
) -> Result<Tables> {
    if let Some(t) = read_setup(path, config)? {
        return Ok(t);
    }
    let tables = study.setup(cx)?;
    let text = serde_json::to_vec(&SetupFile {
        config: config.to_string(),
        tables,
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| PipelineError::io(dir, e))?;
    std::io::Write::write_all(&mut tmp, &text).map_err(|e| PipelineError::io(tmp.path(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| PipelineError::io(tmp.path(), e))?;
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(PipelineError::io(path, e).into()),
    }
    Ok(read_setup(path, config)?.expect("just written"))
}

fn unit_path(shard_dir: &Path, index: usize) -> PathBuf {
    shard_dir.join("units").join(format!("{index:05}.json"))
}

fn read_unit(path: &Path) -> Result<Option<UnitFile>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(serde_json::from_slice(&b).with_context(|| {
            format!(
                "{}: not a unit file of a shard (remove it to rerun the unit)",
                path.display()
            )
        })?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PipelineError::io(path, e).into()),
    }
}

/// What a shard run did.
#[derive(Debug, Default)]
pub struct ShardReport {
    /// Units run now.
    pub ran: Vec<String>,
    /// Units found finished by an earlier run of the same shard and config.
    pub kept: Vec<String>,
    /// Ctrl-C stopped it before every unit was done (each finished unit is kept).
    pub stopped: bool,
}

/// Runs the units `shard` owns into `shard_dir` (`units/INDEX.json` per finished unit, written
/// whole; networks under `cx`'s models folder), after the setup shared by every shard (read from
/// `setup`, or made there by the first shard to get to it). A unit whose file is there from an earlier run
/// with the same `config` is kept, so a killed or preempted shard resumes where it stopped; a
/// file from another config is refused.
///
/// # Errors
/// A unit's error; a unit file from another config.
pub fn run_shard<S: Study + ?Sized>(
    study: &S,
    config: &str,
    shard: Shard,
    shard_dir: &Path,
    setup: &Path,
    cx: &mut Context,
) -> Result<ShardReport> {
    cx.setup = shared_setup(study, config, setup, cx)?;
    let cx = &*cx;
    let mut report = ShardReport::default();
    let mut todo = vec![];
    for (i, unit) in study.units().into_iter().enumerate() {
        if !shard.owns(i) {
            continue;
        }
        let path = unit_path(shard_dir, i);
        if let Some(f) = read_unit(&path)? {
            if f.config != config || f.id != unit.id() {
                return Err(PipelineError::Input(format!(
                    "{}: was written by a run of another config (or unit); remove {} to rerun this shard",
                    path.display(),
                    shard_dir.display()
                ))
                .into());
            }
            report.kept.push(unit.id().to_string());
            continue;
        }
        todo.push((i, unit));
    }
    // Every unit finished is kept, also one finished beside a unit that was stopped.
    run_batch(study, &todo, cx, |i, unit, r| {
        let tables = r?;
        if tables.stopped {
            report.stopped = true;
            return Ok(true);
        }
        let f = UnitFile {
            config: config.to_string(),
            index: i,
            id: unit.id().to_string(),
            tables,
        };
        write_whole(&unit_path(shard_dir, i), &serde_json::to_vec(&f)?)?;
        report.ran.push(unit.id().to_string());
        Ok(true)
    })?;
    report.stopped |= report.ran.len() + report.kept.len()
        < study
            .units()
            .iter()
            .enumerate()
            .filter(|(i, _)| shard.owns(*i))
            .count();
    Ok(report)
}

/// The study's tables from the unit files of `n` shard folders (`shard_dir(k)` for k = 1..=n)
/// and their shared `setup`, exactly as [`run_serial`] makes them.
///
/// # Errors
/// A missing unit (naming its shard and the command that runs it), a unit of another config.
pub fn gather<S: Study + ?Sized>(
    study: &S,
    config: &str,
    n: usize,
    shard_dir: impl Fn(Shard) -> PathBuf,
    setup: &Path,
) -> Result<Tables> {
    let setup_tables = read_setup(setup, config)?.ok_or_else(|| {
        PipelineError::Input(format!(
            "{} is missing: no shard of this experiment has started; run the shards first",
            setup.display()
        ))
    })?;
    let mut done = vec![];
    for (i, unit) in study.units().iter().enumerate() {
        let shard = Shard { k: i % n + 1, n };
        let path = unit_path(&shard_dir(shard), i);
        let f = read_unit(&path)?.ok_or_else(|| {
            PipelineError::Input(format!(
                "unit {} ({}) of shard {}/{n} is not finished: {} is missing; run that shard (again) first",
                i,
                unit.id(),
                shard.k,
                path.display()
            ))
        })?;
        if f.config != config || f.id != unit.id() {
            return Err(PipelineError::Input(format!(
                "{}: was written by a run of another config; rerun shard {}/{n} with this one",
                path.display(),
                shard.k
            ))
            .into());
        }
        done.push(f.tables);
    }
    finish_with(study, &setup_tables, done)
}
