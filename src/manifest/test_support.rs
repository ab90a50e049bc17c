//! Test workloads and contexts shared by the manifest and plan tests: the test workloads stand in
//! for the registry's kernels, so the tests do not depend on which workloads exist while the
//! registry grows, and the context is a fixed 4-core node.

use std::path::Path;

use super::{parse_with, Context, Manifest, ManifestError};
use crate::workload::{
    Backend, Description, Instance, Node, ParamKind, ParamSpec, Params, Target, WeakRule, Work,
    Workload,
};

/// `t.gemm`: a size, a variant and a block size; `blocked` needs a block that divides the size.
pub(crate) struct TestGemm;

impl Workload for TestGemm {
    fn description(&self) -> &'static Description {
        const PARAMS: &[ParamSpec] = &[
            ParamSpec {
                name: "size",
                kind: ParamKind::Size,
                default: "256",
                doc: "matrix order",
            },
            ParamSpec {
                name: "variant",
                kind: ParamKind::Choice(&["naive", "blocked", "tuned"]),
                default: "naive",
                doc: "implementation",
            },
            ParamSpec {
                name: "block",
                kind: ParamKind::Int,
                default: "64",
                doc: "block side",
            },
        ];
        const GEMM: Description =
            Description::new("t.gemm", "test matrix product", Backend::Rayon, PARAMS)
                .weak_rule(WeakRule::Cbrt);
        &GEMM
    }
    fn check(&self, params: &Params, _target: &Target) -> Result<(), String> {
        let n = params.size().side(8);
        let b = params.int("block");
        if params.variant() == "blocked" && !n.is_multiple_of(b) {
            return Err(format!(
                "block {b} does not divide n = {n}; use a multiple of {b}"
            ));
        }
        Ok(())
    }
    fn work(&self, params: &Params) -> Work {
        let n = params.size().side(8) as f64;
        Work {
            flops: 2.0 * n * n * n,
            bytes: 24.0 * n * n,
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.5
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        anyhow::bail!("test workload")
    }
}

/// `t.stream`: a memory-bound workload with only a size (linear weak rule).
pub(crate) struct TestStream;

impl Workload for TestStream {
    fn description(&self) -> &'static Description {
        const STREAM: Description = Description::new(
            "t.stream",
            "test triad",
            Backend::Rayon,
            &[ParamSpec {
                name: "size",
                kind: ParamKind::Size,
                default: "1M",
                doc: "elements per array",
            }],
        );
        &STREAM
    }
    fn work(&self, params: &Params) -> Work {
        let n = params.size().count(8) as f64;
        Work {
            flops: 2.0 * n,
            bytes: 24.0 * n,
        }
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        anyhow::bail!("test workload")
    }
}

/// `t.mpi` and `t.cuda`: workloads that need an optional part of the build.
pub(crate) struct TestBackend(&'static Description);

const TEST_BACKEND_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "size",
    kind: ParamKind::Size,
    default: "1000",
    doc: "elements",
}];

impl Workload for TestBackend {
    fn description(&self) -> &'static Description {
        self.0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        anyhow::bail!("test workload")
    }
}

pub(crate) static TEST_MPI: TestBackend = TestBackend(&Description::new(
    "t.mpi",
    "test backend",
    Backend::Mpi,
    TEST_BACKEND_PARAMS,
));
pub(crate) static TEST_CUDA: TestBackend = TestBackend(&Description::new(
    "t.cuda",
    "test backend",
    Backend::Cuda,
    TEST_BACKEND_PARAMS,
));

/// The test workloads and the registry's `debug.*` workloads.
pub(crate) fn registry() -> Vec<&'static dyn Workload> {
    let mut r: Vec<&'static dyn Workload> = vec![&TestGemm, &TestStream, &TEST_MPI, &TEST_CUDA];
    r.extend(
        crate::workload::REGISTRY
            .iter()
            .copied()
            .filter(|w| w.name().starts_with("debug.")),
    );
    r
}

/// A 4-core, 16 GiB node without MPI or CUDA.
pub(crate) fn ctx<'a>(registry: &'a [&'static dyn Workload]) -> Context<'a> {
    Context {
        registry,
        node: Node {
            cores: 4,
            memory_bytes: Some(16 << 30),
        },
        mpi: false,
        cuda: false,
        data_dir: None,
    }
}

/// Parse as `experiments/x.toml` against [`registry`] on [`ctx`].
pub(crate) fn parse_test(source: &str) -> Result<Manifest, ManifestError> {
    parse_with(Path::new("experiments/x.toml"), source, &ctx(&registry()))
}

/// Parse with MPI and CUDA compiled in.
pub(crate) fn parse_full(source: &str) -> Result<Manifest, ManifestError> {
    let r = registry();
    let c = Context {
        mpi: true,
        cuda: true,
        ..ctx(&r)
    };
    parse_with(Path::new("experiments/x.toml"), source, &c)
}
