//! Workloads: what a point measures.
//!
//! A workload is one measurable computation ("stream.triad", "gemm", ...). It declares what it is
//! in one const [`Description`] (name, summary, backend, parameters: the workload axes a manifest
//! may sweep, size unit, weak-scaling rule, and how the report shows it: [`Reporting`]), counts the
//! work of one repetition analytically, and prepares an [`Instance`]: the allocated, initialised
//! problem that the point runner times. Every workload lives in one static table, [`REGISTRY`],
//! which serves lookup, `scalelab list`, manifest checking and the docs alike; [`DESCRIPTIONS`]
//! holds the descriptions of every workload any build can have, which is what the report asks.
//! Adding a workload means a description, an implementation and one entry in `registry!`
//! (docs/ARCHITECTURE.md, "Where to add a workload").
//!
//! The point runner (see [`crate::point_runner`]) calls, inside a rayon pool of exactly `threads` workers:
//! `prepare` (untimed), `reset` + `run` for each warm-up, then `reset` (untimed) + `run` (timed) +
//! `verify` for each timed repetition.

mod cuda;
mod debug;
mod hpl;
#[cfg(target_os = "linux")]
mod io;
mod kernels;
mod ml;
mod mpi;
mod training;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::resources::Resources;
pub use crate::value::ParamKind;
use crate::value::{Size, Value};

/// Which engine a workload runs on; decides which cargo feature and which launcher it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Shared memory threads (rayon), the OpenMP analogue.
    Rayon,
    /// Distributed memory (rsmpi over OpenMPI); needs the `mpi` feature.
    Mpi,
    /// GPU kernels (cudarc + NVRTC); needs the `cuda` feature.
    Cuda,
    /// Diagnostics used to teach and test failure handling.
    Debug,
    /// File I/O: one rank in any build, several ranks under MPI (the `mpi` feature).
    Io,
}

impl Backend {
    /// Every backend, in listing order.
    pub const ALL: [Backend; 5] = [
        Backend::Rayon,
        Backend::Mpi,
        Backend::Cuda,
        Backend::Debug,
        Backend::Io,
    ];

    /// The lower-case name used in results and listings (and by serde).
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Rayon => "rayon",
            Backend::Mpi => "mpi",
            Backend::Cuda => "cuda",
            Backend::Debug => "debug",
            Backend::Io => "io",
        }
    }

    /// The backend named `name` as [`Backend::as_str`] writes it.
    pub fn parse(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.as_str() == name)
    }

    /// Whether a point's FLOP/s are judged against the CPU's peaks (the theoretical FMA peak, the
    /// measured DGEMM): every backend but the GPU's, whose points are judged against their
    /// devices' peaks ([`Backend::on_device`]).
    pub fn counts_against_cpu_peaks(self) -> bool {
        self != Backend::Cuda
    }

    /// Whether a point's bytes are judged against the CPU's memory bandwidth (the measured STREAM
    /// triad): not on a GPU (device memory) and not for file I/O (its bytes go to a disk).
    pub fn bytes_count_against_memory(self) -> bool {
        !matches!(self, Backend::Cuda | Backend::Io)
    }

    /// Whether points run on GPUs: their roofline is drawn against the devices' peaks.
    pub fn on_device(self) -> bool {
        self == Backend::Cuda
    }
}

/// How the report shows a workload's points beyond the charts every study gets, declared by the
/// workload ([`Description::reporting`]) so that the report never matches workload names. What
/// follows from the backend alone (which peaks a point counts against) is [`Backend`]'s to say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reporting {
    /// `size` is a message size in bytes: the study gets latency and bandwidth against the
    /// message size (`report::messages`).
    pub message_sizes: bool,
    /// Its FLOPs are the fused multiply-adds of dense linear algebra on the CPU, so the
    /// theoretical FMA peak bounds it: the throughput chart draws the peak line.
    pub fma_bound: bool,
    /// Its GFLOP/s are HPL's: the report sets them against the TOP500 lists.
    pub hpl: bool,
    /// Its GB/s are an attainable memory bandwidth (STREAM): the roofline draws the run's best as
    /// a measured bandwidth ceiling.
    pub bandwidth_ceiling: bool,
}

