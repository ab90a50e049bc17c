//! Collective operations: `MPI_Allreduce` (sum), `MPI_Bcast` (from rank 0) and `MPI_Allgather`,
//! each called `iterations` times on a message of `n` doubles per rank.
//!
//! Rank `r` contributes `value(r, i) = (r + 1) · (i mod 1024 + 1)`: small integers, so the sum over
//! any number of ranks, in whatever order the MPI library adds, is exact and the result can be
//! checked bitwise: allreduce gives `p(p+1)/2 · (i mod 1024 + 1)`, broadcast gives rank 0's
//! values everywhere, allgather gives block `q` equal to rank `q`'s values.
//!
//! **Counting convention.** scalelab's `work` cannot see the number of ranks, so the bytes of one
//! repetition are the *algorithmic* count of nccl-tests (`algbw = S / t`): `S = 8n` bytes per call,
//! the message each rank contributes. The link-level *bus bandwidth* of nccl-tests needs `p`, so
//! each kernel reports it itself ([`Collective::bus_bytes`]): `S · 2(p−1)/p` for allreduce (a ring
//! reduce-scatter then allgather sends and receives that much per rank), `S` for broadcast and
//! `S · (p−1)` for allgather (each rank receives the `p−1` other contributions). Allreduce's
//! `(p−1) · n` additions per call are reported the same way ([`Collective::reduce_flops`]); the
//! workload counts 0 flops, which keeps these bandwidth-bound kernels reported in GB/s.
//!
//! References: nccl-tests, `doc/PERFORMANCE.md` (algorithm and bus bandwidth,
//! <https://github.com/NVIDIA/nccl-tests>); OSU Micro-Benchmarks `osu_allreduce`, `osu_bcast`,
//! `osu_allgather`; R. Thakur, R. Rabenseifner and W. Gropp, "Optimization of Collective
//! Communication Operations in MPICH", IJHPCA 19(1), 2005.

use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::traits::*;

use super::{since, Comm};

/// Which collective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `MPI_Allreduce` with `MPI_SUM`.
    Allreduce,
    /// `MPI_Bcast` from rank 0.
    Bcast,
    /// `MPI_Allgather`.
    Allgather,
}

impl Op {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Allreduce => "allreduce",
            Op::Bcast => "bcast",
            Op::Allgather => "allgather",
        }
    }
}

/// Bytes per repetition under the algorithmic-bandwidth convention: `8n · iterations`.
pub fn bytes(n: usize, iterations: usize) -> f64 {
    8.0 * n as f64 * iterations as f64
}

/// Bus bytes per rank per call, nccl-tests' convention, for `n` doubles per rank on `p` ranks.
pub fn bus_bytes_per_call(op: Op, n: usize, p: usize) -> f64 {
    let s = 8.0 * n as f64;
    let p = p.max(1) as f64;
    match op {
        Op::Allreduce => s * 2.0 * (p - 1.0) / p,
        Op::Bcast => s,
        Op::Allgather => s * (p - 1.0),
    }
}

/// Element `i` of rank `r`'s contribution.
pub fn value(r: usize, i: usize) -> f64 {
    ((r + 1) * (i % 1024 + 1)) as f64
}

/// A prepared collective on one rank.
pub struct Collective {
    op: Op,
    comm: Comm,
    n: usize,
    iterations: usize,
    send: Vec<f64>,
    /// Allreduce: `n`, broadcast: `n` (the message itself), allgather: `p · n`.
    recv: Vec<f64>,
    elapsed: f64,
}

impl Collective {
    /// Prepare `op` on every rank of `comm` with `n ≥ 1` doubles per rank.
    pub fn new(op: Op, comm: &Comm, n: usize, iterations: usize) -> Collective {
        let (me, p) = (comm.rank() as usize, comm.size() as usize);
        let n = n.max(1);
        let send: Vec<f64> = match op {
            Op::Bcast => Vec::new(),
            _ => (0..n).map(|i| value(me, i)).collect(),
        };
        let recv = match op {
            Op::Allreduce => vec![f64::NAN; n],
            Op::Bcast if me == 0 => (0..n).map(|i| value(0, i)).collect(),
            Op::Bcast => vec![f64::NAN; n],
            Op::Allgather => vec![f64::NAN; n * p],
        };
        Collective {
            op,
            comm: comm.duplicate(),
            n,
            iterations,
            send,
            recv,
            elapsed: 0.0,
        }
    }

