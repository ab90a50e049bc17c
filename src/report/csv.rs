//! The tidy CSV exports of a run, `measurements.csv` and `summary.csv`, and their readers.
//!
//! Both files are "tidy" (one observation per row, one variable per column), so that pandas
//! (`pd.read_csv`), R and spreadsheets read them without reshaping. They share the identifying
//! columns of a point:
//!
//! | column | meaning |
//! | --- | --- |
//! | `experiment` | manifest name |
//! | `study` | study label (its `name`, or its workload name) |
//! | `point_id` | stable point id: the record is `points/<point_id>.json`, its log `logs/<point_id>.txt` |
//! | `workload` | registry name, e.g. `gemm` |
//! | `variant` | implementation variant (empty when the workload has none) |
//! | `backend` | `rayon`, `mpi`, `cuda` or `debug` |
//! | `scaling` | `strong` or `weak` |
//! | `nodes`, `ranks`, `threads`, `gpus` | resources: nodes, MPI ranks in total, threads per rank, GPUs per rank |
//! | `size` | problem size, in `size_unit` (0 when the workload has no size) |
//! | `size_unit` | unit of `size`: `elements`, `n` (matrix order), `grid side`, `samples`, … |
//! | `param_<NAME>` | every other workload parameter, one column each: the union over the run, sorted by name; empty where a point's workload lacks it |
//!
//! `measurements.csv` adds, per timed repetition:
//!
//! | column | unit | meaning |
//! | --- | --- | --- |
//! | `repetition` | 1, 2, … | repetition number (warm-ups are not recorded) |
//! | `seconds` | s | wall time of the repetition |
//! | `flops` | FLOP | floating point operations of one repetition (analytic; an FMA counts 2) |
//! | `bytes` | B | bytes moved to and from memory by one repetition (analytic) |
//! | `gflops` | GFLOP/s | flops / seconds / 1e9; empty when flops is 0 |
//! | `gbps` | GB/s | bytes / seconds / 1e9 (decimal GB); empty when bytes is 0 |
//! | `verified` | true/false | the repetition's result matched the serial reference |
//! | `status` | | `ok`, `verify_failed`, `timeout`, `crashed` or `failed` (of the point) |
//! | `reason` | | why the point failed; empty when ok |
//!
//! A point that failed before timing anything has one row with empty `repetition`, `seconds`,
//! `gflops`, `gbps` and `verified`, and its status and reason.
//!
//! `summary.csv` adds, per point:
//!
//! | column | unit | meaning |
//! | --- | --- | --- |
//! | `workers` | | parallelism p = ranks × threads × max(gpus, 1) |
//! | `oversubscribed` | true/false | more workers than cores was allowed for this point |
//! | `status`, `reason` | | as above |
//! | `reps` | | timed repetitions recorded |
//! | `min_s`, `median_s`, `mean_s` | s | over the repetitions |
//! | `stddev_s` | s | sample standard deviation (0 with one repetition) |
//! | `ci95_low_s`, `ci95_high_s` | s | 95 % confidence interval of the mean (Student's t, n − 1 df) |
//! | `gflops`, `gbps` | GFLOP/s, GB/s | from the median time; empty when the work count is 0 |
//! | `speedup` | × | strong: T(p₀)·p₀/T(p); weak: Gustafson scaled speedup p·E (see [`super::scaling`]) |
//! | `efficiency` | ratio | strong: speedup / p; weak: T(p₀)/T(p); above 1 when superlinear |
//! | `karp_flatt` | ratio | Karp–Flatt serial fraction (strong scaling, p > 1); raw, also outside 0–1 |
//!
//! Both files then carry the machine's state while the point ran ([`LOAD_COLUMNS`], from the
//! record's `load`, see [`crate::load`]), the same on every row of a point, empty for a record
//! without it:
//!
//! | column | unit | meaning |
//! | --- | --- | --- |
//! | `disturbed` | true/false | [`crate::load::judge`]: other work used the point's cores, or steal > 5 % |
//! | `disturbed_why` | | why, in words; empty when not disturbed |
//! | `cores`, `cores_needed` | | cores sampled (the sampler's affinity); threads × ranks |
//! | `other_cores`, `point_cores` | cores | average cores kept busy by other work, by the point |
//! | `steal_share` | 0–1 | CPU time stolen by the hypervisor |
//! | `runnable_mean`, `runnable_max` | tasks | `procs_running` over the samples |
//! | `loadavg_1m` | | 1-minute load average at the end of the point |
//! | `clock_mhz` | MHz | mean current clock; empty where unknown |
//!
//! Statistics are empty for a point without repetitions; scaling columns are empty for failed
//! points and where undefined. Numbers are written in Rust's shortest round-trip form.
//!
//! Both files end with one `metric_<NAME>` column per extra measurement a workload records
//! ([`crate::results::Repetition::metrics`], e.g. `metric_latency_us`, `metric_comm_s`): the
//! union over the run, sorted by name, empty where a point lacks it. In `measurements.csv` it is
//! the repetition's value, in `summary.csv` the median over the point's repetitions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::scaling::Series;
use crate::files::write_atomic;
use crate::plan::Scaling;
use crate::results::{PointRecord, Status};
use crate::stats::Summary;

