//! The point runner: what `scalelab point` does with one point, in its own process. (The point
//! itself, the type, is [`crate::plan::Point`]; the launching of many is [`crate::executor`].)
//!
//! Every launch path (direct, mpirun, srun, a SLURM array task) ends here, so every path produces the
//! same record. The point comes from a [`Source`]: a one-point spec file that the local executor
//! writes just before the launch (`--spec`; every rank of an MPI job reads the same one), one line
//! of a SLURM task file (`--task-file`, `--task-index`), or, by hand, `plan.json` (`<point-id>`).
//! Only the last parses the whole plan; the first two cost the same at 10 points as at 10^6.
//! Whatever the source, [`check`] refuses a point whose id does not match its contents. The runner builds a rayon pool of exactly `threads` workers (never the global pool),
//! and inside it: prepares the workload's instance (untimed), runs the warm-ups, then times each
//! repetition with a monotonic clock and verifies its result right after. The record is written
//! atomically to `points/<id>.json`, whatever happened: a preparation error, a failed verification
//! or a panic each give a record with its status and reason. What the runner cannot record itself
//! (an abort, a signal, a time limit) the executor records from outside.
//!
//! Under MPI (a build with the `mpi` feature and a point that [`needs_mpi`]) every rank runs this
//! same sequence in its own pool, with a barrier before each warm-up and repetition; the ranks then
//! agree on one result (the maximum time and metrics over ranks, verified only if every rank
//! verified, the failing ranks named) and rank 0 alone writes the record. A panic on any rank ends
//! the whole job at once (`MPI_Abort`), so no rank waits forever in a barrier.

use std::cell::RefCell;
use std::io::{BufRead, BufReader, Read};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::plan::Point;
use crate::results::{PointRecord, Repetition, RunDir, Status};
use crate::units::now_rfc3339;
use crate::workload::{Backend, Work};

/// Where `scalelab point` finds its point.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// A one-point spec file (`--spec`), as the local executor writes it just before the launch:
    /// the fast path, whose cost does not depend on the size of the plan.
    Spec(&'a Path),
    /// Line `index` (0-based) of a task file of `scalelab sbatch` (`--task-file`, `--task-index`).
    Task(&'a Path, usize),
    /// Point `id` of the run's `plan.json` (`scalelab point <run-dir> <id>`, by hand): parses the
    /// whole plan, so it costs time and memory in proportion to the plan's size.
    Plan(&'a str),
}

/// The most bytes a point spec or one line of a task file may have. A point is a few hundred bytes;
/// the bound keeps a wrong `--spec` (a device, a huge file) from being read into memory whole. A
/// point cannot be larger than the manifest that made it, whose limit this is.
pub const MAX_SPEC_BYTES: u64 = 4 << 20;

/// Where the local executor writes the spec of point `id` of `run`: `<run-dir>/specs/<id>.json`.
pub fn spec_path(run: &RunDir, id: &str) -> PathBuf {
    run.root.join("specs").join(format!("{id}.json"))
}

/// Read, parse and check the point that `source` names: everything `scalelab point` does before
/// it prepares the workload. The point's id must match its contents (see [`check`]).
pub fn load(run: &RunDir, source: Source) -> Result<Point> {
    let (point, from) = match source {
        Source::Spec(path) => (read_spec(run, path)?, path.to_path_buf()),
        Source::Task(tasks, index) => (read_task(run, tasks, index)?, tasks.to_path_buf()),
        Source::Plan(id) => (read_from_plan(run, id)?, run.plan()),
    };
    check(&point, &from)?;
    Ok(point)
}

/// Run the point that `source` names and write its record. Returns the record.
///
/// Errors only when the record cannot be produced at all (no such run, spec or point, an edited
/// point, an unwritable folder); a point that fails still returns `Ok` with a failed record.
///
/// A SLURM task (a point from a task file) first records its compute node's machine in the run
/// (see [`crate::machine::record_in_run`]), once per node: the node's cached peak, measured now if
/// that node type has none yet.
pub fn run(run: &RunDir, source: Source) -> Result<PointRecord> {
    let from_task = matches!(source, Source::Task(..));
    let point = load(run, source)?;
    // One rank per node records it (the others of an MPI task would only write the same file).
    let other_rank_on_node = std::env::var("SLURM_LOCALID").is_ok_and(|id| id != "0");
    if from_task && !other_rank_on_node {
        if let Err(e) = crate::machine::record_in_run(&run.root) {
            crate::errln!(
                "warning: this node's peak could not be recorded in the run ({e:#}); the report quotes the peak of the machine `scalelab sbatch` ran on"
            );
        }
    }
    run_point(run, point)
}

/// Point `id` of the run's plan.json (which is parsed whole).
fn read_from_plan(run: &RunDir, id: &str) -> Result<Point> {
    let plan = run.load_plan()?;
    plan.points.into_iter().find(|p| p.id == id).ok_or_else(|| {
        anyhow!(
            "no point `{id}` in {}; `scalelab plan` lists the point ids of a manifest",
            run.plan().display()
        )
    })
}

/// The point of a spec file: one point as JSON, at most [`MAX_SPEC_BYTES`].
fn read_spec(run: &RunDir, path: &Path) -> Result<Point> {
    let bytes = read_bounded(path).with_context(|| {
        format!(
            "reading the point spec {}; `scalelab run` writes it just before it launches the \
             point: resume with `scalelab run --resume {}`, or run one point of the plan by hand \
             with `scalelab point {} <point-id>`",
            path.display(),
            run.root.display(),
            run.root.display()
        )
    })?;
    serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a point spec; resume with `scalelab run --resume {}`, which writes it anew",
            path.display(),
            run.root.display()
        )
    })
}

