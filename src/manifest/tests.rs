//! Tests of the manifest checker: one test per kind of mistake, asserting the exact message, and
//! a little fuzzing, against the test workloads of [`super::test_support`].

use std::path::Path;

use super::test_support::*;
use super::*;
use crate::value::Size;
use crate::workload::Node;

/// The rendered error of a manifest that must fail.
fn errors(source: &str) -> String {
    match parse_test(source) {
        Ok(_) => panic!("manifest was accepted:\n{source}"),
        Err(e) => e.to_string(),
    }
}

/// A manifest with one problem renders as exactly these two lines and the count line.
fn assert_one(source: &str, line: usize, problem: &str, fix: &str) {
    let expected = format!("error: experiments/x.toml:{line}: {problem}\n  fix: {fix}\n1 problem in experiments/x.toml");
    assert_eq!(errors(source), expected);
}

const HEAD: &str = "name = \"x\"\n\n[[study]]\n";

#[test]
fn a_valid_manifest_is_typed_with_defaults() {
    let src = "name = \"quick\"\ndescription = \"d\"\n\n[[study]]\nworkload = \"t.gemm\"\nthreads = [1, 2]\nsize = [\"64MiB\", 512]\nvariant = \"tuned\"\n\n[[study]]\nname = \"sleepy\"\nworkload = \"debug.sleep\"\nrepetitions = 2\nwarmup = 0\ntimeout = \"90s\"\nseconds = 0.5\n";
    let m = parse_test(src).unwrap();
    assert_eq!(m.name, "quick");
    assert_eq!(m.description, "d");
    assert_eq!((m.repetitions, m.warmup, m.timeout_s), (5, 1, 600.0));
    assert_eq!(m.sha256, sha256_hex(src));
    assert_eq!(m.sha256.len(), 64);
    assert_eq!(m.path, Path::new("experiments/x.toml"));
    assert_eq!(m.source, src);
    assert!(m.slurm.is_none());
    let s = &m.studies()[0];
    assert_eq!(
        (s.index, s.name.as_str(), s.workload.name()),
        (0, "t.gemm", "t.gemm")
    );
    assert_eq!(s.scaling, Scaling::Strong);
    assert_eq!(s.weak_rule, WeakRule::Cbrt, "the workload's weak rule");
    assert_eq!(
        (s.repetitions, s.warmup, s.timeout_s, s.oversubscribe),
        (5, 1, 600.0, false)
    );
    let names: Vec<&str> = s.axes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["threads", "size", "variant"], "manifest order");
    assert_eq!(s.axes[0].values, [Value::Int(1), Value::Int(2)]);
    assert_eq!(
        s.axes[1].values,
        [
            Value::Size(Size::Bytes(64 << 20)),
            Value::Size(Size::Count(512))
        ]
    );
    assert_eq!(
        s.axes[2].values,
        [Value::Text("tuned".into())],
        "a scalar is a one-value axis"
    );
    let t = &m.studies()[1];
    assert_eq!((t.index, t.name.as_str()), (1, "sleepy"));
    assert_eq!(
        (t.repetitions, t.warmup, t.timeout_s),
        (2, 0, 90.0),
        "per-study overrides"
    );
    assert_eq!(t.axes[0].values, [Value::Float(0.5)]);
    assert_eq!(s.point_count(), 4);
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    assert_one(
        "name = \"x\"\n\n[[study]]\nworkload = debug.sleep\n",
        4,
        "invalid TOML at column 12: invalid string; expected `\"`, `'`",
        "correct line 4 (`workload = debug.sleep`): strings need quotes, lists use [ ], one `key = value` per line (see https://toml.io)",
    );
    assert_one(
        "name = \"x\"\nname = \"y\"\n",
        2,
        "invalid TOML at column 1: duplicate key `name` in document root",
        "each key may appear only once in a table; remove or rename the repeated one",
    );
}

#[test]
fn unknown_top_level_key() {
    let src = format!("repetition = 3\n{HEAD}workload = \"debug.sleep\"\n");
    assert_one(
        &src,
        1,
        "unknown top-level key `repetition`",
        "did you mean `repetitions`? the top level takes: name, description, repetitions, warmup, timeout, wait_idle, [[study]], [slurm]",
    );
    let src = format!("threads = [1, 2]\n{HEAD}workload = \"debug.sleep\"\n");
    assert_one(
        &src,
        1,
        "unknown top-level key `threads`",
        "`threads` belongs inside a [[study]] block; the top level takes: name, description, repetitions, warmup, timeout, wait_idle, [[study]], [slurm]",
    );
}