/// One row of `measurements.csv`: one timed repetition (or the single row of a point that failed
/// before timing anything). See the module documentation for the columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementRow {
    pub experiment: String,
    pub study: String,
    pub point_id: String,
    pub workload: String,
    pub variant: String,
    pub backend: String,
    pub scaling: Scaling,
    pub nodes: u32,
    pub ranks: u32,
    pub threads: u32,
    pub gpus: u32,
    pub size: u64,
    pub size_unit: String,
    /// The `param_<NAME>` columns of this row that are not empty, keyed by NAME.
    #[serde(skip)]
    pub params: BTreeMap<String, String>,
    /// 1-based repetition number.
    pub repetition: Option<u32>,
    pub seconds: Option<f64>,
    pub flops: f64,
    pub bytes: f64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    pub verified: Option<bool>,
    pub status: Status,
    pub reason: String,
    /// The machine's state while the point ran ([`crate::load`]); every one is empty when the
    /// record holds none.
    pub disturbed: Option<bool>,
    pub disturbed_why: String,
    pub cores: Option<u32>,
    pub cores_needed: Option<u32>,
    pub other_cores: Option<f64>,
    pub point_cores: Option<f64>,
    pub steal_share: Option<f64>,
    pub runnable_mean: Option<f64>,
    pub runnable_max: Option<u32>,
    pub loadavg_1m: Option<f64>,
    pub clock_mhz: Option<f64>,
    /// The `metric_<NAME>` columns of this row that are not empty, keyed by NAME: the
    /// repetition's extra measurements ([`crate::results::Repetition::metrics`]).
    #[serde(skip)]
    pub metrics: BTreeMap<String, f64>,
}

/// One row of `summary.csv`: one point. See the module documentation for the columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub experiment: String,
    pub study: String,
    pub point_id: String,
    pub workload: String,
    pub variant: String,
    pub backend: String,
    pub scaling: Scaling,
    pub nodes: u32,
    pub ranks: u32,
    pub threads: u32,
    pub gpus: u32,
    pub size: u64,
    pub size_unit: String,
    /// The `param_<NAME>` columns of this row that are not empty, keyed by NAME.
    #[serde(skip)]
    pub params: BTreeMap<String, String>,
    pub workers: u64,
    pub oversubscribed: bool,
    pub status: Status,
    pub reason: String,
    pub reps: usize,
    pub min_s: Option<f64>,
    pub median_s: Option<f64>,
    pub mean_s: Option<f64>,
    pub stddev_s: Option<f64>,
    pub ci95_low_s: Option<f64>,
    pub ci95_high_s: Option<f64>,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    pub speedup: Option<f64>,
    pub efficiency: Option<f64>,
    pub karp_flatt: Option<f64>,
    /// The machine's state while the point ran ([`crate::load`]); every one is empty when the
    /// record holds none.
    pub disturbed: Option<bool>,
    pub disturbed_why: String,
    pub cores: Option<u32>,
    pub cores_needed: Option<u32>,
    pub other_cores: Option<f64>,
    pub point_cores: Option<f64>,
    pub steal_share: Option<f64>,
    pub runnable_mean: Option<f64>,
    pub runnable_max: Option<u32>,
    pub loadavg_1m: Option<f64>,
    pub clock_mhz: Option<f64>,
    /// The `metric_<NAME>` columns of this row that are not empty, keyed by NAME: the median of
    /// each metric over the repetitions that recorded it.
    #[serde(skip)]
    pub metrics: BTreeMap<String, f64>,
}