/// The whole file, or an error if it is larger than [`MAX_SPEC_BYTES`].
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_SPEC_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        bail!(
            "larger than {} MiB, which no point is",
            MAX_SPEC_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// Task `index` (0-based) of `tasks`, a task file of `scalelab sbatch` (one point as JSON per
/// line). An array task reads its task file up to its own line, and parses only that line, never
/// the whole plan: the scan costs about a millisecond per 10 000 lines before it, and a task file
/// holds one array (at most the cluster's MaxArraySize tasks).
fn read_task(run: &RunDir, tasks: &Path, index: usize) -> Result<Point> {
    let file = std::fs::File::open(tasks)
        .with_context(|| format!("opening the task file {}", tasks.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let resubmit = || {
        format!(
            "resubmit with `scalelab sbatch --resume {}`",
            run.root.display()
        )
    };
    for i in 0..=index {
        line.clear();
        // Bounded like a spec: a file without newlines is not read into memory whole.
        let n = (&mut reader)
            .take(MAX_SPEC_BYTES + 1)
            .read_until(b'\n', &mut line)
            .with_context(|| format!("reading {}", tasks.display()))?;
        if n == 0 {
            bail!(
                "{} has no task {index}: the array is larger than its task file; {}",
                tasks.display(),
                resubmit()
            );
        }
        if line.last() != Some(&b'\n') && n as u64 > MAX_SPEC_BYTES {
            bail!(
                "{}: line {} is longer than {} MiB, so it is no task; {}",
                tasks.display(),
                i + 1,
                MAX_SPEC_BYTES >> 20,
                resubmit()
            );
        }
    }
    serde_json::from_slice(&line).with_context(|| {
        format!(
            "{}: task {index} is not a point; {}",
            tasks.display(),
            resubmit()
        )
    })
}

/// Refuse a point whose id does not match its contents. The id is a hash of the point's contents:
/// a mismatch means the plan, spec or task file was edited by hand, and its values (sizes, thread
/// counts) were never checked. `from` is the file the point was read from, for the message.
pub fn check(point: &Point, from: &Path) -> Result<()> {
    let expected = crate::plan::point_id(
        &point.study_name,
        &point.workload,
        point.scaling,
        &point.resources,
        &point.params,
    );
    if expected != point.id || point.repetitions == 0 || point.resources.threads == 0 {
        crate::bad_input!(
            "point `{}` in {} does not match its id (the file was edited); plans are made by \
             `scalelab run <manifest>`, which checks every value: start a new run",
            point.id,
            from.display()
        );
    }
    Ok(())
}

/// Run `point` (already checked by [`load`]) and write its record.
fn run_point(run: &RunDir, point: Point) -> Result<PointRecord> {
    // Where no parent samples the machine (under srun, or by hand), the rank that writes the
    // record samples it from a thread.
    let sampler = if writes_the_record() {
        crate::load::InTask::start(point.resources.cores_needed())
    } else {
        None
    };
    #[cfg(feature = "mpi")]
    if needs_mpi(&point) {
        return mpi_point::run(run, &point, sampler);
    }
    #[cfg(not(feature = "mpi"))]
    if needs_mpi(&point) && launched_by_mpirun() {
        // Each rank would measure the whole point alone, and the record would pass for an MPI one.
        let record = unmeasured(
            &point,
            Status::Failed,
            "launched by mpirun, but this scalelab was built without MPI: rebuild it with \
             `cargo build --release --features mpi`"
                .into(),
        );
        run.write_record(&record)?;
        return Ok(record);
    }
    let mut record = measure(&point);
    record.load = sampler.and_then(crate::load::InTask::finish);
    run.write_record(&record)?;
    Ok(record)
}

/// Whether this process writes the point's record: it is not one rank of an MPI job, or it is
/// rank 0.
fn writes_the_record() -> bool {
    ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|v| std::env::var(v).ok())
        .is_none_or(|r| r == "0")
}

/// Whether `point` runs as an MPI job: it has more than one rank, or its workload runs on MPI.
/// The executor launches such points through `mpirun`, and (in a build with the `mpi` feature) the
/// runner measures them on every rank of MPI's world.
pub fn needs_mpi(point: &Point) -> bool {
    point.resources.ranks > 1
        || point
            .workload()
            .is_some_and(|w| w.backend() == Backend::Mpi)
}

/// Whether this process is one rank of a job that `mpirun` (OpenMPI or MPICH/Hydra) started.
#[cfg(not(feature = "mpi"))]
fn launched_by_mpirun() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// A record of `point` with no repetitions yet: work and size filled from its workload.
pub fn unmeasured(point: &Point, status: Status, reason: String) -> PointRecord {
    let mut record = PointRecord {
        point: point.clone(),
        status,
        reason,
        repetitions: Vec::new(),
        work: Work::default(),
        size: 0,
        size_unit: String::new(),
        backend: None,
        host: crate::machine::Machine::detect_quick().host,
        started: now_rfc3339(),
        finished: now_rfc3339(),
        slurm: slurm_ids(),
        rank_hosts: Vec::new(),
        load: None,
        devices: Vec::new(),
    };
    if let Some(w) = point.workload() {
        record.work = w.work_for(&point.params_with_data_path(), &point.resources);
        record.size = w.problem_size(&point.params);
        record.size_unit = w.size_unit().to_string();
        record.backend = Some(w.backend());
    }
    record
}

/// The SLURM variables that say which job, array task and nodes ran a point (empty outside SLURM).
fn slurm_ids() -> std::collections::BTreeMap<String, String> {
    [
        "SLURM_JOB_ID",
        "SLURM_ARRAY_JOB_ID",
        "SLURM_ARRAY_TASK_ID",
        "SLURM_JOB_NODELIST",
        "SLURM_STEP_NODELIST",
        "SLURMD_NODENAME",
        "SLURM_CLUSTER_NAME",
        "SLURM_JOB_PARTITION",
    ]
    .iter()
    .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
    .collect()
}

/// The node this process runs on, as a rank's entry of [`PointRecord::rank_hosts`]: SLURM's name
/// for it (`SLURMD_NODENAME`: on a cluster that runs several `slurmd` on one host, as the local
/// test cluster does, every node has the same host name), else the host name.
pub fn this_node() -> String {
    std::env::var("SLURMD_NODENAME")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(crate::machine::hostname)
}

/// Every rank's node ([`this_node`]), in rank order, on every rank. Collective.
#[cfg(feature = "mpi")]
pub(crate) fn rank_hosts(world: &crate::workload::Comm) -> Vec<String> {
    use mpi::traits::*;
    let mine = this_node().into_bytes();
    let n = world.size() as usize;
    let len = mine.len() as u64;
    let mut lens = vec![0u64; n];
    world.all_gather_into(&len, &mut lens[..]);
    let width = lens.iter().copied().max().unwrap_or(0) as usize;
    if width == 0 {
        return vec![String::new(); n];
    }
    let mut padded = mine;
    padded.resize(width, 0);
    let mut all = vec![0u8; width * n];
    world.all_gather_into(&padded[..], &mut all[..]);
    all.chunks(width)
        .zip(&lens)
        .map(|(c, &l)| String::from_utf8_lossy(&c[..l as usize]).into_owned())
        .collect()
}

/// Measure `point` in this process and return its record (not written).
pub fn measure(point: &Point) -> PointRecord {
    let mut record = unmeasured(point, Status::Ok, String::new());
    if point.workload().is_none() {
        record.status = Status::Failed;
        record.reason = format!(
            "workload `{}` is not in this build of scalelab; see `scalelab list`",
            point.workload
        );
        return record;
    }
    match catch_panic(|| time_repetitions(point, &mut record.repetitions, &mut record.devices)) {
        Ok(Ok(())) => {}
        Ok(Err(Failure { status, reason })) => {
            record.status = status;
            record.reason = reason;
        }
        Err(panic_message) => {
            record.status = Status::Crashed;
            record.reason = format!("panicked: {panic_message}");
        }
    }
    record.finished = now_rfc3339();
    record
}

struct Failure {
    status: Status,
    reason: String,
}

/// Prepare and time `point` in this process: its repetitions into `reps`, and the GPUs it runs
/// on (with their peaks) into `devices`.
fn time_repetitions(
    point: &Point,
    reps: &mut Vec<Repetition>,
    devices: &mut Vec<crate::device::DevicePeaks>,
) -> Result<(), Failure> {
    let failed = |reason: String| Failure {
        status: Status::Failed,
        reason,
    };
    let workload = point.workload().expect("checked by the caller");
    let pool = point_pool(point.resources.threads as usize, false).map_err(|e| {
        failed(format!(
            "could not start {} threads: {e}",
            point.resources.threads
        ))
    })?;
    let target = crate::workload::Target::this_machine(point.resources);
    let params = point
        .params_for_run()
        .map_err(|e| failed(format!("{e:#}")))?;
    pool.install(|| {
        let mut instance = workload
            .prepare(&params, &target)
            .with_context(|| format!("preparing {}", point.workload))
            .map_err(|e| failed(format!("{e:#}")))?;
        *devices = instance.devices();
        for _ in 0..point.warmup {
            instance.reset();
            instance.run();
        }
        for i in 0..point.repetitions {
            instance.reset();
            let t = Instant::now();
            instance.run();
            let seconds = t.elapsed().as_secs_f64();
            let check = instance.verify();
            reps.push(Repetition {
                seconds,
                verified: check.is_ok(),
                metrics: finite_metrics(instance.metrics()),
                details: owned(instance.details()),
            });
            if let Err(why) = check {
                return Err(Failure {
                    status: Status::VerifyFailed,
                    reason: format!("repetition {}: {why}", i + 1),
                });
            }
        }
        Ok(())
    })
}

/// An instance's metrics as recorded: names owned, non-finite values (which JSON cannot hold)
/// left out.
pub(crate) fn finite_metrics(
    metrics: Vec<(&'static str, f64)>,
) -> std::collections::BTreeMap<String, f64> {
    metrics
        .into_iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// An instance's details as recorded, names owned.
pub(crate) fn owned(
    details: Vec<(&'static str, String)>,
) -> std::collections::BTreeMap<String, String> {
    details
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Where a panic's message goes: the slot of the [`catch_panic`] call that the panicking thread
/// works for. Each call has its own slot, so concurrent calls (tests, or several points measured in
/// one process) never take each other's message.
type PanicSlot = Arc<Mutex<Option<String>>>;

thread_local! {
    /// The slot of the [`catch_panic`] call this thread works for: the calling thread itself, and
    /// the workers of a pool built by [`point_pool`] inside the call.
    static PANIC_SLOT: RefCell<Option<PanicSlot>> = const { RefCell::new(None) };
}

/// Install, once per process, the panic hook that keeps a panic's message and location in the
/// [`PanicSlot`] of the panicking thread. Installed once because `set_hook` is process-wide:
/// installing and removing it on every call raced with other threads doing the same (one call
/// removed the hook while another's panic was under way, which then came back "(no message)").
/// The hook then calls the hook it replaced, so the panic is still printed to stderr (the point's
/// log).
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            // `try_with`: a panic while the thread's locals are being destroyed has no slot.
            let slot = PANIC_SLOT.try_with(|s| s.borrow().clone()).ok().flatten();
            if let Some(slot) = slot {
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                let text = format!("{}{at}", payload_message(info.payload()));
                if let Ok(mut slot) = slot.lock() {
                    // The first panic is the cause; later ones (other workers) follow from it.
                    slot.get_or_insert(text);
                }
            }
            previous(info);
        }));
    });
}