#[test]
fn unknown_study_key_suggests_the_nearest_names() {
    let src = format!("{HEAD}workload = \"t.gemm\"\nthreds = [1, 2]\n");
    assert_one(
        &src,
        5,
        "study 1 (t.gemm): unknown key `threds`",
        "did you mean `threads`? t.gemm takes: threads, ranks, ranks_per_node, nodes, gpus, size, variant, block (see `scalelab list`)",
    );
    let src = format!("{HEAD}workload = \"t.stream\"\nflavour = 3\n");
    assert_one(
        &src,
        5,
        "study 1 (t.stream): unknown key `flavour`",
        "remove it; t.stream takes: threads, ranks, ranks_per_node, nodes, gpus, size (see `scalelab list`)",
    );
}

#[test]
fn missing_workload() {
    assert_one(
        "name = \"x\"\n\n[[study]]\nname = \"lost\"\nthreads = [1, 2]\n",
        3,
        "study 1 (lost): missing `workload`",
        "add workload = \"...\" with a name from `scalelab list`",
    );
}

#[test]
fn unknown_workload_suggests_registry_names() {
    assert_one(
        &format!("{HEAD}workload = \"t.gem\"\nthreds = 3\n"),
        4,
        "study 1 (t.gem): unknown workload `t.gem`",
        "did you mean `t.gemm`? (see `scalelab list` for every workload)",
    );
    assert_one(
        &format!("{HEAD}workload = \"zzz\"\n"),
        4,
        "study 1 (zzz): unknown workload `zzz`",
        "choose one of: t.gemm, t.stream, t.mpi, t.cuda, debug.sleep, debug.fail (see `scalelab list`)",
    );
}

#[test]
fn a_workload_of_a_feature_not_built_in_names_the_feature() {
    assert_one(
        &format!("{HEAD}workload = \"mpi.stencil\"\n"),
        4,
        "study 1 (mpi.stencil): workload `mpi.stencil` is not in this build of scalelab",
        "build with `--features mpi` (install OpenMPI: scripts/install-deps.sh --mpi)",
    );
}

#[test]
fn wrong_value_types() {
    assert_one(
        &format!("repetitions = \"five\"\n{HEAD}workload = \"debug.sleep\"\n"),
        1,
        "`repetitions` must be a whole number, found a string (\"five\")",
        "write e.g. repetitions = 5",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = \"two\"\n"),
        5,
        "study 1 (t.gemm): `threads` must be a whole number, found a string (\"two\")",
        "write e.g. threads = [1, 2, 4]",
    );
    assert_one(
        &format!("{HEAD}workload = \"debug.sleep\"\nseconds = [\"long\"]\n"),
        5,
        "study 1 (debug.sleep): `seconds` must be a number, found a string (\"long\")",
        "write e.g. seconds = [0.5, 1.0]",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nsize = {{ a = 1 }}\n"),
        5,
        "study 1 (t.gemm): `size` must be a size (a count like 4096 or \"10M\", or bytes like \"64MiB\"), found a table",
        "write e.g. size = [\"64MiB\", 4096]",
    );
    assert_one(
        "name = \"x\"\n[study]\nworkload = \"t.gemm\"\n",
        2,
        "`study` must be a list of tables, found a single table [study]",
        "write [[study]] with two brackets (one block per study)",
    );
}

#[test]
fn floats_where_whole_numbers_go() {
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2.0]\n"),
        5,
        "study 1 (t.gemm): `threads` must be a whole number, found a float (2.0)",
        "write e.g. threads = [1, 2, 4]",
    );
    assert_one(
        &format!("warmup = 0.5\n{HEAD}workload = \"t.gemm\"\n"),
        1,
        "`warmup` must be a whole number, found a float (0.5)",
        "write e.g. warmup = 1",
    );
}

#[test]
fn empty_axis_list() {
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nvariant = []\n"),
        5,
        "study 1 (t.gemm): `variant` is an empty list",
        "give at least one value, e.g. variant = [\"naive\", \"blocked\"], or remove the key to use the default",
    );
}

#[test]
fn non_positive_or_malformed_sizes() {
    let src = format!(
        "{HEAD}workload = \"t.stream\"\nsize = [\n  0,\n  \"12 parsecs\",\n  -5,\n  1.5,\n]\n"
    );
    let fix = "  fix: write a count like 4096 or \"10M\", or bytes like \"64MiB\"";
    let expected = [
        "error: experiments/x.toml:6: study 1 (t.stream): `size`: size `0` must be a positive whole number of items or bytes",
        fix,
        "error: experiments/x.toml:7: study 1 (t.stream): `size`: unknown unit `parsecs` in size `12 parsecs`; use k, M, G, T for counts or B, KiB, MiB, GiB, kB, MB, GB for bytes",
        fix,
        "error: experiments/x.toml:8: study 1 (t.stream): `size`: `-5` is not a size; write a count like 4096 or \"10M\", or bytes like \"64MiB\"",
        fix,
        "error: experiments/x.toml:9: study 1 (t.stream): `size`: size `1.5` must be a positive whole number of items or bytes",
        fix,
        "4 problems in experiments/x.toml",
    ];
    assert_eq!(errors(&src), expected.join("\n"));
}