    /// `iterations` calls of the collective.
    pub fn run(&mut self) {
        let start = Instant::now();
        for _ in 0..self.iterations {
            match self.op {
                Op::Allreduce => self.comm.all_reduce_into(
                    &self.send[..],
                    &mut self.recv[..],
                    SystemOperation::sum(),
                ),
                Op::Bcast => self
                    .comm
                    .process_at_rank(0)
                    .broadcast_into(&mut self.recv[..]),
                Op::Allgather => self
                    .comm
                    .all_gather_into(&self.send[..], &mut self.recv[..]),
            }
        }
        self.elapsed = since(start);
    }

    /// Time per call of the last run on this rank, in µs.
    pub fn latency_us(&self) -> f64 {
        self.elapsed / self.iterations.max(1) as f64 * 1e6
    }

    /// Bus bytes per rank of one repetition (see the module documentation).
    pub fn bus_bytes(&self) -> f64 {
        bus_bytes_per_call(self.op, self.n, self.comm.size() as usize) * self.iterations as f64
    }

    /// Additions of one repetition: `(p−1) · n` per allreduce call, 0 otherwise.
    pub fn reduce_flops(&self) -> f64 {
        match self.op {
            Op::Allreduce => {
                (self.comm.size() as f64 - 1.0) * self.n as f64 * self.iterations as f64
            }
            _ => 0.0,
        }
    }

    /// Seconds of the last run on this rank.
    pub fn elapsed(&self) -> f64 {
        self.elapsed
    }

    /// Check this rank's result of the last run exactly, then poison it (the broadcast root's
    /// message is left alone: it is the input).
    pub fn check(&mut self) -> Result<(), String> {
        let (me, p) = (self.comm.rank() as usize, self.comm.size() as usize);
        if self.iterations == 0 || (self.op == Op::Bcast && me == 0) {
            return Ok(());
        }
        let n = self.n;
        let want = |k: usize| match self.op {
            Op::Allreduce => (p * (p + 1) / 2 * (k % 1024 + 1)) as f64,
            Op::Bcast => value(0, k),
            Op::Allgather => value(k / n, k % n),
        };
        let mut bad = 0usize;
        let mut first = None;
        for (k, &v) in self.recv.iter().enumerate() {
            if v.to_bits() != want(k).to_bits() {
                bad += 1;
                first.get_or_insert((k, v));
            }
        }
        self.recv.fill(f64::NAN);
        match first {
            None => Ok(()),
            Some((k, v)) => Err(format!(
                "mpi.{}: rank {me} of {p}: {bad} of {} received values wrong; first at index {k}: \
                 {v} instead of {}",
                self.op.name(),
                self.recv.len(),
                want(k)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_bytes_follow_nccl_tests() {
        assert_eq!(bus_bytes_per_call(Op::Allreduce, 1, 4), 8.0 * 1.5);
        assert_eq!(bus_bytes_per_call(Op::Allreduce, 1, 1), 0.0);
        assert_eq!(bus_bytes_per_call(Op::Bcast, 2, 4), 16.0);
        assert_eq!(bus_bytes_per_call(Op::Allgather, 1, 4), 24.0);
        assert_eq!(bytes(128, 10), 10240.0);
    }

    #[test]
    fn sums_are_exact() {
        // The largest sum at 4096 ranks is still an exact integer in f64.
        let p = 4096usize;
        let s: f64 = (0..p).map(|r| value(r, 1023)).sum();
        assert_eq!(s, (p * (p + 1) / 2 * 1024) as f64);
    }
}