/// The text of a panic's payload (`panic!` gives a `&str` or a `String`).
fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Sets this thread's [`PanicSlot`] for as long as it lives, then puts back the one it replaced
/// (so that nested calls each keep their own).
struct SlotGuard(Option<PanicSlot>);

impl SlotGuard {
    fn enter(slot: PanicSlot) -> SlotGuard {
        SlotGuard(PANIC_SLOT.with(|s| s.replace(Some(slot))))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = PANIC_SLOT.try_with(|s| s.replace(previous));
    }
}

/// Run `f`, turning a panic (in this thread, or in a worker of a [`point_pool`] built inside `f`)
/// into `Err("<message> at <file>:<line>")`. The panic is still printed to stderr by the hook
/// that was in place before [`install_panic_hook`].
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_panic_hook();
    let slot = PanicSlot::default();
    let result = {
        let _guard = SlotGuard::enter(slot.clone());
        panic::catch_unwind(AssertUnwindSafe(f))
    };
    result.map_err(|payload| {
        // The slot has the location too; a panic the hook did not see (a thread outside the
        // call's pool that a workload joined) still has its payload's message.
        slot.lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_else(|| payload_message(payload.as_ref()))
    })
}

/// A rayon pool of `threads` workers for one point. Its workers report their panics to the
/// [`catch_panic`] call that builds the pool (its slot, read on this thread, is handed to each
/// worker as it starts). With `use_current_thread`, this thread is the pool's worker 0.
fn point_pool(
    threads: usize,
    use_current_thread: bool,
) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    let slot = PANIC_SLOT.with(|s| s.borrow().clone());
    let mut builder = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scalelab-worker-{i}"))
        .start_handler(move |_| {
            if let Some(slot) = &slot {
                // For the worker's whole life: the pool lives inside the call.
                std::mem::forget(SlotGuard::enter(slot.clone()));
            }
        });
    if use_current_thread {
        builder = builder.use_current_thread();
    }
    builder.build()
}