#[test]
fn zero_or_negative_resources() {
    let src = format!(
        "{HEAD}workload = \"t.gemm\"\nthreads = [0, 1]\nranks = -1\nnodes = 0\ngpus = -2\n"
    );
    let expected = [
        "error: experiments/x.toml:5: study 1 (t.gemm): `threads` must be at least 1, found 0",
        "  fix: use 1 or more threads, e.g. threads = [1, 2, 4]",
        "error: experiments/x.toml:6: study 1 (t.gemm): `ranks` must be at least 1, found -1",
        "  fix: use 1 or more ranks, e.g. ranks = [1, 2, 4]",
        "error: experiments/x.toml:7: study 1 (t.gemm): `nodes` must be at least 1, found 0",
        "  fix: use 1 or more nodes, e.g. nodes = [1, 2]",
        "error: experiments/x.toml:8: study 1 (t.gemm): `gpus` must be at least 0, found -2",
        "  fix: use 0 (no GPU) or more, e.g. gpus = [1, 2]",
        "4 problems in experiments/x.toml",
    ];
    assert_eq!(errors(&src), expected.join("\n"));
}

#[test]
fn huge_numbers_are_limits_not_overflows() {
    let src = format!("repetitions = 9223372036854775807\n{HEAD}workload = \"t.gemm\"\n");
    let e = errors(&src);
    assert!(
        e.contains(
            "x.toml:1: `repetitions` = 9223372036854775807 is more than the limit of 1000000"
        ),
        "{e}"
    );
    // TOML itself refuses integers beyond 64 bits: a syntax error.
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nsize = 99999999999999999999\n"),
        5,
        "invalid TOML at column 8: number too large to fit in target type",
        "correct line 5 (`size = 99999999999999999999`): TOML integers must fit in 64 bits; use a smaller number or a size like \"10G\"",
    );
    let src = format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 4000000000]\nsize = \"9999999999999999999999\"\n");
    let e = errors(&src);
    assert!(
        e.contains(
            "x.toml:5: study 1 (t.gemm): `threads` = 4000000000 is more than the limit of 1000000"
        ),
        "{e}"
    );
    assert!(e.contains("x.toml:6: study 1 (t.gemm): `size`: size `9999999999999999999999` must be a positive whole number"), "{e}");
    assert!(
        errors("timeout = 1e300\n[[study]]\nworkload = \"debug.sleep\"\n")
            .contains("more than the limit of one week")
    );
    assert!(
        errors("timeout = nan\n[[study]]\nworkload = \"debug.sleep\"\n")
            .contains("`timeout` must be more than 0 seconds, found NaN")
    );
}

#[test]
fn value_not_among_the_choices() {
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nvariant = [\"naive\", \"tuend\"]\n"),
        5,
        "study 1 (t.gemm): `variant` = \"tuend\" is not a variant of t.gemm",
        "did you mean `tuned`? choose from: naive, blocked, tuned",
    );
    assert_one(
        &format!("{HEAD}workload = \"debug.fail\"\nmode = \"explode\"\n"),
        5,
        "study 1 (debug.fail): `mode` = \"explode\" is not a mode of debug.fail",
        "choose from: panic, abort, error, wrong, ok",
    );
}

#[test]
fn repeated_values_in_an_axis() {
    let fix = "  fix: remove the repeated values (each point runs once; use repetitions = N to time it more often)";
    let expected = [
        "error: experiments/x.toml:5: study 1 (t.gemm): `threads` lists 1 more than once",
        fix,
        "error: experiments/x.toml:6: study 1 (t.gemm): `size` lists \"1KiB\" more than once",
        fix,
        "2 problems in experiments/x.toml",
    ];
    let src = format!(
        "{HEAD}workload = \"t.gemm\"\nthreads = [1, 2, 1]\nsize = [\"1KiB\", \"1024B\", 1024]\n"
    );
    assert_eq!(
        errors(&src),
        expected.join("\n"),
        "1KiB and 1024B are the same size; 1024 (a count) is not"
    );
}

#[test]
fn zip_naming_an_axis_that_is_not_in_the_study() {
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\nsize = [64, 128]\nzip = [\"thread\", \"size\"]\n"),
        7,
        "study 1 (t.gemm): zip names `thread`, which is not an axis of this study",
        "did you mean `threads`? the study's axes are: threads, size",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\nzip = [\"threads\", \"size\"]\n"),
        6,
        "study 1 (t.gemm): zip names `size`, which is not an axis of this study",
        "set `size` in the study (e.g. size = [...]) to zip it",
    );
}

