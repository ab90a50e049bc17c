//! Property tests of everything scalelab reads from users and from disk, driven by a seeded
//! generator: the manifest checker ([`scalelab::manifest::parse_with`] and `load_with`), point
//! records ([`scalelab::results::parse_record`]) and the CSV exports read back
//! ([`scalelab::report::csv::read_summary`], `read_measurements`).
//!
//! Each target starts from real inputs (the manifests of `experiments/` plus a few that use the
//! rarer keys; records and CSV files made by the crate's own writers from real plan points) and
//! mutates them, structurally (keys deleted, renamed, duplicated; values replaced by nasty ones:
//! huge, negative, NaN, tables where scalars belong, long and non-ASCII strings; JSON fields of the
//! wrong type; CSV cells and columns) and byte by byte (bit flips, truncation, insertions,
//! duplicated and dropped lines, bytes that are not UTF-8). The properties:
//!
//! * nothing panics;
//! * a refused manifest names its file, and every problem has a message and a fix;
//! * an accepted manifest expands into a plan, within the point limit, with distinct point ids
//!   and no two points that measure the same thing (same study, resources and values);
//! * a refused record or CSV file is an error naming the file; an accepted record is the
//!   expected point's.
//!
//! `cargo test` (and `cargo nextest`, which CI runs) runs a slice: per target at most
//! 4000 cases in at most 20 s, split between a fixed seed and a seed derived from the date (both
//! printed), so every day tries new inputs while a failure stays reproducible. The full run, 10⁶
//! inputs per target, printing cases/s:
//!
//! ```text
//! SCALELAB_FUZZ_CASES=1000000 cargo test --release --all-features --test fuzz -- --nocapture
//! ```
//!
//! Environment: `SCALELAB_FUZZ_CASES` (cases per target; with it alone there is no time box),
//! `SCALELAB_FUZZ_SECONDS` (time box per target), `SCALELAB_FUZZ_SEED` (one seed instead of the
//! two) and `SCALELAB_FUZZ_FIRST` (the first case index). A failing input is saved under
//! `target/tmp/fuzz-failures/` and the message says how to replay it; the slowest input of each
//! target is saved beside it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalelab::manifest::{self, Context, MAX_POINTS};
use scalelab::plan::{Point, Resources};
use scalelab::results::{self, PointRecord, Repetition, Status};
use scalelab::workload::{Backend, Work, REGISTRY};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value as Tv};

type R = Xoshiro256PlusPlus;

/// Cases per target in the default slice.
const DEFAULT_CASES: u64 = 4000;
/// Time box per target in the default slice, in seconds.
const DEFAULT_SECONDS: f64 = 20.0;
/// The slice's fixed seed.
const FIXED_SEED: u64 = 0x5ca1_e1ab_f022_0001;

// ---------------------------------------------------------------------------------------------
// The harness: budget, seeds, panic capture, findings.

/// How many cases to run, for how long, from which seeds.
struct Budget {
    cases: u64,
    seconds: Option<f64>,
    seeds: Vec<u64>,
    first: u64,
}

fn env_parse<T: std::str::FromStr>(name: &str) -> Option<T> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

impl Budget {
    fn from_env() -> Budget {
        let cases = env_parse::<u64>("SCALELAB_FUZZ_CASES");
        let seconds = env_parse::<f64>("SCALELAB_FUZZ_SECONDS");
        let (cases, seconds) = match cases {
            Some(c) => (c, seconds),
            None => (DEFAULT_CASES, Some(seconds.unwrap_or(DEFAULT_SECONDS))),
        };
        let seeds = match env_parse::<u64>("SCALELAB_FUZZ_SEED") {
            Some(s) => vec![s],
            None => vec![FIXED_SEED, day_seed()],
        };
        Budget {
            cases,
            seconds,
            seeds,
            first: env_parse("SCALELAB_FUZZ_FIRST").unwrap_or(0),
        }
    }
}

/// Today's seed: the days since 1970 (UTC), so each day's CI run tries new inputs.
fn day_seed() -> u64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs / 86_400
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The generator of case `i` of `seed`: every case can be replayed alone.
fn case_rng(seed: u64, i: u64) -> R {
    R::seed_from_u64(splitmix(seed ^ splitmix(i)))
}

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic inside a case is recorded (message and place) instead of printed, so a run with many
/// of them stays readable; panics elsewhere (the harness's own assertions) print as usual.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(Cell::get) {
                CAUGHT.with(|c| *c.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// Run `f`, turning a panic into `Err(message with its place)`.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    IN_CASE.with(|c| c.set(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    IN_CASE.with(|c| c.set(false));
    r.map_err(|_| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| "panicked (no message)".into())
    })
}

/// One generated input. `choice` carries a target's own random decisions (which reader, which
/// expected point) so that the check does not draw from the generator.
struct Case {
    bytes: Vec<u8>,
    choice: u64,
}

/// What a check found wrong with one case.
enum Finding {
    Panic(String),
    Violation(String),
}

/// What one accepted-or-refused case looked like, for the coverage counts.
struct Outcome {
    ok: bool,
    /// Shapes of the error messages (digits and quoted text removed), to count distinct ones.
    shapes: Vec<String>,
}

#[derive(Default)]
struct Findings {
    /// Distinct finding (panic place, or violation) → (count, first saved input, seed, case).
    by_kind: BTreeMap<String, (u64, PathBuf, u64, u64)>,
}

fn failures_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A finding's kind: its first two lines without numbers, point ids and what follows a `(`, so
/// the same panic or violation at other values counts once.
fn kind_of(message: &str) -> String {
    let first = message.lines().take(2).collect::<Vec<_>>().join(" | ");
    let first = first.split('(').next().unwrap_or_default();
    first
        .split(' ')
        .filter(|w| !(w.len() >= 8 && w.chars().all(|c| c.is_ascii_hexdigit())))
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_ascii_digit())
        .take(300)
        .collect()
}

/// The shape of an error message: what stays when numbers and quoted text are removed.
fn shape(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = None;
    for c in message.chars() {
        match quoted {
            Some(q) if c == q => quoted = None,
            Some(_) => {}
            None if c == '`' || c == '"' => quoted = Some(c),
            None if c.is_ascii_digit() => {}
            None => out.push(c),
        }
    }
    out.chars().take(120).collect()
}