/// Columns before the `param_*` columns, shared by both files.
const IDENT_COLUMNS: [&str; 13] = [
    "experiment",
    "study",
    "point_id",
    "workload",
    "variant",
    "backend",
    "scaling",
    "nodes",
    "ranks",
    "threads",
    "gpus",
    "size",
    "size_unit",
];

/// The machine-state columns that end both files' tails (see [`crate::load`]).
pub const LOAD_COLUMNS: [&str; 11] = [
    "disturbed",
    "disturbed_why",
    "cores",
    "cores_needed",
    "other_cores",
    "point_cores",
    "steal_share",
    "runnable_mean",
    "runnable_max",
    "loadavg_1m",
    "clock_mhz",
];

/// Columns of `measurements.csv` after the `param_*` columns.
pub const MEASUREMENT_TAIL: [&str; 20] = [
    "repetition",
    "seconds",
    "flops",
    "bytes",
    "gflops",
    "gbps",
    "verified",
    "status",
    "reason",
    "disturbed",
    "disturbed_why",
    "cores",
    "cores_needed",
    "other_cores",
    "point_cores",
    "steal_share",
    "runnable_mean",
    "runnable_max",
    "loadavg_1m",
    "clock_mhz",
];

/// Columns of `summary.csv` after the `param_*` columns.
pub const SUMMARY_TAIL: [&str; 27] = [
    "workers",
    "oversubscribed",
    "status",
    "reason",
    "reps",
    "min_s",
    "median_s",
    "mean_s",
    "stddev_s",
    "ci95_low_s",
    "ci95_high_s",
    "gflops",
    "gbps",
    "speedup",
    "efficiency",
    "karp_flatt",
    "disturbed",
    "disturbed_why",
    "cores",
    "cores_needed",
    "other_cores",
    "point_cores",
    "steal_share",
    "runnable_mean",
    "runnable_max",
    "loadavg_1m",
    "clock_mhz",
];

/// The `param_<NAME>` values of a record: every workload parameter but `size` and `variant`,
/// which have their own columns.
fn param_columns(rec: &PointRecord) -> BTreeMap<String, String> {
    rec.point
        .params
        .0
        .iter()
        .filter(|(k, _)| k.as_str() != "size" && k.as_str() != "variant")
        .map(|(k, v)| (k.clone(), v.to_string()))
        .collect()
}

/// The machine-state fields of a row (`LOAD_COLUMNS`), from a record's load and its judgement.
macro_rules! load_fields {
    ($rec:expr) => {{
        let load = $rec.load.as_ref();
        let verdict = load.map(crate::load::judge);
        (
            verdict.as_ref().map(|v| v.disturbed),
            verdict.map(|v| v.why).unwrap_or_default(),
            load.map(|l| l.cores),
            load.map(|l| l.cores_needed),
            load.map(|l| l.other_cores),
            load.map(|l| l.point_cores),
            load.map(|l| l.steal_share),
            load.map(|l| l.runnable_mean),
            load.map(|l| l.runnable_max),
            load.map(|l| l.loadavg_1m),
            load.and_then(|l| l.clock_mhz),
        )
    }};
}

/// The `LOAD_COLUMNS` of a row, as text.
macro_rules! load_texts {
    ($r:expr) => {
        [
            opt($r.disturbed),
            $r.disturbed_why.clone(),
            opt($r.cores),
            opt($r.cores_needed),
            opt($r.other_cores),
            opt($r.point_cores),
            opt($r.steal_share),
            opt($r.runnable_mean),
            opt($r.runnable_max),
            opt($r.loadavg_1m),
            opt($r.clock_mhz),
        ]
    };
}

/// `work / seconds / 1e9`, or `None` when there is no work or no positive time.
pub fn rate(work: f64, seconds: f64) -> Option<f64> {
    (work > 0.0 && seconds > 0.0 && seconds.is_finite()).then(|| work / seconds / 1e9)
}

