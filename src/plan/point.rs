//! Points: one combination of axis values, the unit that is launched, timed and recorded.

use serde::{Deserialize, Serialize};

use crate::workload::{self, Params, Workload};

/// Strong scaling keeps the problem fixed while workers grow; weak scaling grows it with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    Strong,
    Weak,
}

impl Scaling {
    pub fn as_str(self) -> &'static str {
        match self {
            Scaling::Strong => "strong",
            Scaling::Weak => "weak",
        }
    }
}

/// The resource axes of a point: what it asks the machine (or the scheduler) for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Resources {
    /// Nodes (1 for local runs).
    pub nodes: u32,
    /// MPI ranks in total (1 without MPI).
    pub ranks: u32,
    /// rayon worker threads per rank.
    pub threads: u32,
    /// GPUs per rank (0 for CPU workloads).
    pub gpus: u32,
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            nodes: 1,
            ranks: 1,
            threads: 1,
            gpus: 0,
        }
    }
}

impl Resources {
    /// The parallelism p used by the scaling math: ranks × threads × max(gpus, 1).
    pub fn workers(&self) -> u64 {
        let (r, t, g) = (
            self.ranks as u64,
            self.threads as u64,
            self.gpus.max(1) as u64,
        );
        r.saturating_mul(t).saturating_mul(g)
    }
}

/// One point of a plan. Everything `scalelab point` needs to run it is here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Short stable hash of the canonical (study, values): the same point in an edited manifest keeps
    /// its id, so a resumed run recognises finished points.
    pub id: String,
    /// Index of the study in the manifest (0-based).
    pub study: usize,
    /// Study label: its `name` key, or its workload name.
    pub study_name: String,
    pub workload: String,
    pub scaling: Scaling,
    pub resources: Resources,
    /// Workload parameters, defaults filled in; weak-scaling sizes already scaled.
    pub params: Params,
    pub repetitions: u32,
    pub warmup: u32,
    /// Wall-clock limit of the whole point process, in seconds.
    pub timeout_s: f64,
    /// More ranks or threads than cores was allowed by the manifest for this point.
    #[serde(default)]
    pub oversubscribed: bool,
}

impl Point {
    /// The registered workload of this point. Plans only hold registered names.
    pub fn workload(&self) -> Option<&'static dyn Workload> {
        workload::find(&self.workload)
    }
}