/// Run `budget`'s cases of one target: generate each, check it, and fail at the end with every
/// distinct finding, each with its saved input and how to replay it.
fn run_target(
    name: &str,
    ext: &str,
    budget: &Budget,
    mut generate: impl FnMut(&mut R) -> Case,
    mut check: impl FnMut(&Case) -> Result<Outcome, Finding>,
) {
    install_panic_hook();
    let mut findings = Findings::default();
    let mut shapes = HashSet::new();
    let (mut done, mut ok) = (0u64, 0u64);
    let mut slowest = (Duration::ZERO, Vec::new(), 0u64, 0u64);
    let start = Instant::now();
    let per_seed = budget.cases.div_ceil(budget.seeds.len() as u64);
    for (s, &seed) in budget.seeds.iter().enumerate() {
        let seed_start = Instant::now();
        // Each seed gets its share of the time box.
        let limit = budget
            .seconds
            .map(|t| Duration::from_secs_f64(t / budget.seeds.len() as f64));
        let last = budget.first + per_seed.min(budget.cases.saturating_sub(per_seed * s as u64));
        for i in budget.first..last {
            if limit.is_some_and(|l| seed_start.elapsed() > l) {
                break;
            }
            let case = generate(&mut case_rng(seed, i));
            let t0 = Instant::now();
            let result = check(&case);
            let took = t0.elapsed();
            done += 1;
            if took > slowest.0 {
                slowest = (took, case.bytes.clone(), seed, i);
            }
            let (kind, what) = match result {
                Ok(o) => {
                    ok += o.ok as u64;
                    shapes.extend(o.shapes);
                    continue;
                }
                Err(Finding::Panic(m)) => (format!("panic: {}", kind_of(&m)), m),
                Err(Finding::Violation(m)) => (format!("violation: {}", kind_of(&m)), m),
            };
            let entry = findings.by_kind.entry(kind).or_insert_with(|| {
                let file = failures_dir().join(format!("{name}-{seed}-{i}.{ext}"));
                std::fs::write(&file, &case.bytes).unwrap();
                eprintln!(
                    "{name}: seed {seed} case {i}: {what}\n  input saved to {}",
                    file.display()
                );
                (0, file, seed, i)
            });
            entry.0 += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let slow_file = failures_dir().join(format!("slowest-{name}.{ext}"));
    std::fs::write(&slow_file, &slowest.1).unwrap();
    println!(
        "{name}: {done} cases in {secs:.1} s ({:.0} cases/s), seeds {:?} from case {}; {ok} accepted, \
         {} refused with {} distinct message shapes; slowest {:.1} ms (seed {} case {}, saved to {})",
        done as f64 / secs.max(1e-9),
        budget.seeds,
        budget.first,
        done - ok,
        shapes.len(),
        slowest.0.as_secs_f64() * 1e3,
        slowest.2,
        slowest.3,
        slow_file.display()
    );
    // A generator whose inputs are all refused tests only the refusals (a record read under a
    // file name that is not its point's id was refused whatever it held).
    assert!(
        done < 1000 || ok > 0,
        "{name}: none of {done} cases was accepted; the generator no longer reaches the checks \
         behind the first refusal"
    );
    if !findings.by_kind.is_empty() {
        let mut msg = format!("{name}: {} distinct findings\n", findings.by_kind.len());
        for (kind, (n, file, seed, i)) in &findings.by_kind {
            let _ = writeln!(
                msg,
                "- {n}× {kind}\n  first input: {} (replay: SCALELAB_FUZZ_SEED={seed} SCALELAB_FUZZ_FIRST={i} \
                 SCALELAB_FUZZ_CASES=1 cargo test --all-features --test fuzz {name})",
                file.display()
            );
        }
        panic!("{msg}");
    }
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of generators.

fn pick<'a, T>(rng: &mut R, xs: &'a [T]) -> &'a T {
    &xs[rng.random_range(0..xs.len())]
}

/// Strings that have broken parsers before: sizes, durations, names, numbers as text, unicode,
/// control characters, paths that do not exist.
const NASTY_STRINGS: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1T",
    "1TB",
    "1TiB",
    "99999999999999EiB",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775808B",
    "16MiB",
    "64KiB",
    "1K",
    "200k",
    "1M",
    "10G",
    "3.5GiB",
    "0.5M",
    "1e3",
    "1e400",
    "-5M",
    "0B",
    "1.5",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "5m",
    "1h",
    "2d",
    "7d",
    "8d",
    "0s",
    "-1s",
    "1e308s",
    "1e308h",
    "99999999999999999999s",
    "00:05:00",
    "1-00:00:00",
    "99999:00:00",
    "0:0:0",
    "INFINITE",
    "UNLIMITED",
    "2G",
    "999999999T",
    "tuned",
    "naive",
    "faer",
    "streaming",
    "strong",
    "weak",
    "srun",
    "mpirun",
    "iris",
    "breast_cancer",
    "synthetic",
    "digits",
    "random_forest",
    "decision_tree",
    "dummy.most_frequent",
    "hist_gradient_boosting",
    "max_depth=4,8; max_features=sqrt,0.5",
    "max_depth=2,4",
    "max_depth=",
    "max_depth=-1",
    "=",
    ";;",
    "n_estimators=0",
    "trees",
    "folds",
    "grid",
    "all",
    "serial",
    "static",
    "dynamic",
    "accuracy",
    "r2",
    "missing.csv",
    "no/such/dir/data.csv",
    "threads",
    "size",
    "stream.triad",
    "gemm",
    "mpi.pingpong",
    "cuda.gemm",
    "mpi.cv.nested",
    "ü",
    "名前",
    "\u{202e}evil",
    "\u{0}",
    "\u{7f}",
    "a\nb",
    "\"",
    "'",
    "\\",
    "${HOME}",
    "$(reboot)",
    "`x`",
    "-",
    "a b",
    "A",
    "very-long-name-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789",
];