/// The rows of `measurements.csv` for `records`, in record order.
pub fn measurement_rows(experiment: &str, records: &[PointRecord]) -> Vec<MeasurementRow> {
    let mut rows = Vec::new();
    for rec in records {
        let params = param_columns(rec);
        let row = |repetition: Option<u32>,
                   seconds: Option<f64>,
                   verified: Option<bool>,
                   metrics: BTreeMap<String, f64>| {
            let (
                disturbed,
                disturbed_why,
                cores,
                cores_needed,
                other_cores,
                point_cores,
                steal_share,
                runnable_mean,
                runnable_max,
                loadavg_1m,
                clock_mhz,
            ) = load_fields!(rec);
            MeasurementRow {
                experiment: experiment.to_string(),
                study: rec.point.study_name.clone(),
                point_id: rec.point.id.clone(),
                workload: rec.point.workload.clone(),
                variant: rec.point.params.variant().to_string(),
                backend: rec.backend_name().to_string(),
                scaling: rec.point.scaling,
                nodes: rec.point.resources.nodes,
                ranks: rec.point.resources.ranks,
                threads: rec.point.resources.threads,
                gpus: rec.point.resources.gpus,
                size: rec.size,
                size_unit: rec.size_unit.clone(),
                params: params.clone(),
                repetition,
                seconds,
                flops: rec.work.flops,
                bytes: rec.work.bytes,
                gflops: seconds.and_then(|s| rate(rec.work.flops, s)),
                gbps: seconds.and_then(|s| rate(rec.work.bytes, s)),
                verified,
                status: rec.status,
                reason: rec.reason.clone(),
                disturbed,
                disturbed_why,
                cores,
                cores_needed,
                other_cores,
                point_cores,
                steal_share,
                runnable_mean,
                runnable_max,
                loadavg_1m,
                clock_mhz,
                metrics,
            }
        };
        if rec.repetitions.is_empty() {
            rows.push(row(None, None, None, BTreeMap::new()));
        }
        for (i, r) in rec.repetitions.iter().enumerate() {
            rows.push(row(
                Some(i as u32 + 1),
                Some(r.seconds),
                Some(r.verified),
                r.metrics.clone(),
            ));
        }
    }
    rows
}