#[test]
fn zipped_axes_of_different_lengths() {
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\nsize = [64, 128, 256]\nzip = [[\"threads\", \"size\"]]\n"),
        7,
        "study 1 (t.gemm): zipped axes have different lengths: threads has 2 values, size has 3 values",
        "give zipped axes the same number of values, or remove them from `zip` to cross them",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\nzip = [\"threads\"]\n"),
        6,
        "study 1 (t.gemm): zip group [\"threads\"] names fewer than two axes",
        "zip pairs two or more axes that move together, e.g. zip = [\"threads\", \"size\"]; or remove it",
    );
}

#[test]
fn weak_scaling_needs_a_swept_parallel_axis() {
    assert_one(
        &format!("{HEAD}workload = \"t.stream\"\nscaling = \"weak\"\nthreads = [2]\nsize = [\"1M\", \"2M\"]\n"),
        5,
        "study 1 (t.stream): scaling = \"weak\" but no parallel axis is swept (threads, ranks and gpus have one value each)",
        "sweep threads (e.g. threads = [1, 2]) or use scaling = \"strong\"",
    );
}

#[test]
fn weak_scaling_needs_a_size() {
    assert_one(
        &format!("{HEAD}workload = \"debug.sleep\"\nscaling = \"weak\"\nthreads = [1, 2]\n"),
        5,
        "study 1 (debug.sleep): scaling = \"weak\" needs a workload with a `size` parameter; debug.sleep has none",
        "use scaling = \"strong\" (the default)",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.stream\"\nscaling = \"wek\"\n"),
        5,
        "study 1 (t.stream): `scaling` must be \"strong\" or \"weak\", found \"wek\"",
        "did you mean `weak`? strong keeps the problem size fixed, weak grows it with the workers",
    );
}

#[test]
fn ranks_or_mpi_workloads_need_the_mpi_feature() {
    let fix = "build with `--features mpi` (install OpenMPI: scripts/install-deps.sh --mpi)";
    assert_one(
        &format!("{HEAD}workload = \"debug.sleep\"\nranks = [1, 2]\n"),
        5,
        "study 1 (debug.sleep): ranks = 2 needs MPI, which this build does not include",
        fix,
    );
    assert_one(
        &format!("{HEAD}workload = \"t.mpi\"\nranks = [1, 2]\n"),
        4,
        "study 1 (t.mpi): workload `t.mpi` runs on MPI, which this build does not include",
        fix,
    );
    parse_full(&format!("{HEAD}workload = \"t.mpi\"\nranks = [1, 2]\n")).unwrap();
    let e = parse_full(&format!("{HEAD}workload = \"t.stream\"\nranks = [1, 2]\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("ranks = 2 but t.stream is a rayon workload that does not use MPI"),
        "{e}"
    );
}

#[test]
fn gpus_or_cuda_workloads_need_the_cuda_feature() {
    assert_one(
        &format!("{HEAD}workload = \"debug.sleep\"\ngpus = [0, 1]\n"),
        5,
        "study 1 (debug.sleep): gpus = 1 needs CUDA, which this build does not include",
        "build with `--features cuda`",
    );
    assert_one(
        &format!("{HEAD}workload = \"t.cuda\"\n"),
        4,
        "study 1 (t.cuda): workload `t.cuda` runs on CUDA, which this build does not include",
        "build with `--features cuda`",
    );
    parse_full(&format!("{HEAD}workload = \"t.cuda\"\ngpus = [1, 2]\n")).unwrap();
}

#[test]
fn the_build_context_follows_the_features() {
    let c = Context::this_build();
    assert_eq!(c.mpi, cfg!(feature = "mpi"));
    assert_eq!(c.cuda, cfg!(feature = "cuda"));
    assert!(c.node.cores >= 1);
    assert_eq!(c.node.memory_bytes, crate::machine::memory_total());
    assert_eq!(c.registry.len(), crate::workload::REGISTRY.len());
}

#[test]
fn duplicate_study_names() {
    let src = "name = \"x\"\n\n[[study]]\nworkload = \"t.gemm\"\n\n[[study]]\nworkload = \"t.gemm\"\nvariant = \"tuned\"\n";
    assert_one(
        src,
        6,
        "study 2 (t.gemm): study name `t.gemm` is already used by study 1",
        "give each study a unique name = \"...\" (studies of the same workload need one)",
    );
    let src = "name = \"x\"\n\n[[study]]\nworkload = \"t.gemm\"\n\n[[study]]\nname = \"b\"\nworkload = \"t.gemm\"\n";
    assert_eq!(parse_test(src).unwrap().studies()[1].name, "b");
}

#[test]
fn the_workloads_own_check_names_the_point() {
    let src = format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\nvariant = [\"naive\", \"blocked\"]\nsize = [128, 100]\n");
    assert_one(
        &src,
        3,
        "study 1 (t.gemm): point threads=1, variant=blocked, size=100 (and 1 more point): block 64 does not divide n = 100; use a multiple of 64",
        "change or remove these values (t.gemm checks every point before anything runs)",
    );
}

#[test]
fn threads_beyond_the_cores_need_oversubscribe() {
    let src = format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2, 4, 8]\n");
    assert_one(
        &src,
        5,
        "study 1 (t.gemm): point threads=8: 8 threads exceed the 4 cores of a node",
        "set oversubscribe = true in the study, or lower threads",
    );
    let m = parse_test(&format!("{src}oversubscribe = true\n")).unwrap();
    assert!(m.studies()[0].oversubscribe);
    // Threads within the cores (a 2-core CI machine running threads = [1, 2]) are fine.
    let r = registry();
    let two = Context {
        node: Node {
            cores: 2,
            ..ctx(&r).node
        },
        ..ctx(&r)
    };
    parse_with(
        Path::new("x.toml"),
        &format!("{HEAD}workload = \"t.gemm\"\nthreads = [1, 2]\n"),
        &two,
    )
    .unwrap();
}