fn nasty_string(rng: &mut R) -> String {
    match rng.random_range(0..20) {
        0 => "x".repeat(rng.random_range(190..260)),
        1 => "é".repeat(rng.random_range(1..3000)),
        2 => {
            // Arbitrary characters, controls and astral ones included.
            (0..rng.random_range(1..20))
                .map(|_| char::from_u32(rng.random_range(0..0x11000)).unwrap_or('\u{fffd}'))
                .collect()
        }
        3 => format!(
            "{}{}",
            rng.random_range(0..1u64 << 60),
            pick(rng, &["", "K", "MiB", "G", "T", "EiB", "s", "m", "h", "d"])
        ),
        4 => REGISTRY[rng.random_range(0..REGISTRY.len())]
            .name()
            .to_string(),
        _ => pick(rng, NASTY_STRINGS).to_string(),
    }
}

fn nasty_int(rng: &mut R) -> i64 {
    match rng.random_range(0..6) {
        0 => rng.random(),
        1 => rng.random_range(-3..70),
        _ => *pick(
            rng,
            &[
                0,
                1,
                -1,
                2,
                3,
                4,
                7,
                8,
                64,
                1000,
                65536,
                1 << 20,
                999_999,
                1_000_000,
                1_000_001,
                i32::MAX as i64,
                i32::MAX as i64 + 1,
                u32::MAX as i64,
                u32::MAX as i64 + 1,
                1 << 53,
                (1 << 53) + 1,
                i64::MAX,
                i64::MIN,
                i64::MIN + 1,
            ],
        ),
    }
}

fn nasty_float(rng: &mut R) -> f64 {
    match rng.random_range(0..4) {
        0 => f64::from_bits(rng.random()),
        1 => rng.random_range(-10.0..10.0),
        _ => *pick(
            rng,
            &[
                0.0,
                -0.0,
                f64::NAN,
                -f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                1e308,
                -1e308,
                f64::MAX,
                f64::MIN_POSITIVE,
                5e-324,
                1e-9,
                0.1,
                0.5,
                1.0,
                1.5,
                2.0,
                3.0,
                120.0,
                1e9,
                604_800.0,
                604_800.1,
            ],
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Manifests.

/// Manifests that use keys the examples in `experiments/` leave out.
const EXTRA_MANIFESTS: &[&str] = &[
    r#"name = "extras"
description = "zip, weak scaling, oversubscription, per-study limits"
repetitions = 3
warmup = 1
timeout = "90s"

[[study]]
name = "zipped"
workload = "stream.triad"
threads = [1, 2, 4]
size = ["1MiB", "2MiB", "4MiB"]
zip = ["threads", "size"]
oversubscribe = true
repetitions = 2
warmup = 0
timeout = "30s"

[[study]]
name = "weak-jacobi"
workload = "stencil.jacobi2d"
scaling = "weak"
weak = "sqrt"
threads = [1, 2]
size = [64, 128]
iterations = [5]

[[study]]
workload = "debug.sleep"
seconds = [0.0, 0.1, 0.2]

[[study]]
workload = "debug.fail"
mode = ["wrong", "panic"]
threads = [1]
"#,
    r#"name = "cluster"
[[study]]
workload = "mpi.pingpong"
ranks = [2]
ranks_per_node = [1, 2]
nodes = [1, 2]
size = [8, "1MiB"]

[[study]]
workload = "cuda.gemm"
gpus = [1, 2]
size = [256]

[slurm]
partition = "debug"
account = "course"
qos = "normal"
constraint = "avx512"
time = "00:10:00"
mem = "4G"
modules = ["openmpi/4.1"]
setup = ["source ~/venv/bin/activate"]
max_array = 1001
throttle = 4
launcher = "mpirun"

[slurm.retry]
out_of_memory = 1.5
timeout = 2.0
failed = false
"#,
    r#"name = "ml"
[[study]]
workload = "cv.kfold"
dataset = "synthetic"
size = [200, "1K"]
features = [4, 8]
classes = 3
estimator = "random_forest"
grid = "max_depth=2,4"
search = "random"
n_iter = 3
folds = 4
scoring = "accuracy"
seed = 7
parallelism = ["grid", "folds"]

[[study]]
workload = "forest.fit"
dataset = "synthetic"
size = 500
features = 6
trees = 5
hyper = "max_depth=3"
"#,
];

/// Every manifest the generator starts from.
fn manifest_corpus() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut out: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    out.extend(EXTRA_MANIFESTS.iter().map(|s| s.to_string()));
    out
}

/// Every key a manifest may hold, anywhere, plus near misses.
fn key_pool() -> Vec<String> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    for list in [
        manifest::TOP_KEYS,
        manifest::STUDY_KEYS,
        manifest::RESOURCE_AXES,
        manifest::SLURM_KEYS,
        manifest::SLURM_RETRY_KEYS,
    ] {
        keys.extend(list.iter().map(|k| k.to_string()));
    }
    for w in REGISTRY {
        keys.extend(w.params().iter().map(|p| p.name.to_string()));
    }
    keys.extend(
        [
            "threds", "", " ", "Threads", "size ", "a.b", "ü", "retry", "study",
        ]
        .iter()
        .map(|k| k.to_string()),
    );
    keys.into_iter().collect()
}

/// Keys whose large values make checking an ML study build a large dataset (the synthetic data
/// is generated at check time; `features` = 10⁶ allocates terabytes). The generator keeps their
/// integers at most [`ML_CAP`], so each case stays fast; bounding them is the checker's job and
/// has its own tests.
const ML_CAPPED: &[&str] = &["features", "classes", "n_iter"];
const ML_CAP: i64 = 64;

fn nasty_scalar(rng: &mut R) -> Tv {
    match rng.random_range(0..10) {
        0..=2 => Tv::from(nasty_int(rng)),
        3 | 4 => Tv::from(nasty_float(rng)),
        5 => Tv::from(rng.random_bool(0.5)),
        6 => Tv::from(
            pick(
                rng,
                &[
                    "1979-05-27T07:32:00Z",
                    "1979-05-27",
                    "07:32:00",
                    "1979-05-27T00:32:00.999999-07:00",
                ],
            )
            .parse::<toml_edit::Datetime>()
            .unwrap(),
        ),
        _ => Tv::from(nasty_string(rng)),
    }
}

fn nasty_value(rng: &mut R, depth: usize) -> Tv {
    match rng.random_range(0..12) {
        0 => Tv::Array(Array::new()),
        5 => {
            // Two values that mean the same: a sweep over them measures one point twice.
            let (a, b): (Tv, Tv) = match rng.random_range(0..4) {
                0 => (Tv::from(0.0), Tv::from(-0.0)),
                1 => (Tv::from(1.0), Tv::from(1.0)),
                2 => (Tv::from(2), Tv::from(2)),
                _ => (Tv::from("1K"), Tv::from("1K")),
            };
            Tv::Array(Array::from_iter([a, b]))
        }
        1 | 2 if depth < 3 => {
            let mut a = Array::new();
            for _ in 0..rng.random_range(1..5) {
                a.push(nasty_value(rng, depth + 1));
            }
            Tv::Array(a)
        }
        3 => {
            // A long axis of small whole numbers (many points).
            let mut a = Array::new();
            let n = rng.random_range(1..40);
            let step = rng.random_range(1..5);
            for i in 0..n {
                a.push(1 + i * step);
            }
            Tv::Array(a)
        }
        4 if depth < 3 => {
            let mut t = InlineTable::new();
            for _ in 0..rng.random_range(0..3) {
                t.insert(nasty_string(rng), nasty_value(rng, depth + 1));
            }
            Tv::InlineTable(t)
        }
        _ => nasty_scalar(rng),
    }
}

fn nasty_item(rng: &mut R) -> Item {
    match rng.random_range(0..16) {
        0 => {
            let mut t = Table::new();
            t.insert("threads", Item::Value(nasty_value(rng, 1)));
            Item::Table(t)
        }
        1 => {
            let mut a = ArrayOfTables::new();
            a.push(Table::new());
            Item::ArrayOfTables(a)
        }
        _ => Item::Value(nasty_value(rng, 0)),
    }
}

/// Where a structural mutation applies: the top level, one `[[study]]`, `[slurm]` or
/// `[slurm.retry]`.
fn pick_table<'d>(rng: &mut R, doc: &'d mut DocumentMut) -> &'d mut Table {
    let root = doc.as_table_mut();
    let studies = root
        .get("study")
        .and_then(Item::as_array_of_tables)
        .map_or(0, ArrayOfTables::len);
    let slurm = root.get("slurm").is_some_and(Item::is_table);
    let retry = slurm && root["slurm"].get("retry").is_some_and(Item::is_table);
    match rng.random_range(0..10) {
        0..=5 if studies > 0 => root["study"]
            .as_array_of_tables_mut()
            .unwrap()
            .get_mut(rng.random_range(0..studies))
            .unwrap(),
        6 if slurm => root["slurm"].as_table_mut().unwrap(),
        7 if retry => root["slurm"]["retry"].as_table_mut().unwrap(),
        _ => root,
    }
}