impl Reporting {
    /// Nothing beyond the common charts.
    pub const PLAIN: Reporting = Reporting {
        message_sizes: false,
        fma_bound: false,
        hpl: false,
        bandwidth_ceiling: false,
    };
    /// A communication benchmark whose `size` is a message size.
    pub const MESSAGES: Reporting = Reporting {
        message_sizes: true,
        ..Reporting::PLAIN
    };
    /// A memory-bandwidth yardstick (STREAM).
    pub const BANDWIDTH_CEILING: Reporting = Reporting {
        bandwidth_ceiling: true,
        ..Reporting::PLAIN
    };
    /// Dense linear algebra bounded by the FMA peak.
    pub const FMA_BOUND: Reporting = Reporting {
        fma_bound: true,
        ..Reporting::PLAIN
    };
}

/// What a workload is, declared once as a `const` beside its adapter: the facts `scalelab list`,
/// the manifest checker, the planner, the results and the report read, none of which needs the
/// workload's code. [`Workload`] provides `name`, `summary`, `backend`, `params`, `size_unit`,
/// `weak_rule` and `reporting` from it. The descriptions of every workload any build can have are
/// in [`DESCRIPTIONS`], so that a report made by a build without MPI still knows that
/// `mpi.pingpong` measures messages.
#[derive(Clone, Copy, Debug)]
pub struct Description {
    /// Registry name, e.g. "stream.triad".
    pub name: &'static str,
    /// One line for `scalelab list`.
    pub summary: &'static str,
    pub backend: Backend,
    /// The parameters (workload axes). Include `size` if the workload has a problem size and
    /// `variant` (a `Choice`) if it has implementation variants.
    pub params: &'static [ParamSpec],
    /// The unit of [`Workload::problem_size`], e.g. "elements", "n", "grid side", "samples".
    pub size_unit: &'static str,
    /// How weak scaling grows `size`.
    pub weak_rule: WeakRule,
    /// The parameter a weak-scaling study grows with the workers (by `weak_rule`): `size` for
    /// most workloads; `batch` for `mpi.train`, whose weak scaling keeps the per-rank batch (the
    /// work of a step) fixed while the dataset stays the same.
    pub weak_param: &'static str,
    /// How the report shows its points.
    pub reporting: Reporting,
    /// Whether a parameter means anything for a point with these parameters (see
    /// [`param_applies`]): report tables, plot labels and `scalelab plan` leave out those that do
    /// not, such as the synthetic-data settings of a point that reads a CSV file.
    pub applies: fn(&Params, &str) -> bool,
    /// Whether a point of this non-CUDA workload may still ask for `gpus` (`mpi.train` runs on
    /// one GPU per rank with `gpus = 1`); the workload's own check says which values it takes.
    pub gpus: bool,
}

impl Description {
    /// A description with the common rest: sizes in "elements", the linear weak rule, plain
    /// reporting. The builder methods below change each.
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        backend: Backend,
        params: &'static [ParamSpec],
    ) -> Description {
        Description {
            name,
            summary,
            backend,
            params,
            size_unit: "elements",
            weak_rule: WeakRule::Linear,
            weak_param: "size",
            reporting: Reporting::PLAIN,
            applies: every_param_applies,
            gpus: false,
        }
    }

    pub const fn size_unit(self, size_unit: &'static str) -> Description {
        Description { size_unit, ..self }
    }

    pub const fn weak_rule(self, weak_rule: WeakRule) -> Description {
        Description { weak_rule, ..self }
    }

    /// Grow `weak_param` instead of `size` in weak-scaling studies (an `Int` or `Size`
    /// parameter).
    pub const fn weak_param(self, weak_param: &'static str) -> Description {
        Description { weak_param, ..self }
    }

    pub const fn reporting(self, reporting: Reporting) -> Description {
        Description { reporting, ..self }
    }

    pub const fn applies(self, applies: fn(&Params, &str) -> bool) -> Description {
        Description { applies, ..self }
    }

    /// Let points ask for `gpus` although the backend is not CUDA (see [`Description::gpus`]).
    pub const fn uses_gpus(self) -> Description {
        Description { gpus: true, ..self }
    }
}

/// The rule of most workloads: every parameter means something for every point.
pub fn every_param_applies(_params: &Params, _key: &str) -> bool {
    true
}

/// Whether parameter `key` means anything for a point of workload `workload` with `params`: an
/// optional text parameter left empty says nothing, and the workload's own rule
/// ([`Description::applies`]) judges the rest. A workload unknown to this build shows every
/// parameter.
pub fn param_applies(workload: &str, params: &Params, key: &str) -> bool {
    if matches!(params.get(key), Some(Value::Text(t)) if t.is_empty()) {
        return false;
    }
    describe(workload).is_none_or(|d| (d.applies)(params, key))
}