#[test]
fn nodes_or_ranks_per_node_not_both() {
    let src =
        format!("{HEAD}workload = \"t.mpi\"\nranks = [2, 4]\nnodes = 1\nranks_per_node = 2\n");
    let e = parse_full(&src).unwrap_err().to_string();
    assert!(
        e.contains("x.toml:7: study 1 (t.mpi): give either `nodes` or `ranks_per_node`, not both"),
        "{e}"
    );
    let src = format!("{HEAD}workload = \"t.mpi\"\nranks = [1, 2]\nnodes = [2]\n");
    let e = parse_full(&src).unwrap_err().to_string();
    assert!(
        e.contains("x.toml:6: study 1 (t.mpi): point ranks=1, nodes=2: 2 nodes but only 1 ranks"),
        "{e}"
    );
}

#[test]
fn ranks_per_node_that_repeat_a_point_are_an_error() {
    let src = format!("{HEAD}workload = \"t.mpi\"\nranks = 4\nranks_per_node = [4, 8]\n");
    let e = parse_full(&src).unwrap_err().to_string();
    assert!(e.contains("x.toml:3: study 1 (t.mpi): point "), "{e}");
    assert!(
        e.contains("(ranks=4, nodes=1) is produced more than once"),
        "{e}"
    );
}

#[test]
fn every_problem_is_collected_and_counted() {
    let src = "name = \"my exp\"\nwarmup = -1\n\n[[study]]\nworkload = \"t.gemm\"\nthreds = 2\n\n[[study]]\nworkload = \"nope\"\n\n[[study]]\nthreads = [1]\n";
    let e = errors(src);
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        lines,
        [
            "error: experiments/x.toml:1: `name` = \"my exp\" may only contain letters, digits, `_`, `.` and `-`",
            "error: experiments/x.toml:2: `warmup` must be at least 0, found -1",
            "error: experiments/x.toml:6: study 1 (t.gemm): unknown key `threds`",
            "error: experiments/x.toml:9: study 2 (nope): unknown workload `nope`",
            "error: experiments/x.toml:11: study 3: missing `workload`",
        ]
    );
    assert!(e.ends_with("\n5 problems in experiments/x.toml"), "{e}");
}

#[test]
fn missing_name_and_studies() {
    let e = errors("");
    assert_eq!(
        e,
        [
            "error: experiments/x.toml: missing `name`",
            "  fix: add name = \"...\" at the top; it names the results folder results/<name>/",
            "error: experiments/x.toml: the manifest has no studies",
            "  fix: add at least one [[study]] block with a workload, e.g.",
            "        [[study]]",
            "        workload = \"debug.sleep\"",
            "        threads = [1, 2]",
            "2 problems in experiments/x.toml",
        ]
        .join("\n")
    );
}

/// `wait_idle` at the top level is `run --wait-idle=SECONDS`: seconds, a duration, true (120 s,
/// as the bare flag) or false; anything else is refused with the line, the problem and the fix.
#[test]
fn wait_idle_in_seconds_a_duration_or_a_switch() {
    for (text, want) in [
        ("wait_idle = 60", Some(60)),
        ("wait_idle = \"2m\"", Some(120)),
        ("wait_idle = true", Some(120)),
        ("wait_idle = false", None),
        ("", None),
    ] {
        let m = parse_test(&format!(
            "name = \"x\"\n{text}\n[[study]]\nworkload = \"debug.sleep\"\n"
        ))
        .unwrap();
        assert_eq!(m.wait_idle_s, want, "{text}");
    }
    let fix = "write the longest wait before each point in seconds or as a duration, e.g. wait_idle = 60 or wait_idle = \"2m\" (true: 120 s, as --wait-idle; false: no waiting)";
    assert_one(
        &format!("wait_idle = \"soon\"\n{HEAD}workload = \"debug.sleep\"\n"),
        1,
        "`wait_idle`: \"soon\" is not a duration",
        fix,
    );
    assert_one(
        &format!("wait_idle = 0\n{HEAD}workload = \"debug.sleep\"\n"),
        1,
        "`wait_idle` must be between 1 second and one day (86400 s), found 0",
        fix,
    );
    assert_one(
        &format!("wait_idle = [60]\n{HEAD}workload = \"debug.sleep\"\n"),
        1,
        "`wait_idle` must be seconds, a duration like \"2m\", or true/false, found a list",
        fix,
    );
}

