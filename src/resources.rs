//! The resource axes of a point (nodes, ranks, threads, GPUs): what it asks the machine or the
//! scheduler for. They sit below every room that reads them (the manifest that sweeps them, the
//! workloads that size their work by them, the executors and the load sampler) so that none of
//! those has to reach into another for the type.

use serde::{Deserialize, Serialize};

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

    /// Threads on the busiest node: ranks per node (rounded up) × threads per rank, what
    /// `oversubscribed` compares with a node's cores.
    pub fn workers_per_node(&self) -> u64 {
        u64::from(self.ranks.div_ceil(self.nodes.max(1))) * u64::from(self.threads)
    }

    /// The cores a point needs: threads × ranks (at least 1), what the load sampler compares with
    /// the cores other work kept busy.
    pub fn cores_needed(&self) -> u32 {
        self.threads.max(1).saturating_mul(self.ranks.max(1))
    }
}