/// The rows of `summary.csv` for `records`, in record order; scaling numbers come from `series`
/// (see [`super::scaling::series`]).
pub fn summary_rows(
    experiment: &str,
    records: &[PointRecord],
    series: &[Series<'_>],
) -> Vec<SummaryRow> {
    let mut scaling: BTreeMap<&str, (f64, f64, Option<f64>)> = BTreeMap::new();
    for s in series {
        for p in &s.points {
            scaling.insert(&p.record.point.id, (p.speedup, p.efficiency, p.karp_flatt));
        }
    }
    records
        .iter()
        .map(|rec| {
            let times: Vec<f64> = rec.repetitions.iter().map(|r| r.seconds).collect();
            let s = Summary::of(&times);
            let stat = |g: fn(&Summary) -> f64| s.as_ref().map(g);
            let median = s.map(|s| s.median);
            let sc = scaling.get(rec.point.id.as_str());
            let (
                disturbed,
                disturbed_why,
                cores,
                cores_needed,
                other_cores,
                point_cores,
                steal_share,
                runnable_mean,
                runnable_max,
                loadavg_1m,
                clock_mhz,
            ) = load_fields!(rec);
            SummaryRow {
                experiment: experiment.to_string(),
                study: rec.point.study_name.clone(),
                point_id: rec.point.id.clone(),
                workload: rec.point.workload.clone(),
                variant: rec.point.params.variant().to_string(),
                backend: rec.backend_name().to_string(),
                scaling: rec.point.scaling,
                nodes: rec.point.resources.nodes,
                ranks: rec.point.resources.ranks,
                threads: rec.point.resources.threads,
                gpus: rec.point.resources.gpus,
                size: rec.size,
                size_unit: rec.size_unit.clone(),
                params: param_columns(rec),
                workers: rec.point.resources.workers(),
                oversubscribed: rec.point.oversubscribed,
                status: rec.status,
                reason: rec.reason.clone(),
                reps: rec.repetitions.len(),
                min_s: stat(|s| s.min),
                median_s: median,
                mean_s: stat(|s| s.mean),
                stddev_s: stat(|s| s.stddev),
                ci95_low_s: stat(|s| s.ci95_low),
                ci95_high_s: stat(|s| s.ci95_high),
                gflops: median.and_then(|m| rate(rec.work.flops, m)),
                gbps: median.and_then(|m| rate(rec.work.bytes, m)),
                speedup: sc.map(|x| x.0),
                efficiency: sc.map(|x| x.1),
                karp_flatt: sc.and_then(|x| x.2),
                disturbed,
                disturbed_why,
                cores,
                cores_needed,
                other_cores,
                point_cores,
                steal_share,
                runnable_mean,
                runnable_max,
                loadavg_1m,
                clock_mhz,
                metrics: metric_medians(rec),
            }
        })
        .collect()
}

/// The median of every metric over the repetitions of `rec` that recorded it (finite values only).
pub fn metric_medians(rec: &PointRecord) -> BTreeMap<String, f64> {
    let mut values: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for r in &rec.repetitions {
        for (k, v) in &r.metrics {
            if v.is_finite() {
                values.entry(k.as_str()).or_default().push(*v);
            }
        }
    }
    values
        .into_iter()
        .filter_map(|(k, v)| Summary::of(&v).map(|s| (k.to_string(), s.median)))
        .collect()
}

/// The median of metric `name` over the repetitions of `rec`, if any recorded it.
pub fn metric_median(rec: &PointRecord, name: &str) -> Option<f64> {
    let v: Vec<f64> = rec
        .repetitions
        .iter()
        .filter_map(|r| r.metrics.get(name).copied())
        .filter(|v| v.is_finite())
        .collect();
    Summary::of(&v).map(|s| s.median)
}

fn num(x: f64) -> String {
    x.to_string()
}

fn opt<T: ToString>(x: Option<T>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// Common shape of both row types for writing and reading.
trait Row: DeserializeOwned {
    const TAIL: &'static [&'static str];
    fn ident_fields(&self) -> [String; 13];
    fn tail_fields(&self) -> Vec<String>;
    fn params(&self) -> &BTreeMap<String, String>;
    fn params_mut(&mut self) -> &mut BTreeMap<String, String>;
    fn metrics(&self) -> &BTreeMap<String, f64>;
    fn metrics_mut(&mut self) -> &mut BTreeMap<String, f64>;
}

macro_rules! ident_fields {
    ($r:expr) => {
        [
            $r.experiment.clone(),
            $r.study.clone(),
            $r.point_id.clone(),
            $r.workload.clone(),
            $r.variant.clone(),
            $r.backend.clone(),
            $r.scaling.as_str().to_string(),
            $r.nodes.to_string(),
            $r.ranks.to_string(),
            $r.threads.to_string(),
            $r.gpus.to_string(),
            $r.size.to_string(),
            $r.size_unit.clone(),
        ]
    };
}

impl Row for MeasurementRow {
    const TAIL: &'static [&'static str] = &MEASUREMENT_TAIL;
    fn ident_fields(&self) -> [String; 13] {
        ident_fields!(self)
    }
    fn tail_fields(&self) -> Vec<String> {
        let mut v = vec![
            opt(self.repetition),
            opt(self.seconds),
            num(self.flops),
            num(self.bytes),
            opt(self.gflops),
            opt(self.gbps),
            opt(self.verified),
            self.status.as_str().to_string(),
            self.reason.clone(),
        ];
        v.extend(load_texts!(self));
        v
    }
    fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.params
    }
    fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.metrics
    }
    fn metrics_mut(&mut self) -> &mut BTreeMap<String, f64> {
        &mut self.metrics
    }
}