#[test]
fn timeouts_in_seconds_or_with_units() {
    assert_eq!(parse_duration("90s"), Ok(90.0));
    assert_eq!(parse_duration("10m"), Ok(600.0));
    assert_eq!(parse_duration("1h"), Ok(3600.0));
    assert_eq!(parse_duration("1.5h"), Ok(5400.0));
    assert_eq!(parse_duration("45"), Ok(45.0));
    assert_eq!(parse_duration("2 min"), Ok(120.0));
    assert_eq!(parse_duration("10 minutes"), Ok(600.0));
    assert!(parse_duration("soon").is_err());
    assert!(parse_duration("10y").is_err());
    for (text, seconds) in [
        ("timeout = 30", 30.0),
        ("timeout = 2.5", 2.5),
        ("timeout = \"2m\"", 120.0),
    ] {
        let m = parse_test(&format!(
            "name = \"x\"\n{text}\n[[study]]\nworkload = \"debug.sleep\"\n"
        ))
        .unwrap();
        assert_eq!((m.timeout_s, m.studies()[0].timeout_s), (seconds, seconds));
    }
    assert_one(
        &format!("timeout = \"ten minutes\"\n{HEAD}workload = \"debug.sleep\"\n"),
        1,
        "`timeout`: \"ten minutes\" is not a duration",
        "write seconds as a number or a duration like \"90s\", \"10m\", \"1h\", e.g. timeout = \"10m\"",
    );
}

#[test]
fn slurm_keys_are_checked_and_kept() {
    let ok = format!(
        "{HEAD}workload = \"debug.sleep\"\n\n[slurm]\npartition = \"compute\"\ntime = \"00:10:00\"\nmem = \"4G\"\nmodules = [\"openmpi/4.1\"]\nsetup = []\nmax_array = 1000\nthrottle = 8\n"
    );
    let m = parse_test(&ok).unwrap();
    assert_eq!(
        m.slurm.unwrap(),
        crate::slurm::Settings {
            partition: Some("compute".into()),
            time_s: Some(600),
            mem_mb: Some(4096),
            modules: vec!["openmpi/4.1".into()],
            max_array: Some(1000),
            throttle: Some(8),
            ..crate::slurm::Settings::default()
        }
    );
    let bad = format!("{HEAD}workload = \"debug.sleep\"\n\n[slurm]\npartiton = \"compute\"\ntime = \"ten\"\nmodules = \"rust\"\nthrottle = 0\n");
    let e = errors(&bad);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "error: experiments/x.toml:7: [slurm]: unknown key `partiton`",
            "  fix: did you mean `partition`? [slurm] takes: partition, account, qos, constraint, time, mem, modules, setup, max_array, throttle, launcher, retry",
            "error: experiments/x.toml:8: [slurm]: `time` must be a SLURM time limit, found a string (\"ten\")",
            "  fix: write minutes, \"HH:MM:SS\" or \"D-HH:MM:SS\", e.g. time = \"00:10:00\"",
            "error: experiments/x.toml:9: [slurm]: `modules` must be a list of strings, found a string (\"rust\")",
            "  fix: write e.g. modules = [\"openmpi/4.1\", \"rust\"]",
            "error: experiments/x.toml:10: [slurm]: `throttle` must be at least 1, found 0",
            "  fix: write e.g. throttle = 8",
            "4 problems in experiments/x.toml",
        ]
    );
}