/// One parameter (workload axis) of a workload.
#[derive(Clone, Copy, Debug)]
pub struct ParamSpec {
    /// Key used in manifests and as `param_NAME` column in results (`size` and `variant` have their
    /// own columns).
    pub name: &'static str,
    pub kind: ParamKind,
    /// Value used when a manifest does not set the parameter, as it would be written in TOML.
    pub default: &'static str,
    /// One line for `scalelab list`.
    pub doc: &'static str,
}

impl ParamSpec {
    /// The parameter's default as a typed value (the registry writes it as TOML text).
    pub fn default_value(&self) -> Result<Value, String> {
        Value::from_text(self.kind, self.default)
    }
}

/// How a weak-scaling study grows the problem size with the parallelism `p` so that the work per
/// worker stays constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WeakRule {
    /// size × p (work linear in size: STREAM, dot, Monte Carlo samples).
    Linear,
    /// size × √p (work quadratic in size: a 2-D grid given by its side).
    Sqrt,
    /// size × ∛p (work cubic in size: a dense n × n matrix product).
    Cbrt,
}

impl WeakRule {
    /// Scale `size` for parallelism `p`, rounding to the nearest integer (at least 1).
    pub fn scale(self, size: u64, p: u64) -> u64 {
        let p = p as f64;
        let factor = match self {
            WeakRule::Linear => p,
            WeakRule::Sqrt => p.sqrt(),
            WeakRule::Cbrt => p.cbrt(),
        };
        ((size as f64 * factor).round() as u64).max(1)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WeakRule::Linear => "linear",
            WeakRule::Sqrt => "sqrt",
            WeakRule::Cbrt => "cbrt",
        }
    }

    pub fn parse(s: &str) -> Option<WeakRule> {
        match s {
            "linear" => Some(WeakRule::Linear),
            "sqrt" => Some(WeakRule::Sqrt),
            "cbrt" => Some(WeakRule::Cbrt),
            _ => None,
        }
    }
}

/// The analytic work of one repetition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Floating point operations (an FMA counts 2).
    pub flops: f64,
    /// Bytes moved to and from memory, counted as the kernel's reference benchmark counts them
    /// (STREAM: reads + writes, no write-allocate).
    pub bytes: f64,
}