fn keys_of(t: &Table) -> Vec<String> {
    t.iter().map(|(k, _)| k.to_string()).collect()
}

/// One structural edit of the document.
fn mutate_doc(rng: &mut R, doc: &mut DocumentMut, keys: &[String]) {
    match rng.random_range(0..13) {
        0 => {
            // Duplicate a study (duplicate points, or a study of another workload after later edits).
            if let Some(a) = doc.get_mut("study").and_then(Item::as_array_of_tables_mut) {
                if !a.is_empty() {
                    let t = a.get(rng.random_range(0..a.len())).unwrap().clone();
                    a.push(t);
                }
            }
        }
        1 => {
            if let Some(a) = doc.get_mut("study").and_then(Item::as_array_of_tables_mut) {
                if !a.is_empty() {
                    a.remove(rng.random_range(0..a.len()));
                }
            }
        }
        2 => {
            // Point a study at another workload: its keys now belong to the wrong one.
            let t = pick_table(rng, doc);
            let w = REGISTRY[rng.random_range(0..REGISTRY.len())].name();
            t.insert("workload", toml_edit::value(w));
        }
        3 => {
            let mut t = Table::new();
            for _ in 0..rng.random_range(0..4) {
                let k = *pick(rng, manifest::SLURM_KEYS);
                t.insert(k, nasty_item(rng));
            }
            if rng.random_bool(0.3) {
                let mut r = Table::new();
                r.insert(
                    pick::<&str>(rng, manifest::SLURM_RETRY_KEYS),
                    nasty_item(rng),
                );
                t.insert("retry", Item::Table(r));
            }
            doc.insert("slurm", Item::Table(t));
        }
        4 | 5 => {
            let t = pick_table(rng, doc);
            let ks = keys_of(t);
            if !ks.is_empty() {
                t.remove(pick(rng, &ks).as_str());
            }
        }
        6 | 7 => {
            let t = pick_table(rng, doc);
            t.insert(pick(rng, keys).as_str(), nasty_item(rng));
        }
        8 | 9 => {
            // Replace an existing value, keeping its key.
            let t = pick_table(rng, doc);
            let ks = keys_of(t);
            if !ks.is_empty() {
                let k = pick(rng, &ks).clone();
                t.insert(&k, nasty_item(rng));
            }
        }
        10 => {
            // Rename a key, keeping its value.
            let t = pick_table(rng, doc);
            let ks = keys_of(t);
            if !ks.is_empty() {
                if let Some(v) = t.remove(pick(rng, &ks).as_str()) {
                    t.insert(pick(rng, keys).as_str(), v);
                }
            }
        }
        11 => {
            // Swap the values of two keys.
            let t = pick_table(rng, doc);
            let ks = keys_of(t);
            if ks.len() >= 2 {
                let (a, b) = (pick(rng, &ks).clone(), pick(rng, &ks).clone());
                if let (Some(va), Some(vb)) = (t.remove(&a), t.remove(&b)) {
                    t.insert(&a, vb);
                    t.insert(&b, va);
                }
            }
        }
        _ => {
            // Edit an array value: push, empty it, or repeat its values.
            let t = pick_table(rng, doc);
            let arrays: Vec<String> = t
                .iter()
                .filter(|(_, v)| v.is_array())
                .map(|(k, _)| k.to_string())
                .collect();
            if let Some(k) = arrays.get(rng.random_range(0..arrays.len().max(1))) {
                let a = t[k.as_str()].as_array_mut().unwrap();
                match rng.random_range(0..4) {
                    0 => a.push(nasty_value(rng, 1)),
                    1 => a.clear(),
                    2 if !a.is_empty() => {
                        // A twin of a value, written differently: the same point twice.
                        let twin = match a.get(rng.random_range(0..a.len())).unwrap() {
                            Tv::Float(f) => Tv::from(if *f.value() == 0.0 {
                                -*f.value()
                            } else {
                                *f.value()
                            }),
                            Tv::Integer(i) => Tv::from(*i.value() as f64),
                            other => other.clone(),
                        };
                        a.push(twin);
                    }
                    _ => {
                        let vs: Vec<Tv> = a.iter().cloned().collect();
                        a.extend(vs);
                    }
                }
            }
        }
    }
}