/// The point runner on every rank of an MPI job (see the module documentation).
#[cfg(feature = "mpi")]
mod mpi_point {
    use std::time::Instant;

    use anyhow::Result;
    use mpi::collective::SystemOperation;
    use mpi::environment::Threading;
    use mpi::traits::*;

    use super::{catch_panic, unmeasured, Failure};
    use crate::plan::Point;
    use crate::results::{PointRecord, Repetition, RunDir, Status};
    use crate::units::now_rfc3339;
    use crate::workload::Comm;

    /// The MPI thread level a point needs: `Single` when the rank runs one thread (the pool is
    /// this thread alone), else `Funneled`. Asking for more than needed is not free: OpenMPI 4.1
    /// then locks on every call, which measured here as 0.135-0.148 us against 0.160-0.167 us for
    /// an 8-byte C ping-pong under MPI_Init vs MPI_Init_thread(FUNNELED), alternated in one job.
    fn thread_level(point: &Point) -> Threading {
        if point.resources.threads <= 1 {
            Threading::Single
        } else {
            Threading::Funneled
        }
    }

    /// Exit code of a job ended by a panic (`MPI_Abort`); Rust's own panic exit code.
    const PANIC_ABORT_CODE: i32 = 101;

    /// Initialise MPI, measure `point` on every rank, and write the record on rank 0. Every rank
    /// returns the same record. A panic on any rank aborts the job (after rank 0, if it is the one
    /// that panicked, has recorded it); the executor records the crash of the others.
    pub(super) fn run(
        run: &RunDir,
        point: &Point,
        sampler: Option<crate::load::InTask>,
    ) -> Result<PointRecord> {
        let mut record = unmeasured(point, Status::Ok, String::new());
        let Some((universe, level)) = mpi::initialize_with_threading(thread_level(point)) else {
            record.status = Status::Failed;
            record.reason = "MPI was already initialised in this process".into();
            run.write_record(&record)?;
            return Ok(record);
        };
        let world = universe.world();
        let rank = world.rank();
        let (reps, devices) = (&mut record.repetitions, &mut record.devices);
        match catch_panic(|| measure_ranks(point, &world, level, reps, devices)) {
            Ok(Ok(())) => {}
            Ok(Err(Failure { status, reason })) => {
                record.status = status;
                record.reason = reason;
            }
            Err(panic_message) => {
                // One line with the message, which the executor looks for in the log.
                eprintln!("scalelab: rank {rank} panicked: {panic_message}; aborting the MPI job");
                if rank == 0 {
                    record.status = Status::Crashed;
                    record.reason = format!("rank 0 panicked: {panic_message}");
                    record.finished = now_rfc3339();
                    if let Err(e) = run.write_record(&record) {
                        eprintln!("scalelab: rank 0 could not record the panic: {e:#}");
                    }
                }
                world.abort(PANIC_ABORT_CODE);
            }
        }
        record.rank_hosts = super::rank_hosts(&world);
        record.finished = now_rfc3339();
        record.load = sampler.and_then(crate::load::InTask::finish);
        let written = if rank == 0 {
            run.write_record(&record)
        } else {
            Ok(())
        };
        // No rank ends before the record exists: mpirun ends the whole job as soon as one rank
        // exits with a non-zero status, as every rank of a failed point does.
        world.barrier();
        written.map(|()| record)
    }