/// The parameter values of one point, with the workload's defaults filled in.
///
/// Keys are parameter names; every parameter the workload declares is present once a plan is expanded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Params(pub BTreeMap<String, Value>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// The `size` parameter. Panics if absent: the planner always sets it for workloads that declare it.
    pub fn size(&self) -> Size {
        match self.0.get("size") {
            Some(Value::Size(s)) => *s,
            other => panic!("point has no size parameter (found {other:?})"),
        }
    }

    /// A text or choice parameter.
    pub fn str(&self, name: &str) -> &str {
        match self.0.get(name) {
            Some(Value::Text(s)) => s,
            other => panic!("point has no text parameter `{name}` (found {other:?})"),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str) -> u64 {
        match self.0.get(name) {
            Some(Value::Int(i)) => *i,
            other => panic!("point has no integer parameter `{name}` (found {other:?})"),
        }
    }

    /// A float parameter (integers are accepted).
    pub fn float(&self, name: &str) -> f64 {
        match self.0.get(name) {
            Some(Value::Float(f)) => *f,
            Some(Value::Int(i)) => *i as f64,
            other => panic!("point has no number parameter `{name}` (found {other:?})"),
        }
    }

    /// The variant, or "" for workloads without one.
    pub fn variant(&self) -> &str {
        match self.0.get("variant") {
            Some(Value::Text(s)) => s,
            _ => "",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parameter helpers for the adapters: typed reads that return a message instead of panicking.

pub(crate) fn size_param(params: &Params) -> Result<Size, String> {
    match params.get("size") {
        Some(Value::Size(s)) => Ok(*s),
        Some(Value::Int(i)) if *i > 0 => Ok(Size::Count(*i)),
        other => Err(format!(
            "parameter `size` must be a size like 4096 or \"64MiB\" (found {other:?})"
        )),
    }
}

pub(crate) fn int_param(params: &Params, name: &str) -> Result<u64, String> {
    match params.get(name) {
        Some(Value::Int(i)) => Ok(*i),
        other => Err(format!(
            "parameter `{name}` must be a positive integer (found {other:?})"
        )),
    }
}

pub(crate) fn to_usize(v: u64, what: &str) -> Result<usize, String> {
    usize::try_from(v)
        .map_err(|_| format!("{what} = {v} does not fit this machine's address space"))
}

/// The side `n` of a square `n × n` f64 problem (matrix order, grid side) from `size`: at least
/// `min`, and small enough that `8·n²` bytes can be counted.
pub(crate) fn square_side(workload: &str, params: &Params, min: usize) -> Result<usize, String> {
    let n = to_usize(size_param(params)?.side(8), "size")?;
    if n < min {
        return Err(format!(
            "{workload}: n = {n} is below the smallest usable {min}; use a `size` of at least {min}"
        ));
    }
    if n.checked_mul(n).and_then(|nn| nn.checked_mul(8)).is_none() {
        return Err(format!(
            "{workload}: n = {n} is far too large (8·n² bytes overflow)"
        ));
    }
    Ok(n)
}

/// A number of samples from `size`, which must be a count, not bytes.
pub(crate) fn sample_count(workload: &str, params: &Params) -> Result<u64, String> {
    match size_param(params)? {
        Size::Count(n) => Ok(n),
        Size::Bytes(_) => Err(format!(
            "{workload}: `size` is a number of samples, not bytes; write e.g. 100000000 or \"100M\""
        )),
    }
}

/// One node of the machine a point runs on, as far as it is known where the point is checked.
///
/// `scalelab plan` and `scalelab run` describe this machine ([`Node::this_machine`]);
/// `scalelab sbatch` describes a node of the manifest's partition as `sinfo` reports it, and says
/// when it cannot. Unknown memory is `None`, never a guess: the login node's memory says nothing
/// about a compute node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    /// Cores of one node (threads × ranks per node above this need `oversubscribe`).
    pub cores: usize,
    /// Memory of one node in bytes, `None` when unknown (memory is then not checked).
    pub memory_bytes: Option<u64>,
}

impl Node {
    /// This machine: the cores this process may use and the memory `/proc/meminfo` reports.
    pub fn this_machine() -> Node {
        Node {
            cores: crate::machine::available_cores(),
            memory_bytes: crate::machine::memory_total(),
        }
    }
}

/// What a point is checked and prepared for: its resources and the node each of its ranks runs on.
///
/// Passed explicitly to [`Workload::check`] and [`Workload::prepare`] so that neither reads the
/// machine it happens to run on: `scalelab sbatch` checks on a login node for compute nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// The point's nodes, ranks, threads per rank and GPUs per rank.
    pub resources: Resources,
    /// One of the nodes it runs on.
    pub node: Node,
}

/// Share of a node's memory one point may plan to use: the rest is the operating system's, the
/// MPI library's and the allocator's.
pub const MEMORY_SHARE: f64 = 0.9;

impl Target {
    /// `resources` on this machine.
    pub fn this_machine(resources: Resources) -> Target {
        Target {
            resources,
            node: Node::this_machine(),
        }
    }

    /// Ranks that share one node (at least 1).
    pub fn ranks_per_node(&self) -> u64 {
        u64::from(
            self.resources
                .ranks
                .div_ceil(self.resources.nodes.max(1))
                .max(1),
        )
    }

    /// Refuse a point whose ranks on one node need more than [`MEMORY_SHARE`] of the node's
    /// memory, given the bytes one rank allocates (`per_rank`). Unknown node memory passes.
    pub fn fits_memory(&self, workload: &str, per_rank: f64, fix: &str) -> Result<(), String> {
        self.fits_memory_with_root(workload, per_rank, 0.0, fix)
    }

    /// [`Target::fits_memory`] where rank 0 allocates `root_extra` bytes more than the others
    /// (a serial reference it computes for everyone): the node holding rank 0 is the fullest.
    pub fn fits_memory_with_root(
        &self,
        workload: &str,
        per_rank: f64,
        root_extra: f64,
        fix: &str,
    ) -> Result<(), String> {
        let Some(have) = self.node.memory_bytes.filter(|&m| m > 0) else {
            return Ok(());
        };
        let ranks = self.ranks_per_node();
        let need = per_rank * ranks as f64 + root_extra;
        if need > MEMORY_SHARE * have as f64 {
            let mut what = if ranks > 1 {
                format!("{} per rank × {ranks} ranks per node", gib(per_rank))
            } else {
                gib(per_rank)
            };
            if root_extra > 0.0 {
                what = format!("{what} + {} on rank 0", gib(root_extra));
            }
            if ranks > 1 || root_extra > 0.0 {
                what = format!("{what} = {}", gib(need));
            }
            return Err(format!(
                "{workload} needs {what} of memory but a node has {} (at most {:.0}% of it may be planned); {fix}",
                gib(have as f64),
                MEMORY_SHARE * 100.0
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
impl Target {
    /// A fixed node for unit tests (4 cores, 16 GiB), one rank with `threads` threads, so that
    /// no test depends on the machine it runs on.
    pub(crate) fn test(threads: u32) -> Target {
        Target {
            resources: Resources {
                threads,
                ..Resources::default()
            },
            node: Node {
                cores: 4,
                memory_bytes: Some(16 << 30),
            },
        }
    }
}

/// Parameters of `spec` (a workload's) with their defaults, and `overrides` (name, TOML text)
/// applied: what the workloads' unit tests prepare.
#[cfg(test)]
pub(crate) fn test_params(spec: &[ParamSpec], overrides: &[(&str, &str)]) -> Params {
    let mut p = Params::default();
    for spec in spec {
        let text = overrides
            .iter()
            .find(|(k, _)| *k == spec.name)
            .map_or(spec.default, |(_, v)| *v);
        p.0.insert(
            spec.name.to_string(),
            Value::from_text(spec.kind, text).unwrap(),
        );
    }
    p
}

/// The error of `prepare` for a workload that runs only under MPI, asked to prepare without it.
#[cfg(feature = "mpi")]
pub(crate) fn not_under_mpi(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{name} is an MPI workload: its points run under mpirun (`scalelab run` launches them), \
         and this process was asked to prepare it without MPI"
    )
}

pub(crate) use crate::units::gib;

/// The GPU lines of `scalelab info`: each device with its peaks, or why there is none.
pub fn gpu_description() -> String {
    #[cfg(feature = "cuda")]
    {
        cuda::describe()
    }
    #[cfg(not(feature = "cuda"))]
    {
        "gpus                  none: this build has no CUDA (build with `--features cuda`)\n".into()
    }
}

/// A prepared problem, ready to be timed.
pub trait Instance {
    /// Restore the input before a run that overwrites it (HPL factors its matrix in place), outside
    /// the timed region: the point runner calls it before every warm-up and every timed
    /// repetition. Default: nothing.
    fn reset(&mut self) {}
    /// One execution of the kernel. This is the timed region: no allocation or set-up belongs here.
    /// Distributed instances must not synchronise before or after their work themselves: the point
    /// runner puts a barrier before each repetition and takes the maximum time over ranks.
    fn run(&mut self);
    /// Check the result of the last `run` against the serial reference (or an exact invariant).
    /// The error says what differs and by how much. Distributed instances check their own part;
    /// the runner combines the ranks' answers (a point verifies only if every rank does).
    fn verify(&mut self) -> Result<(), String>;
    /// Extra measurements of the last `run`, recorded per repetition as `metric_<name>` columns:
    /// e.g. `("comm_s", seconds spent in halo exchange)`. Under MPI the runner records the maximum
    /// over ranks. Default: none.
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
    /// Facts about the last verified `run` that are not numbers, recorded per repetition under
    /// `details`: e.g. `("chosen", the candidate each outer fold of a nested CV chose)`. Under MPI
    /// rank 0's are recorded. Default: none.
    fn details(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// The GPUs this instance runs on, with their peaks, for the record (GPU roofline). Default:
    /// none (CPU workloads).
    fn devices(&self) -> Vec<crate::device::DevicePeaks> {
        Vec::new()
    }
}

/// The communicator distributed instances run on: MPI's world of the point's ranks.
#[cfg(feature = "mpi")]
pub type Comm = ::mpi::topology::SimpleCommunicator;

/// A measurable computation. See the module documentation.
///
/// An implementation gives its [`Description`] and its behaviour (`work`, `prepare`, and where
/// needed `check`, `problem_size`, ...); the methods that only read the description are provided
/// and are not meant to be overridden.
pub trait Workload: Send + Sync {
    /// What the workload is (see [`Description`]).
    fn description(&self) -> &'static Description;
    /// Registry name, e.g. "stream.triad".
    fn name(&self) -> &'static str {
        self.description().name
    }
    /// One line for `scalelab list`.
    fn summary(&self) -> &'static str {
        self.description().summary
    }
    fn backend(&self) -> Backend {
        self.description().backend
    }
    /// The parameters (workload axes).
    fn params(&self) -> &'static [ParamSpec] {
        self.description().params
    }
    /// How weak scaling grows `size`.
    fn weak_rule(&self) -> WeakRule {
        self.description().weak_rule
    }
    /// The parameter weak scaling grows ([`Description::weak_param`]).
    fn weak_param(&self) -> &'static str {
        self.description().weak_param
    }
    /// The unit of `problem_size`, e.g. "elements", "n", "grid side", "samples".
    fn size_unit(&self) -> &'static str {
        self.description().size_unit
    }
    /// How the report shows the workload's points.
    fn reporting(&self) -> Reporting {
        self.description().reporting
    }
    /// The problem size as reported in the `size` column: elements, matrix order, grid side or
    /// samples, whatever the workload's natural unit is (see `size_unit`). The default counts
    /// 8-byte elements.
    fn problem_size(&self, params: &Params) -> u64 {
        match params.0.get("size") {
            Some(Value::Size(s)) => s.count(8),
            _ => 0,
        }
    }
    /// Extra validation of one point's parameters (beyond types and ranges) for `target`, with a
    /// message that says how to fix it. Every workload that allocates estimates its memory here
    /// ([`Target::fits_memory`]) without allocating it: `scalelab plan` runs this on every point.
    fn check(&self, _params: &Params, _target: &Target) -> Result<(), String> {
        Ok(())
    }
    /// Lines `scalelab plan` prints under the study for this point, e.g. what a dataset's target
    /// was read as and why; the plan shows each distinct line once per study.
    fn plan_notes(&self, _params: &Params) -> Vec<String> {
        Vec::new()
    }
    /// The parameter naming a data file this point reads, with its value as written (a CSV
    /// `dataset`), if any. The plan resolves a relative one against the manifest's folder and
    /// records the file's sha256, which the point checks before it reads the file.
    fn data_file<'p>(&self, _params: &'p Params) -> Option<(&'static str, &'p str)> {
        None
    }
    /// Analytic work of one repetition.
    fn work(&self, params: &Params) -> Work;
    /// Analytic work of one repetition of a point with `resources`: what records and estimates
    /// use. The default is [`Workload::work`]; a workload whose parameters are per rank (io.seq's
    /// `block`) multiplies by the ranks here.
    fn work_for(&self, params: &Params, resources: &Resources) -> Work {
        let _ = resources;
        self.work(params)
    }
    /// Rough fraction of the machine's peak (FLOP/s or memory bandwidth, whichever bounds the
    /// workload) this point reaches; only `scalelab plan`'s run-time estimate uses it.
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.5
    }
    /// Allocate and initialise the problem (untimed) for `target` (its GPUs per rank, its node).
    /// Runs inside the point's rayon pool.
    fn prepare(&self, params: &Params, target: &Target) -> anyhow::Result<Box<dyn Instance>>;
    /// Allocate and initialise this rank's part of a distributed problem (untimed), on every rank of
    /// `comm`, inside the rank's rayon pool. The instance may keep `comm.duplicate()`. Workloads of
    /// the `Mpi` backend implement it; the default runs `prepare` on every rank independently
    /// (shared-memory workloads run replicated, one copy per rank).
    #[cfg(feature = "mpi")]
    fn prepare_mpi(
        &self,
        params: &Params,
        target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let _ = comm;
        self.prepare(params, target)
    }
}