/// Keep the integers of [`ML_CAPPED`] keys small, wherever the edits put them.
fn cap_ml_keys(doc: &mut DocumentMut) {
    fn cap(v: &mut Tv) {
        match v {
            Tv::Integer(i) if *i.value() > ML_CAP => {
                *v = Tv::from(i.value().rem_euclid(ML_CAP + 1))
            }
            Tv::Array(a) => a.iter_mut().for_each(cap),
            _ => {}
        }
    }
    if let Some(a) = doc.get_mut("study").and_then(Item::as_array_of_tables_mut) {
        for t in a.iter_mut() {
            for k in ML_CAPPED {
                if let Some(v) = t.get_mut(k).and_then(Item::as_value_mut) {
                    cap(v);
                }
            }
        }
    }
}

/// Lines a byte-level mutation may insert: headers and keys that start new structure.
const SNIPPETS: &[&str] = &[
    "[[study]]\n",
    "[study]\n",
    "[slurm]\n",
    "[slurm.retry]\n",
    "[[slurm]]\n",
    "workload = \"gemm\"\n",
    "workload = \"debug.sleep\"\n",
    "threads = [1, 2]\n",
    "threads = [1000000]\n",
    "size = [\"1T\"]\n",
    "seconds = [0.0, -0.0]\n",
    "oversubscribe = true\n",
    "zip = [\"threads\", \"size\"]\n",
    "scaling = \"weak\"\n",
    "name = \"x\"\n",
    "study = 1\n",
    "a = \n",
    "= 1\n",
    "\"\"\"",
    "'''",
    "[",
    "]",
    "{",
    "}",
    "#",
    "\\u0000",
    "\r\n",
    "\t",
    "\u{feff}",
];

/// Byte-level edits of a serialized input: flips, cuts, insertions, line edits.
fn mutate_bytes(rng: &mut R, bytes: &mut Vec<u8>, snippets: &[&str], donors: &[Vec<u8>]) {
    let len = bytes.len();
    match rng.random_range(0..10) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            bytes[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            bytes[i] = rng.random();
        }
        2 => bytes.truncate(rng.random_range(0..=len)),
        3 if len > 0 => {
            let a = rng.random_range(0..len);
            let b = (a + rng.random_range(1..64)).min(len);
            bytes.drain(a..b);
        }
        4 => {
            let at = rng.random_range(0..=len);
            let s = pick(rng, snippets).as_bytes();
            bytes.splice(at..at, s.iter().copied());
        }
        5 => {
            let at = rng.random_range(0..=len);
            let n = rng.random_range(1..8);
            let ins: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            bytes.splice(at..at, ins);
        }
        6 | 7 => {
            // Duplicate, drop or move a line (duplicate keys, tables, orphaned values).
            let mut lines: Vec<Vec<u8>> =
                bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            let i = rng.random_range(0..lines.len());
            match rng.random_range(0..3) {
                0 => {
                    let l = lines[i].clone();
                    let at = rng.random_range(0..=lines.len());
                    lines.insert(at, l);
                }
                1 => {
                    lines.remove(i);
                }
                _ => {
                    let j = rng.random_range(0..lines.len());
                    lines.swap(i, j);
                }
            }
            *bytes = lines.join(&b'\n');
        }
        8 if !donors.is_empty() => {
            // Splice a line of another input in.
            let d = pick(rng, donors);
            let lines: Vec<&[u8]> = d.split(|&b| b == b'\n').collect();
            let l = pick(rng, &lines);
            let at = rng.random_range(0..=len);
            let mut ins = l.to_vec();
            ins.push(b'\n');
            bytes.splice(at..at, ins);
        }
        _ => {
            // Deep nesting: a parser that recurses must refuse it, not overflow its stack.
            let depth = rng.random_range(10..3000);
            let at = rng.random_range(0..=len);
            let (open, close) = *pick(rng, &[("[", "]"), ("{a=", "}")]);
            let mut ins = open.repeat(depth);
            ins.push('1');
            ins.push_str(&close.repeat(depth));
            bytes.splice(at..at, ins.bytes());
        }
    }
}

/// What the fuzzed manifests are checked against: every workload of this build on a machine of
/// `cores` cores (few cores keep the per-point checks cheap and reach the oversubscription rules).
fn context(cores: usize) -> Context<'static> {
    Context {
        registry: REGISTRY,
        // A small node, so that generated sizes also reach the memory checks.
        node: scalelab::workload::Node {
            cores,
            memory_bytes: Some(8 << 30),
        },
        mpi: cfg!(feature = "mpi"),
        cuda: cfg!(feature = "cuda"),
        data_dir: None,
    }
}