/// `time` and `mem` follow one grammar whether written as a number or a string, with the limits
/// `sbatch` and `sacct` reading use: at most 6 digits a time field, 9 digits of memory, more than 0.
#[test]
fn slurm_time_and_mem_have_one_grammar() {
    let with = |lines: &str| format!("{HEAD}workload = \"debug.sleep\"\n\n[slurm]\n{lines}\n");
    let settings = |lines: &str| parse_test(&with(lines)).unwrap().slurm.unwrap();
    let s = settings("time = 90\nmem = 512");
    assert_eq!((s.time_s, s.mem_mb), (Some(90 * 60), Some(512)));
    let s = settings("time = \"999999\"\nmem = \"2g\"");
    assert_eq!((s.time_s, s.mem_mb), (Some(999_999 * 60), Some(2048)));
    let s = settings("time = \"1-00:00:00\"\nmem = \"999999999\"");
    assert_eq!((s.time_s, s.mem_mb), (Some(86_400), Some(999_999_999)));
    let s = settings("time = \"1:30\"\nmem = \"512K\"");
    assert_eq!((s.time_s, s.mem_mb), (Some(90), Some(1)));

    let e = errors(&with(
        "time = 1234567\nmem = \"1234567890\"\n[slurm.retry]\ntimeout = 2",
    ));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "error: experiments/x.toml:7: [slurm]: `time` must be a SLURM time limit, found an integer (1234567)",
            "  fix: write minutes, \"HH:MM:SS\" or \"D-HH:MM:SS\", e.g. time = \"00:10:00\"",
            "error: experiments/x.toml:8: [slurm]: `mem` must be a SLURM memory size, found a string (\"1234567890\")",
            "  fix: write megabytes or a number with K, M, G or T, e.g. mem = \"4G\"",
            "2 problems in experiments/x.toml",
        ]
    );
    for bad in [
        "time = \"0\"",
        "time = \"00:00:00\"",
        "time = 0",
        "time = -5",
        "time = 9223372036854775807",
        "time = \"1234567-00\"",
        "time = \"1:2:3:4\"",
        "time = \" 10\"",
        "time = 1.5",
    ] {
        assert!(
            errors(&with(bad)).contains("`time` must be a SLURM time limit"),
            "{bad}"
        );
    }
    for bad in [
        "mem = \"0\"",
        "mem = \"0G\"",
        "mem = 0",
        "mem = \"9999999999T\"",
        "mem = \"1.5G\"",
        "mem = \"4Gn\"",
        "mem = \"4GB\"",
        "mem = \"G\"",
    ] {
        let e = errors(&with(bad));
        assert!(
            e.contains("`mem` must be a SLURM memory size"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn slurm_retry_policy_and_launcher_are_checked() {
    let ok = format!(
        "{HEAD}workload = \"debug.sleep\"\n\n[slurm]\npartition = \"debug\"\nlauncher = \"mpirun\"\n[slurm.retry]\nout_of_memory = 3\ntimeout = 0\nfailed = false\n"
    );
    let m = parse_test(&ok).unwrap();
    let s = m.slurm.unwrap();
    assert_eq!(s.launcher, crate::slurm::Launcher::Mpirun);
    assert_eq!(
        s.retry,
        crate::slurm::RetryPolicy {
            out_of_memory: 3.0,
            timeout: 0.0,
            failed: false
        }
    );
    let bad = format!("{HEAD}workload = \"debug.sleep\"\n\n[slurm]\nlauncher = \"ssh\"\n[slurm.retry]\nout_of_memroy = 2.0\ntimeout = 0.5\nfailed = \"yes\"\n");
    let e = errors(&bad);
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        [
            "error: experiments/x.toml:7: [slurm]: `launcher` must be \"srun\" or \"mpirun\", found a string (\"ssh\")",
            "  fix: write launcher = \"srun\" (SLURM starts the ranks) or launcher = \"mpirun\" (mpirun inside the allocation)",
            "error: experiments/x.toml:9: [slurm.retry]: unknown key `out_of_memroy`",
            "  fix: did you mean `out_of_memory`? [slurm.retry] takes: out_of_memory, timeout, failed",
            "error: experiments/x.toml:10: [slurm.retry]: `timeout` must be a factor between 1 and 100, or 0, found a float (0.5)",
            "  fix: write e.g. timeout = 2.0 to resubmit with twice the --time, or timeout = 0 to leave such points failed",
            "error: experiments/x.toml:11: [slurm.retry]: `failed` must be true or false, found a string (\"yes\")",
            "  fix: write failed = true to resubmit points whose task failed, crashed or was cancelled",
            "4 problems in experiments/x.toml",
        ]
    );
}

#[test]
fn studies_may_be_inline_tables() {
    let m = parse_test(
        "name = \"x\"\nstudy = [{ workload = \"debug.sleep\", seconds = [0.1, 0.2] }]\n",
    )
    .unwrap();
    assert_eq!(m.studies()[0].axes[0].values.len(), 2);
    let e = errors("name = \"x\"\nstudy = [{ workload = \"debug.sleep\", secs = 1 }]\n");
    assert!(
        e.starts_with("error: experiments/x.toml:2: study 1 (debug.sleep): unknown key `secs`"),
        "{e}"
    );
}

#[test]
fn load_names_a_missing_or_binary_file() {
    let e = load(Path::new("experiments/does-not-exist.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("error: experiments/does-not-exist.toml: cannot read the manifest: "),
        "{e}"
    );
    assert!(e.contains("fix: check the path"), "{e}");
    assert!(
        e.ends_with("1 problem in experiments/does-not-exist.toml"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("garbage.toml");
    std::fs::write(&bin, [0xff, 0xfe, 0x00, 0x41]).unwrap();
    let e = load(&bin).unwrap_err().to_string();
    assert!(
        e.contains("is not UTF-8 text (invalid byte at offset 0)"),
        "{e}"
    );
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "name = \"g\"\n[[study]]\nworkload = \"debug.sleep\"\n",
    )
    .unwrap();
    assert_eq!(load(&good).unwrap().path, good);
    let e = load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("is a folder, not a manifest file"), "{e}");
}

/// No input makes the checker panic: garbage, wrong types everywhere, extreme numbers.
#[test]
fn no_input_panics() {
    let cases = [
        "",
        "\u{0}\u{1}\u{2}",
        "[[[[",
        "name = 5\nstudy = 5",
        "name = \"x\"\nstudy = [1, \"a\", [2]]",
        "name = \"x\"\nstudy = [[]]",
        "name = \"x\"\nstudy = []",
        "name = \"x\"\nslurm = 3\n[[study]]\nworkload = 7",
        "name = \".\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = [[1]]\nsize = [true, 1979-05-27, {}, [], -0.0, inf, -inf, nan]",
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nzip = 5",
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nzip = [[\"a\"], \"b\", 3]",
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nzip = [[], []]",
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads.x = 1\nsize.y.z = 2",
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\n[study.nested]\na = 1",
        "name = \"x\"\n[[study]]\nworkload = \"t.stream\"\nscaling = \"weak\"\nthreads = [1, 1000000]\nsize = \"1000000000000000000\"\noversubscribe = true",
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [1e308, -1e308, 5e-324]\nrepetitions = -9223372036854775808",
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\ntimeout = -1\nwarmup = 99999999999\noversubscribe = \"yes\"",
        "name = \"x\"\n[[study]]\nworkload = \"t.mpi\"\nranks = [1, 1000000]\nranks_per_node = 1000000\nthreads = 1000000",
        "name = \"x\"\n\"quoted\\nkey\" = 1\n[[study]]\nworkload = \"\"\n\"\\u0000\" = 2",
        "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    ];
    for src in cases {
        let _ = parse_test(src);
        let _ = parse_full(src);
    }
    // Many axes: a plan beyond the point limit is a problem, not an allocation.
    let mut big =
        String::from("name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\noversubscribe = true\n");
    big.push_str(&format!(
        "seconds = [{}]\n",
        (1..=2000)
            .map(|i| format!("{i}.5"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    big.push_str(&format!(
        "threads = [{}]\n",
        (1..=1000)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let e = errors(&big);
    assert!(
        e.contains("the study expands to 2000000 points, more than the limit of 1000000"),
        "{e}"
    );

    // Pseudo-random bytes and mutations of a valid manifest.
    let valid = "name = \"q\"\nrepetitions = 3\n[[study]]\nworkload = \"t.gemm\"\nthreads = [1, 2]\nsize = [\"128KiB\", 128]\nvariant = [\"naive\", \"blocked\"]\nzip = [\"threads\", \"size\"]\n[slurm]\ntime = \"1:00\"\n";
    parse_test(valid).unwrap();
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: Vec<char> = "[]{}=\"',.-_0123456789abcxyz \n\tn#e+:".chars().collect();
    for _ in 0..2000 {
        let mut chars: Vec<char> = valid.chars().collect();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() % chars.len() as u64) as usize;
            let c = alphabet[(next() % alphabet.len() as u64) as usize];
            match next() % 3 {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                _ => {
                    chars.remove(i);
                }
            }
        }
        let src: String = chars.into_iter().collect();
        if let Err(e) = parse_test(&src) {
            assert!(!e.problems.is_empty());
            let text = e.to_string();
            assert!(text.starts_with("error: experiments/x.toml"), "{text}");
        }
    }
}

#[test]
fn values_equal_as_values_repeat_a_point() {
    let src = format!("{HEAD}workload = \"debug.sleep\"\nseconds = [0.0, 1.5, -0.0]\n");
    let err = errors(&src);
    assert!(err.contains("`seconds` lists -0 more than once"), "{err}");
    assert!(err.ends_with("1 problem in experiments/x.toml"), "{err}");
}

#[test]
fn a_name_too_long_hears_the_limit() {
    let err = errors(&format!(
        "name = \"{}\"\n\n[[study]]\nworkload = \"t.gemm\"\n",
        "a".repeat(201)
    ));
    assert!(
        err.contains("`name` has 201 characters, more than the limit of 200"),
        "{err}"
    );
    assert!(!err.contains("may only contain"), "{err}");
    parse_test(&format!(
        "name = \"{}\"\n\n[[study]]\nworkload = \"t.gemm\"\n",
        "a".repeat(200)
    ))
    .unwrap();
}