/// Builds [`REGISTRY`], [`DESCRIPTIONS`] and [`FEATURE_GATED`] from one list, so that a workload
/// gated by a cargo feature is listed once, with its feature, and cannot be missing from any table.
///
/// Entries: `DESCRIPTION => &workload` (every build), `@os("linux") DESCRIPTION => &workload`
/// (only on that target OS), `@feature("mpi") DESCRIPTION => &workload` (the workload only with
/// the feature; its description, which needs no feature, in every build).
macro_rules! registry {
    ($( $(@os($os:literal))? $(@feature($feature:literal))? $description:path => $workload:expr ),* $(,)?) => {
        /// Every workload this build knows, in listing order.
        pub static REGISTRY: &[&dyn Workload] = &[
            $( $(#[cfg(target_os = $os)])? $(#[cfg(feature = $feature)])? $workload, )*
        ];

        /// The description of every workload a build of scalelab can have, whether or not this
        /// build has it (in listing order): the report reads the records of any build.
        pub static DESCRIPTIONS: &[&Description] = &[
            $( $(#[cfg(target_os = $os)])? &$description, )*
        ];

        /// Workloads that exist only in builds with a cargo feature, with that feature, so that a
        /// manifest naming one in a build without it is told how to get it rather than "unknown
        /// workload". Derived with [`REGISTRY`] from one list.
        pub const FEATURE_GATED: &[(&str, &str)] = &[ $( $(($description.name, $feature),)? )* ];
    };
}

registry! {
    kernels::STREAM_COPY => &kernels::Stream(scalelab_kernels::stream::Op::Copy),
    kernels::STREAM_SCALE => &kernels::Stream(scalelab_kernels::stream::Op::Scale),
    kernels::STREAM_ADD => &kernels::Stream(scalelab_kernels::stream::Op::Add),
    kernels::STREAM_TRIAD => &kernels::Stream(scalelab_kernels::stream::Op::Triad),
    kernels::DOT => &kernels::Dot,
    kernels::GEMM => &kernels::Gemm,
    kernels::JACOBI2D => &kernels::Jacobi2d,
    kernels::MONTE_CARLO_PI => &kernels::MonteCarloPi,
    hpl::LU => &hpl::Lu,
    ml::FOREST => &ml::Ml(ml::Kind::Forest),
    ml::ADABOOST => &ml::Ml(ml::Kind::AdaBoost),
    ml::GBOOST => &ml::Ml(ml::Kind::GBoost),
    ml::STACKING => &ml::Ml(ml::Kind::Stacking),
    ml::KFOLD => &ml::Ml(ml::Kind::KFold),
    ml::NESTED => &ml::Ml(ml::Kind::Nested),
    ml::PREDICT => &ml::Predict,
    training::MLP_TRAIN => &training::MlpTrain,
    debug::SLEEP => &debug::Sleep,
    debug::FAIL => &debug::Fail,
    debug::DEBUG_MPI => &debug::DebugMpi,
    @os("linux") io::SEQ => &io::Seq,
    @feature("mpi") mpi::PINGPONG => &mpi::PingPong,
    @feature("mpi") mpi::ALLREDUCE => &mpi::Collective(scalelab_kernels::mpi::collective::Op::Allreduce),
    @feature("mpi") mpi::BCAST => &mpi::Collective(scalelab_kernels::mpi::collective::Op::Bcast),
    @feature("mpi") mpi::ALLGATHER => &mpi::Collective(scalelab_kernels::mpi::collective::Op::Allgather),
    @feature("mpi") mpi::STENCIL => &mpi::Stencil,
    @feature("mpi") mpi::GEMM => &mpi::Gemm,
    @feature("mpi") mpi::PI => &mpi::Pi,
    @feature("mpi") mpi::TRAIN => &mpi::Train,
    @feature("mpi") hpl::MPI_LU => &hpl::MpiLu,
    @feature("cuda") cuda::STREAM => &cuda::Stream,
    @feature("cuda") cuda::REDUCE => &cuda::ReduceSum,
    @feature("cuda") cuda::TRANSPOSE => &cuda::TransposeMatrix,
    @feature("cuda") cuda::GEMM => &cuda::MatMul,
    @feature("mpi") ml::MPI_KFOLD => &ml::MpiCv(ml::Kind::KFold),
    @feature("mpi") ml::MPI_NESTED => &ml::MpiCv(ml::Kind::Nested),
    @feature("mpi") ml::MPI_HGB => &ml::MpiHgb,
    @feature("mpi") ml::MPI_FOREST => &ml::MpiForest,
}

/// Look a workload up by name.
pub fn find(name: &str) -> Option<&'static dyn Workload> {
    REGISTRY.iter().copied().find(|w| w.name() == name)
}

/// The description of the workload named `name`, in this build or not (see [`DESCRIPTIONS`]):
/// how the report asks a record's workload how to show it.
pub fn describe(name: &str) -> Option<&'static Description> {
    DESCRIPTIONS.iter().copied().find(|d| d.name == name)
}

/// How the report shows the points of workload `name`: its declared [`Reporting`], plain for a
/// workload no build knows (a record from an older or newer scalelab).
pub fn reporting(name: &str) -> Reporting {
    describe(name).map_or(Reporting::PLAIN, |d| d.reporting)
}

/// Registry names closest to `name` (for "did you mean" suggestions), best first.
pub fn nearest(name: &str) -> Vec<&'static str> {
    crate::value::nearest(name, REGISTRY.iter().map(|w| w.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_have_valid_defaults() {
        let mut names: Vec<_> = REGISTRY.iter().map(|w| w.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
        for w in REGISTRY {
            for p in w.params() {
                p.default_value()
                    .unwrap_or_else(|e| panic!("{}.{}: {e}", w.name(), p.name));
            }
        }
    }

    /// The tables come from one list (`registry!`), so a gated workload is always in each; what
    /// is left to check is that each entry's description is its workload's own (every feature
    /// on: `--all-features`), and that the gated ones are exactly those missing without it.
    #[test]
    fn registry_entries_carry_their_own_descriptions() {
        for w in REGISTRY {
            let listed = describe(w.name()).unwrap_or_else(|| panic!("{} undescribed", w.name()));
            assert_eq!(format!("{listed:?}"), format!("{:?}", w.description()));
        }
        let mut names: Vec<_> = DESCRIPTIONS.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DESCRIPTIONS.len());
        for (name, feature) in FEATURE_GATED {
            let enabled = match *feature {
                "mpi" => cfg!(feature = "mpi"),
                "cuda" => cfg!(feature = "cuda"),
                other => panic!("unknown feature {other}"),
            };
            assert_eq!(find(name).is_some(), enabled, "{name} ({feature})");
        }
        for d in DESCRIPTIONS {
            let gated = FEATURE_GATED.iter().any(|(n, _)| *n == d.name);
            assert!(
                gated || find(d.name).is_some(),
                "{} is in no registry",
                d.name
            );
        }
    }

    /// The report's special sections follow the workloads' declarations, in every build.
    #[test]
    fn reporting_is_declared_by_the_workloads() {
        let with = |f: fn(&Reporting) -> bool| {
            let mut v: Vec<_> = DESCRIPTIONS
                .iter()
                .filter(|d| f(&d.reporting))
                .map(|d| d.name)
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            with(|r| r.message_sizes),
            [
                "mpi.allgather",
                "mpi.allreduce",
                "mpi.bcast",
                "mpi.pingpong"
            ]
        );
        assert_eq!(with(|r| r.fma_bound), ["gemm", "hpl.lu"]);
        assert_eq!(with(|r| r.hpl), ["hpl.lu", "mpi.hpl.lu"]);
        assert_eq!(
            with(|r| r.bandwidth_ceiling),
            ["stream.add", "stream.copy", "stream.scale", "stream.triad"]
        );
        assert_eq!(reporting("no.such.workload"), Reporting::PLAIN);
        assert!(reporting("mpi.pingpong").message_sizes);
    }

    #[test]
    fn backends_read_back_as_written() {
        for b in Backend::ALL {
            assert_eq!(Backend::parse(b.as_str()), Some(b));
            assert_eq!(
                serde_json::to_string(&b).unwrap(),
                format!("\"{}\"", b.as_str())
            );
        }
        assert_eq!(Backend::parse(""), None);
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_gpu_workload_in_a_build_without_cuda_names_the_feature() {
        for name in ["cuda.stream", "cuda.reduce", "cuda.transpose", "cuda.gemm"] {
            let source = format!("name = \"x\"\n\n[[study]]\nworkload = \"{name}\"\n");
            let err = crate::manifest::parse(std::path::Path::new("x.toml"), &source)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!(
                    "workload `{name}` is not in this build of scalelab"
                )),
                "{err}"
            );
            assert!(err.contains("build with `--features cuda`"), "{err}");
        }
    }

    #[test]
    fn memory_is_judged_per_node_for_the_ranks_sharing_it() {
        let node = Node {
            cores: 8,
            memory_bytes: Some(10 << 30),
        };
        let target = |ranks: u32, nodes: u32| Target {
            resources: Resources {
                ranks,
                nodes,
                ..Resources::default()
            },
            node,
        };
        let gib = f64::from(1u32 << 30);
        // 4 GiB per rank: one or two ranks per node fit in 90% of 10 GiB, three do not.
        target(1, 1).fits_memory("w", 4.0 * gib, "fix").unwrap();
        target(4, 2).fits_memory("w", 4.0 * gib, "fix").unwrap();
        assert_eq!(
            target(3, 1).fits_memory("w", 4.0 * gib, "use less").unwrap_err(),
            "w needs 4.00 GiB per rank × 3 ranks per node = 12.00 GiB of memory but a node has 10.00 GiB (at most 90% of it may be planned); use less"
        );
        assert_eq!(
            target(1, 1)
                .fits_memory_with_root("w", 4.0 * gib, 6.0 * gib, "use less")
                .unwrap_err(),
            "w needs 4.00 GiB + 6.00 GiB on rank 0 = 10.00 GiB of memory but a node has 10.00 GiB (at most 90% of it may be planned); use less"
        );
        // Unknown memory is not judged.
        let unknown = Target {
            node: Node {
                memory_bytes: None,
                ..node
            },
            ..target(3, 1)
        };
        unknown.fits_memory("w", 1e30, "fix").unwrap();
    }

    #[test]
    fn weak_rules_keep_work_per_worker() {
        assert_eq!(WeakRule::Linear.scale(1000, 4), 4000);
        assert_eq!(WeakRule::Sqrt.scale(1000, 4), 2000);
        assert_eq!(WeakRule::Cbrt.scale(1000, 8), 2000);
    }

    #[test]
    fn nearest_suggests_typos() {
        assert_eq!(nearest("debug.slep")[0], "debug.sleep");
        assert_eq!(nearest("stream.triads")[0], "stream.triad");
        assert_eq!(nearest("gemn")[0], "gemm");
    }
}