/// Check a refused manifest's error and an accepted manifest's plan.
fn judge_manifest(
    path: &Path,
    result: Result<manifest::Manifest, manifest::ManifestError>,
    plan: Option<Result<scalelab::plan::Plan, manifest::ManifestError>>,
) -> Result<Outcome, Finding> {
    let v = |m: String| Err(Finding::Violation(m));
    match result {
        Err(e) => {
            if e.path != path {
                return v(format!(
                    "the error names {} instead of {}",
                    e.path.display(),
                    path.display()
                ));
            }
            if e.problems.is_empty() {
                return v("an error without problems".into());
            }
            for p in &e.problems {
                if p.message.trim().is_empty() || p.fix.trim().is_empty() {
                    return v(format!("a problem without message or fix: {}", e.render(p)));
                }
            }
            let text = e.to_string();
            if !text.contains(&path.display().to_string()) {
                return v(format!("the error does not name the file: {text}"));
            }
            Ok(Outcome {
                ok: false,
                shapes: e.problems.iter().map(|p| shape(&p.message)).collect(),
            })
        }
        Ok(_) => {
            let plan = match plan {
                Some(Ok(p)) => p,
                Some(Err(e)) => return v(format!("an accepted manifest does not expand: {e}")),
                None => unreachable!("an accepted manifest is expanded"),
            };
            if plan.points.is_empty() || plan.points.len() > MAX_POINTS {
                return v(format!(
                    "an accepted manifest expands to {} points",
                    plan.points.len()
                ));
            }
            // Points that measure the same thing (same study, resources and parameter values,
            // compared as numbers: 0.0 equals -0.0) are one point.
            let mut same: HashMap<(usize, Resources), Vec<&Point>> = HashMap::new();
            for p in &plan.points {
                let group = same.entry((p.study, p.resources)).or_default();
                if group.len() < 500 {
                    if let Some(q) = group.iter().find(|q| q.params == p.params) {
                        return v(format!(
                            "an accepted manifest has two points that measure the same thing: {} and {} (study {}, {:?})",
                            q.id, p.id, p.study_name, p.params
                        ));
                    }
                }
                group.push(p);
            }
            let mut ids = HashSet::new();
            for p in &plan.points {
                if !ids.insert(&p.id) {
                    return v(format!(
                        "an accepted manifest has two points with id {} (study {}, {:?})",
                        p.id, p.study_name, p.params
                    ));
                }
                if !(p.timeout_s.is_finite() && p.timeout_s > 0.0) || p.repetitions == 0 {
                    return v(format!(
                        "point {} has timeout {} s and {} repetitions",
                        p.id, p.timeout_s, p.repetitions
                    ));
                }
            }
            Ok(Outcome {
                ok: true,
                shapes: Vec::new(),
            })
        }
    }
}

