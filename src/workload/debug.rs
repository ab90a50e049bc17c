//! Diagnostic workloads that misbehave on purpose, so that failure handling can be tested and taught:
//! a point that sleeps (to exceed its time limit), and one that panics, aborts, errors or returns a
//! wrong answer. They do no useful work; their work counts are zero.

use anyhow::bail;

use super::{Backend, Instance, ParamKind, ParamSpec, Params, Work, Workload};

/// `debug.sleep`: sleeps `seconds` per repetition.
pub struct Sleep;

impl Workload for Sleep {
    fn name(&self) -> &'static str {
        "debug.sleep"
    }
    fn summary(&self) -> &'static str {
        "sleeps for `seconds` per repetition (to exercise time limits)"
    }
    fn backend(&self) -> Backend {
        Backend::Debug
    }
    fn params(&self) -> &'static [ParamSpec] {
        &[ParamSpec {
            name: "seconds",
            kind: ParamKind::Float,
            default: "0.01",
            doc: "seconds to sleep in each repetition",
        }]
    }
    fn problem_size(&self, _params: &Params) -> u64 {
        0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params) -> anyhow::Result<Box<dyn Instance>> {
        let seconds = params.float("seconds");
        if !(0.0..=86_400.0).contains(&seconds) {
            bail!("debug.sleep: seconds = {seconds} is outside 0..=86400");
        }
        Ok(Box::new(SleepInstance { seconds }))
    }
}

struct SleepInstance {
    seconds: f64,
}

impl Instance for SleepInstance {
    fn run(&mut self) {
        std::thread::sleep(std::time::Duration::from_secs_f64(self.seconds));
    }
    fn verify(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// `debug.fail`: fails in the way `mode` names.
pub struct Fail;

const FAIL_MODES: &[&str] = &["panic", "abort", "error", "wrong", "ok"];

impl Workload for Fail {
    fn name(&self) -> &'static str {
        "debug.fail"
    }
    fn summary(&self) -> &'static str {
        "fails on purpose: panics, aborts, errors in prepare, or gives a wrong answer (mode)"
    }
    fn backend(&self) -> Backend {
        Backend::Debug
    }
    fn params(&self) -> &'static [ParamSpec] {
        &[ParamSpec {
            name: "mode",
            kind: ParamKind::Choice(FAIL_MODES),
            default: "panic",
            doc: "panic | abort | error | wrong (fails verification) | ok (succeeds)",
        }]
    }
    fn problem_size(&self, _params: &Params) -> u64 {
        0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params) -> anyhow::Result<Box<dyn Instance>> {
        let mode = params.str("mode").to_string();
        if mode == "error" {
            bail!("debug.fail: prepare failed on purpose (mode = \"error\")");
        }
        Ok(Box::new(FailInstance { mode }))
    }
}

struct FailInstance {
    mode: String,
}

impl Instance for FailInstance {
    fn run(&mut self) {
        match self.mode.as_str() {
            "panic" => panic!("debug.fail: panicked on purpose (mode = \"panic\")"),
            "abort" => std::process::abort(),
            _ => {}
        }
    }
    fn verify(&mut self) -> Result<(), String> {
        if self.mode == "wrong" {
            Err("debug.fail: result 41 differs from the reference 42 (mode = \"wrong\")".into())
        } else {
            Ok(())
        }
    }
}
