//! The mock executor: records with timings from a known model, no processes, no kernels.

use anyhow::Result;

use super::Executor;
use crate::plan::Point;
use crate::results::{PointRecord, Repetition, RunDir, Status};
use crate::units::now_rfc3339;

/// Times follow `t(p) = serial_s + parallel_s / p` for strong scaling, with p the point's workers,
/// and `serial_s + parallel_s` for every p under weak scaling (perfect weak scaling). Amdahl's
/// serial fraction of such a run is `serial_s / (serial_s + parallel_s)`. Repetition `i` is
/// stretched by `1 + jitter · i` so summaries have a spread. `debug.fail` points fail as their
/// mode says, so failure paths can be exercised without processes.
pub struct MockExecutor {
    pub serial_s: f64,
    pub parallel_s: f64,
    pub jitter: f64,
}

impl MockExecutor {
    /// The time of one repetition of `point` under the model.
    pub fn model_seconds(&self, point: &Point) -> f64 {
        let p = point.resources.workers() as f64;
        match point.scaling {
            crate::plan::Scaling::Strong => self.serial_s + self.parallel_s / p,
            crate::plan::Scaling::Weak => self.serial_s + self.parallel_s,
        }
    }
}

impl Executor for MockExecutor {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord> {
        let mode = match point.params.get("mode") {
            Some(crate::value::Value::Text(m)) if point.workload == "debug.fail" => m.as_str(),
            _ => "ok",
        };
        let rec = match mode {
            "ok" => {
                let mut rec = crate::point_runner::unmeasured(point, Status::Ok, String::new());
                let t = self.model_seconds(point);
                rec.repetitions = (0..point.repetitions)
                    .map(|i| Repetition {
                        seconds: t * (1.0 + self.jitter * i as f64),
                        verified: true,
                        metrics: Default::default(),
                        details: Default::default(),
                    })
                    .collect();
                rec
            }
            "wrong" => crate::point_runner::unmeasured(
                point,
                Status::VerifyFailed,
                "mock: wrong result".into(),
            ),
            "error" => crate::point_runner::unmeasured(
                point,
                Status::Failed,
                "mock: prepare failed".into(),
            ),
            other => {
                crate::point_runner::unmeasured(point, Status::Crashed, format!("mock: {other}"))
            }
        };
        let rec = PointRecord {
            finished: now_rfc3339(),
            ..rec
        };
        run.write_record(&rec)?;
        Ok(rec)
    }
}