#[test]
fn manifest_checker_never_panics_and_every_refusal_names_file_and_fix() {
    let corpus = manifest_corpus();
    let donors: Vec<Vec<u8>> = corpus.iter().map(|s| s.clone().into_bytes()).collect();
    let keys = key_pool();
    let path = Path::new("experiments/fuzzed.toml");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fuzzed.toml");
    run_target(
        "manifest",
        "toml",
        &Budget::from_env(),
        |rng| {
            let seed = pick(rng, &corpus);
            let mut bytes = if rng.random_bool(0.9) {
                let mut doc: DocumentMut = seed.parse().expect("the corpus parses");
                for _ in 0..rng.random_range(1..6) {
                    mutate_doc(rng, &mut doc, &keys);
                }
                cap_ml_keys(&mut doc);
                doc.to_string().into_bytes()
            } else {
                seed.clone().into_bytes()
            };
            if rng.random_bool(0.4) {
                for _ in 0..rng.random_range(1..4) {
                    mutate_bytes(rng, &mut bytes, SNIPPETS, &donors);
                }
            }
            // Low bits: the cores of the checking machine; bit 8: read through a file.
            let choice = rng.random_range(0..4u64) | (rng.random_bool(0.03) as u64) << 8;
            Case { bytes, choice }
        },
        |case| {
            let cores = [1, 2, 4, 64][(case.choice & 3) as usize];
            let ctx = context(cores);
            let (path, text) = if case.choice & 256 != 0 {
                std::fs::write(&file, &case.bytes).unwrap();
                (file.as_path(), None)
            } else {
                (path, Some(String::from_utf8_lossy(&case.bytes)))
            };
            // Checking and expanding an accepted manifest: neither may panic.
            let (checked, plan) = guarded(|| {
                let checked = match &text {
                    Some(text) => manifest::parse_with(path, text, &ctx),
                    None => manifest::load_with(path, &ctx),
                };
                let plan = checked
                    .as_ref()
                    .ok()
                    .map(|m| scalelab::plan::expand_with_cores(m, cores));
                (checked, plan)
            })
            .map_err(Finding::Panic)?;
            judge_manifest(path, checked, plan)
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Records.

/// Real points: the plans of the example manifests (those this build can check).
fn real_points() -> Vec<Point> {
    let ctx = context(64);
    let mut points = Vec::new();
    for (i, text) in manifest_corpus().iter().enumerate() {
        let path = PathBuf::from(format!("m{i}.toml"));
        if let Ok(m) = manifest::parse_with(&path, text, &ctx) {
            points.extend(scalelab::plan::expand_with_cores(&m, 64).unwrap().points);
        }
    }
    assert!(points.len() > 20, "the example manifests give points");
    points
}

fn record_of(rng: &mut R, point: &Point) -> PointRecord {
    let status = *pick(
        rng,
        &[
            Status::Ok,
            Status::VerifyFailed,
            Status::Timeout,
            Status::Crashed,
            Status::Failed,
        ],
    );
    let reps = rng.random_range(0..6);
    let repetitions = (0..reps)
        .map(|_| Repetition {
            seconds: if rng.random_bool(0.8) {
                rng.random_range(1e-6..10.0)
            } else {
                nasty_float(rng)
            },
            verified: rng.random_bool(0.9),
            metrics: (0..rng.random_range(0..3))
                .map(|_| {
                    (
                        pick(rng, &["latency_us", "comm_s", "x", ""]).to_string(),
                        nasty_float(rng),
                    )
                })
                .collect(),
            details: (0..rng.random_range(0..2))
                .map(|_| {
                    (
                        "chosen".to_string(),
                        pick(rng, &["outer 1: max_depth=4", "", "\u{0}"]).to_string(),
                    )
                })
                .collect(),
        })
        .collect();
    PointRecord {
        point: point.clone(),
        status,
        reason: if status == Status::Ok {
            String::new()
        } else {
            nasty_string(rng)
        },
        repetitions,
        work: Work {
            flops: rng.random_range(0.0..1e12),
            bytes: rng.random_range(0.0..1e12),
        },
        size: rng.random(),
        size_unit: "elements".into(),
        backend: Some(Backend::Rayon),
        host: "node01".into(),
        started: "2026-01-01T00:00:00Z".into(),
        finished: "2026-01-01T00:00:01Z".into(),
        devices: Vec::new(),
        load: rng.random_bool(0.5).then(|| scalelab::load::MachineLoad {
            sampled_by: "parent".into(),
            seconds: rng.random_range(0.0..100.0),
            cores: rng.random_range(1..256),
            cores_needed: rng.random_range(1..256),
            other_cores: rng.random_range(0.0..256.0),
            point_cores: rng.random_range(0.0..256.0),
            steal_share: rng.random_range(0.0..1.0),
            runnable_mean: rng.random_range(0.0..512.0),
            runnable_max: rng.random_range(0..512),
            loadavg_1m: rng.random_range(0.0..100.0),
            clock_mhz: rng
                .random_bool(0.5)
                .then(|| rng.random_range(400.0..6000.0)),
        }),
        slurm: if rng.random_bool(0.2) {
            [("SLURM_JOB_ID".to_string(), "123".to_string())].into()
        } else {
            BTreeMap::new()
        },
        rank_hosts: if rng.random_bool(0.2) {
            vec!["node1".to_string(), "node2".to_string()]
        } else {
            Vec::new()
        },
    }
}

/// A JSON value of a random type, for fields that expect another.
fn wrong_json(rng: &mut R) -> serde_json::Value {
    use serde_json::json;
    match rng.random_range(0..12) {
        0 => json!(null),
        1 => json!(true),
        2 => json!(nasty_int(rng)),
        3 => serde_json::Number::from_f64(nasty_float(rng)).map_or(json!(null), Into::into),
        4 => json!(nasty_string(rng)),
        5 => json!([]),
        6 => json!({}),
        7 => json!(u64::MAX),
        8 => json!(-1),
        9 => json!([1, "a", null]),
        10 => json!({"seconds": -1.0, "verified": true}),
        _ => json!(pick(
            rng,
            &[
                "ok",
                "verify_failed",
                "timeout",
                "crashed",
                "failed",
                "OK",
                "strong",
                "weak"
            ]
        )),
    }
}

/// One edit somewhere in a JSON document: delete a field, change its type, rename it, grow an
/// array.
fn mutate_json(rng: &mut R, v: &mut serde_json::Value) {
    use serde_json::Value as J;
    // Walk down a random path, stopping with some chance at each level.
    let mut cur = v;
    loop {
        let stop = rng.random_bool(0.35);
        let next_key = match &*cur {
            J::Object(m) if !m.is_empty() && !stop => {
                let keys: Vec<String> = m.keys().cloned().collect();
                Some(pick(rng, &keys).clone())
            }
            J::Array(a) if !a.is_empty() && !stop => Some(rng.random_range(0..a.len()).to_string()),
            _ => None,
        };
        match next_key {
            Some(k) => {
                cur = match cur {
                    J::Object(m) => m.get_mut(&k).unwrap(),
                    J::Array(a) => &mut a[k.parse::<usize>().unwrap()],
                    _ => unreachable!(),
                }
            }
            None => break,
        }
    }
    match cur {
        J::Object(m) if !m.is_empty() && rng.random_bool(0.6) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = pick(rng, &keys).clone();
            match rng.random_range(0..3) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    let x = m.remove(&k).unwrap();
                    m.insert(format!("{k}_"), x);
                }
                _ => {
                    m.insert(k, wrong_json(rng));
                }
            }
        }
        J::Array(a) if rng.random_bool(0.5) => {
            if a.is_empty() || rng.random_bool(0.5) {
                a.push(wrong_json(rng));
            } else {
                // Many copies: a record with a huge array of repetitions.
                let x = a[0].clone();
                let n = if rng.random_bool(0.05) {
                    20_000
                } else {
                    rng.random_range(1..50)
                };
                a.extend(std::iter::repeat_n(x, n));
            }
        }
        other => *other = wrong_json(rng),
    }
}

/// Number texts serde_json must refuse or round: out of range, NaN, negative zero.
const NUMBER_SNIPPETS: &[&str] = &[
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-0",
    "-0.0",
    "18446744073709551616",
    "-9223372036854775809",
    "1e-400",
    "0.0000000000000000000000000000001",
    "00",
    "1.",
    ".5",
    "+1",
    "\"\\ud800\"",
    "\"\\u0000\"",
];

/// Bytes that are not UTF-8: a lone continuation byte, a cut sequence, an encoded surrogate.
const NOT_UTF8: &[&[u8]] = &[
    b"\xff",
    b"\xc3",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xc0\xaf",
];