    /// Check the job, then prepare, warm up, time and verify on every rank. Every rank returns the
    /// same result: each step that can fail on one rank is agreed on by all before the next.
    fn measure_ranks(
        point: &Point,
        world: &Comm,
        level: Threading,
        reps: &mut Vec<Repetition>,
        devices: &mut Vec<crate::device::DevicePeaks>,
    ) -> Result<(), Failure> {
        let failed = |reason: String| Failure {
            status: Status::Failed,
            reason,
        };
        let want = point.resources.ranks;
        let size = world.size();
        if u32::try_from(size).ok() != Some(want) {
            return Err(failed(format!(
                "launched with {size} ranks, point wants {want}: run it through `scalelab run`, or `mpirun -n {want} scalelab point <run-dir> {}`",
                point.id
            )));
        }
        let needed = thread_level(point);
        if level < needed {
            return Err(failed(format!(
                "the MPI library provides thread support {level:?}, but this point needs \
                 {needed:?} (rayon threads run beside the thread that calls MPI); use an MPI \
                 built with thread support, or threads = 1"
            )));
        }
        let workload = point.workload().expect("checked by the caller");
        let threads = point.resources.threads;
        // This thread joins the pool as its worker 0, so `install` runs the closure here, on the
        // thread that initialised MPI: every MPI call comes from it, as `Funneled` requires (and
        // with threads = 1 it is the only thread, as `Single` requires).
        let pool = super::point_pool(threads as usize, true)
            .map_err(|e| format!("could not start {threads} threads: {e}"));
        let pool = agree(world, pool).map_err(|f| failed(f.to_string()))?;
        let shared = FunneledComm(world);
        let caller = std::thread::current().id();
        pool.install(|| {
            if std::thread::current().id() != caller {
                return Err(failed(
                    "internal: the point's closure left the thread that initialised MPI".into(),
                ));
            }
            let world = shared.get();
            let target = crate::workload::Target::this_machine(point.resources);
            let prepared = point
                .params_for_run()
                .and_then(|params| workload.prepare_mpi(&params, &target, world))
                .map_err(|e| format!("preparing {}: {e:#}", point.workload));
            let mut instance = agree(world, prepared).map_err(|f| failed(f.to_string()))?;
            // Rank 0 writes the record: its GPUs stand for every rank's (one node type).
            *devices = instance.devices();
            for _ in 0..point.warmup {
                instance.reset();
                world.barrier();
                instance.run();
            }
            for i in 0..point.repetitions {
                instance.reset();
                world.barrier();
                let t = Instant::now();
                instance.run();
                let local_s = t.elapsed().as_secs_f64();
                let check = instance.verify();
                let mut seconds = 0.0f64;
                world.all_reduce_into(&local_s, &mut seconds, SystemOperation::max());
                let metrics = max_metrics(world, instance.metrics()).map_err(failed)?;
                let check = agree(world, check);
                reps.push(Repetition {
                    seconds,
                    verified: check.is_ok(),
                    metrics,
                    details: super::owned(instance.details()),
                });
                if let Err(f) = check {
                    return Err(Failure {
                        status: Status::VerifyFailed,
                        reason: format!("repetition {}: {f}", i + 1),
                    });
                }
            }
            Ok(())
        })
    }