impl Row for SummaryRow {
    const TAIL: &'static [&'static str] = &SUMMARY_TAIL;
    fn ident_fields(&self) -> [String; 13] {
        ident_fields!(self)
    }
    fn tail_fields(&self) -> Vec<String> {
        let mut v = vec![
            self.workers.to_string(),
            self.oversubscribed.to_string(),
            self.status.as_str().to_string(),
            self.reason.clone(),
            self.reps.to_string(),
            opt(self.min_s),
            opt(self.median_s),
            opt(self.mean_s),
            opt(self.stddev_s),
            opt(self.ci95_low_s),
            opt(self.ci95_high_s),
            opt(self.gflops),
            opt(self.gbps),
            opt(self.speedup),
            opt(self.efficiency),
            opt(self.karp_flatt),
        ];
        v.extend(load_texts!(self));
        v
    }
    fn params(&self) -> &BTreeMap<String, String> {
        &self.params
    }
    fn params_mut(&mut self) -> &mut BTreeMap<String, String> {
        &mut self.params
    }
    fn metrics(&self) -> &BTreeMap<String, f64> {
        &self.metrics
    }
    fn metrics_mut(&mut self) -> &mut BTreeMap<String, f64> {
        &mut self.metrics
    }
}

fn to_csv<R: Row>(rows: &[R]) -> Result<Vec<u8>> {
    let names: BTreeSet<&String> = rows.iter().flat_map(|r| r.params().keys()).collect();
    let metrics: BTreeSet<&String> = rows.iter().flat_map(|r| r.metrics().keys()).collect();
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let header: Vec<String> = IDENT_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(names.iter().map(|n| format!("param_{n}")))
        .chain(R::TAIL.iter().map(|c| c.to_string()))
        .chain(metrics.iter().map(|n| format!("metric_{n}")))
        .collect();
    w.write_record(&header)?;
    for row in rows {
        let fields = row
            .ident_fields()
            .into_iter()
            .chain(
                names
                    .iter()
                    .map(|n| row.params().get(*n).cloned().unwrap_or_default()),
            )
            .chain(row.tail_fields())
            .chain(
                metrics
                    .iter()
                    .map(|n| row.metrics().get(*n).map(|v| num(*v)).unwrap_or_default()),
            );
        w.write_record(fields)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Write `measurements.csv` (atomically).
pub fn write_measurements(path: &Path, rows: &[MeasurementRow]) -> Result<()> {
    write_atomic(path, &to_csv(rows)?)
}

/// Write `summary.csv` (atomically).
pub fn write_summary(path: &Path, rows: &[SummaryRow]) -> Result<()> {
    write_atomic(path, &to_csv(rows)?)
}

/// The error for a file that does not parse: file, line, what is wrong, and the fix.
fn corrupt(path: &Path, err: &::csv::Error) -> anyhow::Error {
    let line = err
        .position()
        .map(|p| format!(" line {}", p.line()))
        .unwrap_or_default();
    let run_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    anyhow::anyhow!(
        "{}{line} is corrupt ({err}); re-create it with `scalelab report {}`",
        path.display(),
        run_dir.display()
    )
}

fn read_rows<R: Row>(path: &Path) -> Result<Vec<R>> {
    let mut rdr = ::csv::ReaderBuilder::new()
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers = rdr.headers().map_err(|e| corrupt(path, &e))?.clone();
    let params: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("param_").map(|n| (i, n.to_string())))
        .collect();
    let metrics: Vec<(usize, String)> = headers
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.strip_prefix("metric_").map(|n| (i, n.to_string())))
        .collect();
    let mut rows = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(|e| corrupt(path, &e))?;
        let mut row: R = record
            .deserialize(Some(&headers))
            .map_err(|e| corrupt(path, &e))?;
        for (i, name) in &params {
            match record.get(*i) {
                Some(v) if !v.is_empty() => {
                    row.params_mut().insert(name.clone(), v.to_string());
                }
                _ => {}
            }
        }
        for (i, name) in &metrics {
            match record.get(*i) {
                Some(v) if !v.is_empty() => {
                    let x: f64 = v.parse().map_err(|_| {
                        anyhow::anyhow!(
                            "{} line {} is corrupt (column metric_{name}: {v:?} is not a number); re-create it with `scalelab report {}`",
                            path.display(),
                            record.position().map(|p| p.line()).unwrap_or(0),
                            path.parent()
                                .filter(|p| !p.as_os_str().is_empty())
                                .unwrap_or(Path::new("."))
                                .display()
                        )
                    })?;
                    row.metrics_mut().insert(name.clone(), x);
                }
                _ => {}
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Read `measurements.csv` back. A file that does not parse is an error naming the file and line
/// and saying how to re-create it.
pub fn read_measurements(path: &Path) -> Result<Vec<MeasurementRow>> {
    read_rows(path)
}

/// Read `summary.csv` back. A file that does not parse is an error naming the file and line and
/// saying how to re-create it.
pub fn read_summary(path: &Path) -> Result<Vec<SummaryRow>> {
    read_rows(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::scaling;
    use crate::report::test_support::{failed, record, with_param};

    fn records() -> Vec<PointRecord> {
        let mut v = vec![
            record(0, "gemm", Scaling::Strong, 1, 512, &[0.4, 0.41, 0.39]),
            record(0, "gemm", Scaling::Strong, 2, 512, &[0.2, 0.2, 0.21]),
            with_param(
                record(1, "stream.triad", Scaling::Weak, 1, 1000, &[1e-3]),
                "note",
                "a, \"quoted\" text",
            ),
        ];
        v.push(failed(
            0,
            "gemm",
            Scaling::Strong,
            4,
            512,
            "timed out after 60 s, killed\nsecond line",
        ));
        v
    }

    #[test]
    fn measurements_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("measurements.csv");
        let recs = records();
        let rows = measurement_rows("exp", &recs);
        assert_eq!(rows.len(), 3 + 3 + 1 + 1);
        write_measurements(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.starts_with("experiment,study,point_id,workload,variant,backend,scaling,nodes,")
        );
        assert!(header.contains("size_unit,param_note,repetition,seconds,flops,bytes,gflops,gbps,verified,status,reason"));
        let back = read_measurements(&path).unwrap();
        assert_eq!(back, rows);
        let fail = back.last().unwrap();
        assert_eq!(fail.status, Status::Timeout);
        assert_eq!(
            (fail.repetition, fail.seconds, fail.gflops),
            (None, None, None)
        );
        assert!(fail.reason.contains("second line"));
        assert_eq!(back[2].gflops, Some(2.0 * 512f64.powi(3) / 0.39 / 1e9));
        assert_eq!(back[6].params["note"], "a, \"quoted\" text");
        assert!(back[0].params.is_empty());
    }

    #[test]
    fn summary_round_trip_with_scaling_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        let recs = records();
        let series = scaling::series(&recs);
        let rows = summary_rows("exp", &recs, &series);
        assert_eq!(rows.len(), 4);
        write_summary(&path, &rows).unwrap();
        let back = read_summary(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[0].speedup, Some(1.0));
        assert_eq!(back[0].karp_flatt, None);
        assert_eq!(back[1].speedup, Some(2.0));
        assert_eq!(back[1].efficiency, Some(1.0));
        assert_eq!(back[1].karp_flatt, Some(0.0));
        assert_eq!(back[1].median_s, Some(0.2));
        assert_eq!(back[2].speedup, Some(1.0), "weak base");
        assert!(back[2].gbps.is_some());
        let fail = &back[3];
        assert_eq!(
            (fail.status, fail.reps, fail.median_s, fail.speedup),
            (Status::Timeout, 0, None, None)
        );
    }

    #[test]
    fn load_columns_are_written_judged_and_read_back() {
        use crate::report::test_support::with_load;
        let dir = tempfile::tempdir().unwrap();
        let recs = vec![
            with_load(
                record(0, "gemm", Scaling::Strong, 1, 64, &[0.2, 0.21]),
                0.02,
            ),
            with_load(
                record(0, "gemm", Scaling::Strong, 2, 64, &[0.15, 0.16]),
                1.5,
            ),
            record(0, "gemm", Scaling::Strong, 4, 64, &[0.1]),
        ];
        let path = dir.path().join("summary.csv");
        let rows = summary_rows("exp", &recs, &scaling::series(&recs));
        write_summary(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with(&format!("karp_flatt,{}", LOAD_COLUMNS.join(","))),
            "{header}"
        );
        assert!(
            text.contains(",false,,2,1,0.02,1,0,1.02,2,0.02,2600\n"),
            "a quiet point: {text}"
        );
        assert!(
            text.contains(",true,other work kept 1.50 of 2 cores busy while the point needed 2 (at most 0.20 allowed),2,2,1.5,2,0,3.5,4,1.5,2600\n"),
            "a disturbed point: {text}"
        );
        let back = read_summary(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[0].disturbed, Some(false));
        assert_eq!(back[1].disturbed, Some(true));
        assert_eq!(back[1].other_cores, Some(1.5));
        assert_eq!(back[1].clock_mhz, Some(2600.0));
        // A record without load figures (made before they existed) has empty cells.
        assert_eq!(back[2].disturbed, None);
        assert_eq!(back[2].disturbed_why, "");
        assert_eq!(back[2].other_cores, None);

        let path = dir.path().join("measurements.csv");
        let rows = measurement_rows("exp", &recs);
        write_measurements(&path, &rows).unwrap();
        let back = read_measurements(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(
            back.iter().map(|r| r.disturbed).collect::<Vec<_>>(),
            [Some(false), Some(false), Some(true), Some(true), None]
        );
    }

    #[test]
    fn metric_columns_round_trip() {
        use crate::report::test_support::{mpi_record, with_metric};
        let dir = tempfile::tempdir().unwrap();
        let recs = vec![
            with_metric(
                mpi_record(0, "mpi.pingpong", 2, 1, 8, 1000, &[2e-4, 3e-4, 2.5e-4]),
                "latency_us",
                &[0.1, 0.15, 0.125],
            ),
            with_metric(
                with_metric(
                    mpi_record(1, "mpi.stencil", 2, 1, 512, 10, &[1.0, 1.2]),
                    "comm_s",
                    &[0.25, 0.35],
                ),
                "compute_s",
                &[0.75, 0.85],
            ),
            record(2, "gemm", Scaling::Strong, 1, 64, &[0.1]),
        ];
        let path = dir.path().join("measurements.csv");
        let rows = measurement_rows("exp", &recs);
        write_measurements(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let header = text.lines().next().unwrap();
        assert!(
            header.ends_with(&format!(
                "status,reason,{},metric_comm_s,metric_compute_s,metric_latency_us",
                LOAD_COLUMNS.join(",")
            )),
            "{header}"
        );
        // Empty where a point has no such metric (and no machine load).
        assert!(
            text.lines()
                .last()
                .unwrap()
                .ends_with(&format!("ok{}", ",".repeat(1 + LOAD_COLUMNS.len() + 3))),
            "{text}"
        );
        let back = read_measurements(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[1].metrics["latency_us"], 0.15);
        assert_eq!(back[3].metrics.len(), 2);
        assert!(back[5].metrics.is_empty());

        let path = dir.path().join("summary.csv");
        let rows = summary_rows("exp", &recs, &scaling::series(&recs));
        write_summary(&path, &rows).unwrap();
        let back = read_summary(&path).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back[0].metrics["latency_us"], 0.125, "median");
        assert_eq!(back[1].metrics["comm_s"], 0.3);
        assert_eq!(back[1].metrics["compute_s"], 0.8);
        assert!(!back[1].metrics.contains_key("latency_us"));
        assert!(back[2].metrics.is_empty());

        // A metric cell that is not a number names file, line and column.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen(",0.125", ",fast", 1)).unwrap();
        let err = format!("{:#}", read_summary(&path).unwrap_err());
        assert!(err.contains("summary.csv line 2"), "{err}");
        assert!(err.contains("metric_latency_us"), "{err}");
    }

    #[test]
    fn corrupt_file_names_file_line_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        let recs = records();
        let rows = summary_rows("exp", &recs, &scaling::series(&recs));
        write_summary(&path, &rows).unwrap();
        // Break a number on the third line.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[2] = lines[2].replacen(",0.2,", ",zero point two,", 1);
        std::fs::write(&path, lines.join("\n")).unwrap();
        let err = format!("{:#}", read_summary(&path).unwrap_err());
        assert!(err.contains("summary.csv line 3"), "{err}");
        assert!(err.contains("scalelab report"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");

        // A truncated row (fewer fields) is caught too.
        std::fs::write(&path, format!("{}\n{}\nexp,gemm,abc\n", lines[0], lines[1])).unwrap();
        let err = format!("{:#}", read_summary(&path).unwrap_err());
        assert!(err.contains("line 3"), "{err}");

        let missing = format!(
            "{:#}",
            read_measurements(&dir.path().join("nope.csv")).unwrap_err()
        );
        assert!(missing.contains("nope.csv"), "{missing}");
    }
}