#[test]
fn record_parsing_never_panics_and_every_refusal_names_the_file() {
    let points = real_points();
    // The file a record is read from is named after the point it should hold (`points/<id>.json`).
    let paths: Vec<PathBuf> = points
        .iter()
        .map(|p| PathBuf::from(format!("results/fuzz/run/points/{}.json", p.id)))
        .collect();
    run_target(
        "record",
        "json",
        &Budget::from_env(),
        |rng| {
            let p = rng.random_range(0..points.len());
            let rec = record_of(rng, &points[p]);
            let mut json = serde_json::to_value(&rec).unwrap();
            if rng.random_bool(0.7) {
                for _ in 0..rng.random_range(1..4) {
                    mutate_json(rng, &mut json);
                }
            }
            let mut bytes = if rng.random_bool(0.5) {
                serde_json::to_vec_pretty(&json).unwrap()
            } else {
                serde_json::to_vec(&json).unwrap()
            };
            if rng.random_bool(0.5) {
                for _ in 0..rng.random_range(1..4) {
                    match rng.random_range(0..4) {
                        0 => {
                            // A number written as something out of range.
                            let at = rng.random_range(0..=bytes.len());
                            let s = pick(rng, NUMBER_SNIPPETS).as_bytes();
                            bytes.splice(at..at, s.iter().copied());
                        }
                        1 => {
                            let at = rng.random_range(0..=bytes.len());
                            bytes.splice(at..at, pick(rng, NOT_UTF8).iter().copied());
                        }
                        _ => mutate_bytes(
                            rng,
                            &mut bytes,
                            &["{", "}", "[", "]", ",", ":", "\"", "\"id\": ", "null"],
                            &[],
                        ),
                    }
                }
            }
            // Mostly the record's own point; sometimes another one (a record under the wrong name).
            let expected = if rng.random_bool(0.9) {
                p
            } else {
                rng.random_range(0..points.len())
            };
            Case {
                bytes,
                choice: expected as u64,
            }
        },
        |case| {
            let expected = &points[case.choice as usize];
            let path = paths[case.choice as usize].as_path();
            let r = guarded(|| results::parse_record(&case.bytes, path, expected))
                .map_err(Finding::Panic)?;
            match r {
                Ok(rec) if rec.point != *expected => Err(Finding::Violation(format!(
                    "a record of point {} was accepted as point {}",
                    rec.point.id, expected.id
                ))),
                Ok(rec)
                    if rec
                        .repetitions
                        .iter()
                        .any(|r| !r.seconds.is_finite() || r.seconds < 0.0) =>
                {
                    Err(Finding::Violation(
                        "a record with a negative or non-finite time was accepted".into(),
                    ))
                }
                Ok(_) => Ok(Outcome {
                    ok: true,
                    shapes: Vec::new(),
                }),
                Err(e) => {
                    let text = format!("{e:#}");
                    if !text.contains(&path.display().to_string()) {
                        return Err(Finding::Violation(format!(
                            "the error does not name the file: {text}"
                        )));
                    }
                    Ok(Outcome {
                        ok: false,
                        shapes: vec![shape(&text)],
                    })
                }
            }
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The CSV exports, read back.

/// Cells that have broken CSV readers: empty, numbers out of range, quotes, long text.
const NASTY_CELLS: &[&str] = &[
    "",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "-0",
    "1e999",
    "-1",
    "18446744073709551616",
    "x",
    "true",
    "TRUE",
    "ok",
    "unknown_status",
    "\"",
    "\"unterminated",
    "\"a,b\"",
    "\"\"",
    "param_x",
    "metric_y",
    " 1 ",
    "1,2",
    "\r",
];

#[test]
fn csv_import_never_panics_and_every_refusal_names_the_file() {
    use scalelab::report::{csv, scaling};
    let points = real_points();
    let dir = tempfile::tempdir().unwrap();
    // Valid exports from the crate's own writers, of a few sets of records.
    let mut seeds: Vec<(bool, Vec<u8>)> = Vec::new();
    let mut rng = R::seed_from_u64(FIXED_SEED);
    for set in 0..6 {
        let n = rng.random_range(1..8);
        let records: Vec<PointRecord> = (0..n)
            .map(|_| {
                let p = rng.random_range(0..points.len());
                record_of(&mut rng, &points[p])
            })
            .collect();
        let m = dir.path().join(format!("m{set}.csv"));
        let s = dir.path().join(format!("s{set}.csv"));
        csv::write_measurements(&m, &csv::measurement_rows("fuzz", &records)).unwrap();
        csv::write_summary(
            &s,
            &csv::summary_rows("fuzz", &records, &scaling::series(&records)),
        )
        .unwrap();
        seeds.push((false, std::fs::read(&m).unwrap()));
        seeds.push((true, std::fs::read(&s).unwrap()));
    }
    let donors: Vec<Vec<u8>> = seeds.iter().map(|(_, b)| b.clone()).collect();
    let file = dir.path().join("summary.csv");
    run_target(
        "csv",
        "csv",
        &Budget::from_env(),
        |rng| {
            let (summary, seed) = pick(rng, &seeds);
            let mut bytes = seed.clone();
            for _ in 0..rng.random_range(1..4) {
                if rng.random_bool(0.6) {
                    // Cell-level: replace a cell, or a header name, by a nasty one.
                    let mut rows: Vec<Vec<Vec<u8>>> = bytes
                        .split(|&b| b == b'\n')
                        .map(|l| l.split(|&b| b == b',').map(<[u8]>::to_vec).collect())
                        .collect();
                    let r = rng.random_range(0..rows.len());
                    let c = rng.random_range(0..rows[r].len());
                    match rng.random_range(0..6) {
                        0 => rows[r][c] = pick(rng, NOT_UTF8).to_vec(),
                        1 => rows[r][c] = "9".repeat(rng.random_range(1..400)).into_bytes(),
                        // Drop the cell: a row shorter than the header.
                        2 => drop(rows[r].remove(c)),
                        _ => rows[r][c] = pick(rng, NASTY_CELLS).as_bytes().to_vec(),
                    }
                    bytes = rows
                        .into_iter()
                        .map(|cells| cells.join(&b','))
                        .collect::<Vec<_>>()
                        .join(&b'\n');
                } else {
                    mutate_bytes(
                        rng,
                        &mut bytes,
                        &["param_a", "metric_b", ",", "\"", "\n", "\r\n"],
                        &donors,
                    );
                }
            }
            // Read with the reader of its kind, or sometimes the other one.
            let as_summary = *summary != rng.random_bool(0.1);
            Case {
                bytes,
                choice: as_summary as u64,
            }
        },
        |case| {
            std::fs::write(&file, &case.bytes).unwrap();
            let r = guarded(|| {
                if case.choice == 1 {
                    csv::read_summary(&file).map(|r| r.len())
                } else {
                    csv::read_measurements(&file).map(|r| r.len())
                }
            })
            .map_err(Finding::Panic)?;
            match r {
                Ok(_) => Ok(Outcome {
                    ok: true,
                    shapes: Vec::new(),
                }),
                Err(e) => {
                    let text = format!("{e:#}");
                    if !text.contains(&file.display().to_string()) {
                        return Err(Finding::Violation(format!(
                            "the error does not name the file: {text}"
                        )));
                    }
                    Ok(Outcome {
                        ok: false,
                        shapes: vec![shape(&text)],
                    })
                }
            }
        },
    );
}