    /// The world communicator, passed into `pool.install`'s closure.
    ///
    /// rsmpi's communicators are not `Sync`, because MPI does not allow concurrent calls below
    /// `Threading::Multiple`. Here the pool was built with `use_current_thread`, so `install` runs
    /// its closure on this very thread, the one that initialised MPI (`Threading::Single` or
    /// `Threading::Funneled`, checked before this is built): the communicator never leaves the
    /// thread it belongs to.
    struct FunneledComm<'a>(&'a Comm);

    // SAFETY: see the type's documentation: every call is made by the thread that initialised MPI.
    unsafe impl Send for FunneledComm<'_> {}
    // SAFETY: as above.
    unsafe impl Sync for FunneledComm<'_> {}

    impl<'a> FunneledComm<'a> {
        /// The communicator (a method, so that closures capture the whole wrapper).
        fn get(&self) -> &'a Comm {
            self.0
        }
    }

    /// The maximum over ranks of each metric. Every rank must report the same metrics, in the
    /// same order; the names are this rank's.
    fn max_metrics(
        world: &Comm,
        local: Vec<(&'static str, f64)>,
    ) -> Result<std::collections::BTreeMap<String, f64>, String> {
        let n = local.len() as u64;
        let (mut fewest, mut most) = (0u64, 0u64);
        world.all_reduce_into(&n, &mut fewest, SystemOperation::min());
        world.all_reduce_into(&n, &mut most, SystemOperation::max());
        if fewest != most {
            return Err(format!(
                "the ranks report different numbers of metrics ({fewest} to {most}); every rank's \
                 Instance::metrics must return the same names in the same order"
            ));
        }
        let values: Vec<f64> = local.iter().map(|(_, v)| *v).collect();
        let mut max = vec![0.0f64; values.len()];
        world.all_reduce_into(&values[..], &mut max[..], SystemOperation::max());
        Ok(super::finite_metrics(
            local.iter().zip(max).map(|((k, _), v)| (*k, v)).collect(),
        ))
    }

    /// Ranks that failed a step, with the message of the first of them.
    pub(super) struct RankFailure {
        pub ranks: Vec<i32>,
        pub message: String,
    }

    impl std::fmt::Display for RankFailure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            describe_ranks(&self.ranks, &self.message).fmt(f)
        }
    }

    /// Make every rank agree on a step that may fail on some of them: `Ok` on every rank if every
    /// rank succeeded, otherwise the same [`RankFailure`] on every rank (the failing ranks, and the
    /// message of the lowest one, broadcast from it). Collective: every rank must call it.
    fn agree<T>(world: &Comm, local: Result<T, String>) -> Result<T, RankFailure> {
        let flag = i32::from(local.is_err());
        let mut flags = vec![0i32; world.size() as usize];
        world.all_gather_into(&flag, &mut flags[..]);
        let ranks: Vec<i32> = (0..world.size())
            .filter(|r| flags[*r as usize] != 0)
            .collect();
        let Some(&first) = ranks.first() else {
            return local.map_err(|_| unreachable!("every rank reported success"));
        };
        let mut bytes = match &local {
            Err(m) if world.rank() == first => m.as_bytes().to_vec(),
            _ => Vec::new(),
        };
        let mut len = bytes.len() as u64;
        let root = world.process_at_rank(first);
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
        Err(RankFailure {
            ranks,
            message: String::from_utf8_lossy(&bytes).into_owned(),
        })
    }

    /// "rank 1: msg", or "ranks 1, 3 failed; rank 1: msg".
    pub(super) fn describe_ranks(ranks: &[i32], message: &str) -> String {
        match ranks {
            [one] => format!("rank {one}: {message}"),
            _ => {
                let list: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
                format!(
                    "ranks {} failed; rank {}: {message}",
                    list.join(", "),
                    ranks[0]
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Resources, Scaling};
    use crate::value::Value;
    use crate::workload::Params;

    fn debug_point(workload: &str, key: &str, value: Value) -> Point {
        Point {
            id: "test".into(),
            study: 0,
            study_name: workload.into(),
            workload: workload.into(),
            scaling: Scaling::Strong,
            resources: Resources {
                threads: 2,
                ..Resources::default()
            },
            params: Params([(key.to_string(), value)].into_iter().collect()),
            repetitions: 3,
            warmup: 1,
            timeout_s: 60.0,
            oversubscribed: false,
            data: None,
        }
    }

    /// Each of several concurrent calls gets its own panic's message. This failed when every call
    /// installed and removed a process-wide hook: a call's panic then came back "(no message)" or
    /// with another call's message.
    #[test]
    fn concurrent_panics_keep_their_own_messages() {
        let threads = 8;
        let barrier = std::sync::Barrier::new(threads);
        // Every thread runs every round (an assertion inside would leave the others waiting at
        // the barrier); the wrong messages are compared after all have ended.
        let wrong: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        let mut wrong = Vec::new();
                        for round in 0..50 {
                            barrier.wait();
                            let got = catch_panic::<()>(|| panic!("call {t} round {round}"));
                            let want = format!("call {t} round {round} at {}:", file!());
                            match got {
                                Err(message) if message.starts_with(&want) => {}
                                other => wrong.push(format!("want {want:?}, got {other:?}")),
                            }
                        }
                        wrong
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        assert!(wrong.is_empty(), "{} wrong: {wrong:#?}", wrong.len());
    }

    /// A panic on a worker of the point's pool is reported to the call that built the pool, with
    /// its location.
    #[test]
    fn a_worker_panic_reaches_the_call_that_built_the_pool() {
        let got = catch_panic(|| {
            let pool = point_pool(2, false).unwrap();
            pool.install(|| {
                rayon::join(|| (), || panic!("worker says no"));
            })
        });
        let message = got.expect_err("a worker panicked");
        assert!(
            message.starts_with(&format!("worker says no at {}:", file!())),
            "{message}"
        );
        // No panic: the closure's value, and no message left behind for the next call.
        assert_eq!(catch_panic(|| 7), Ok(7));
        let next = catch_panic::<()>(|| panic!("{}", String::from("second"))).unwrap_err();
        assert!(next.starts_with("second at "), "{next}");
    }

    #[test]
    fn several_ranks_or_an_mpi_workload_need_mpi() {
        let mut p = debug_point("debug.sleep", "seconds", Value::Float(0.001));
        assert!(!needs_mpi(&p));
        p.resources.ranks = 2;
        assert!(needs_mpi(&p));
        let p = debug_point("mpi.debug", "mode", Value::Text("ok".into()));
        assert!(
            needs_mpi(&p),
            "an MPI workload runs under mpirun even on one rank"
        );
    }

    #[cfg(feature = "mpi")]
    #[test]
    fn failing_ranks_are_named() {
        assert_eq!(mpi_point::describe_ranks(&[1], "wrong"), "rank 1: wrong");
        assert_eq!(
            mpi_point::describe_ranks(&[1, 3], "wrong"),
            "ranks 1, 3 failed; rank 1: wrong"
        );
    }

    #[test]
    fn a_good_point_times_every_repetition() {
        let rec = measure(&debug_point("debug.sleep", "seconds", Value::Float(0.001)));
        assert_eq!(rec.status, Status::Ok, "{}", rec.reason);
        assert_eq!(rec.repetitions.len(), 3);
        assert!(rec
            .repetitions
            .iter()
            .all(|r| r.verified && r.seconds >= 0.001));
    }

    #[test]
    fn failures_become_records() {
        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("panic".into()),
        ));
        assert_eq!(rec.status, Status::Crashed);
        assert!(
            rec.reason
                .starts_with("panicked: debug.fail: panicked on purpose"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("wrong".into()),
        ));
        assert_eq!(rec.status, Status::VerifyFailed);
        assert_eq!(rec.repetitions.len(), 1);
        assert!(!rec.repetitions[0].verified);
        assert!(
            rec.reason
                .starts_with("repetition 1: debug.fail: result 41 differs"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("error".into()),
        ));
        assert_eq!(rec.status, Status::Failed);
        assert!(
            rec.reason.contains("prepare failed on purpose"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point("no.such", "mode", Value::Text("x".into())));
        assert_eq!(rec.status, Status::Failed);
        assert!(rec.reason.contains("not in this build"), "{}", rec.reason);
    }
}
