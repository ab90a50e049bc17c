//! Ping-pong between ranks 0 and 1: the latency and bandwidth of one point-to-point message.
//!
//! Each iteration, rank 0 sends `size` bytes to rank 1 (blocking `MPI_Send`) and waits for rank 1's
//! reply of the same size (`MPI_Recv`); rank 1 does the mirror image. One iteration is one round
//! trip, so the one-way time per message is `t / (2 · iterations)`, the quantity OSU's
//! `osu_latency` reports, and `2 · size · iterations / t` is the unidirectional bandwidth IMB's
//! PingPong reports (both directions counted once each). Ranks other than 0 and 1 stay idle.
//!
//! The message alternates between two prepared buffers whose byte patterns depend on the iteration
//! parity and on the sender, so the receiver can check, after the run, that the last message
//! arrived whole and from the right iteration; nothing is written inside the timed loop except by
//! MPI itself. OSU uses 10 000 iterations for messages up to 8 KiB and 1 000 above (plus 100 / 10
//! untimed warm-up iterations); scalelab's point runner provides the warm-up repetitions and its
//! default of 1 000 iterations is OSU's large-message count at every size (8 B: about 1 ms per
//! repetition here, 4 MiB: about 1 s).
//!
//! Work: **0 flops**, **2 · size · iterations bytes** (each message counted once).
//!
//! References: OSU Micro-Benchmarks 7.x, `osu_latency` and `osu_bw` (D. K. Panda et al.,
//! <https://mvapich.cse.ohio-state.edu/benchmarks/>); Intel MPI Benchmarks User Guide, "PingPong".

use std::time::Instant;

use mpi::traits::*;

use super::{since, Comm};

/// Bytes moved by `iterations` round trips of `size`-byte messages: `2 · size · iterations`.
pub fn bytes(size: usize, iterations: usize) -> f64 {
    2.0 * size as f64 * iterations as f64
}

/// Byte `k` of the message sent by rank `sender` in an iteration of parity `parity`.
pub fn pattern(sender: i32, parity: usize, k: usize) -> u8 {
    (k.wrapping_mul(31) ^ (parity * 0x5A) ^ (sender as usize * 0xA5)).wrapping_add(1) as u8
}

/// A prepared ping-pong on one rank.
pub struct PingPong {
    comm: Comm,
    iterations: usize,
    /// The two messages this rank sends (even, odd iterations); empty on idle ranks.
    send: [Vec<u8>; 2],
    recv: Vec<u8>,
    /// Seconds of the last run on this rank (0 on idle ranks).
    elapsed: f64,
    ran: bool,
}

impl PingPong {
    /// Prepare on every rank of `comm`: rank 0 and 1 allocate their messages. Errors if `comm` has
    /// fewer than 2 ranks.
    pub fn new(comm: &Comm, size: usize, iterations: usize) -> Result<PingPong, String> {
        if comm.size() < 2 {
            return Err(format!(
                "ping-pong needs at least 2 ranks and this point has {}; set `ranks = [2]` in the \
                 study (ranks beyond 2 stay idle)",
                comm.size()
            ));
        }
        let me = comm.rank();
        let active = me < 2;
        let make = |parity| {
            if active {
                (0..size).map(|k| pattern(me, parity, k)).collect()
            } else {
                Vec::new()
            }
        };
        Ok(PingPong {
            comm: comm.duplicate(),
            iterations,
            send: [make(0), make(1)],
            recv: if active { vec![0; size] } else { Vec::new() },
            elapsed: 0.0,
            ran: false,
        })
    }

    /// `iterations` round trips (ranks 0 and 1; other ranks return at once).
    pub fn run(&mut self) {
        let start = Instant::now();
        let me = self.comm.rank();
        if me < 2 {
            let peer = self.comm.process_at_rank(1 - me);
            for it in 0..self.iterations {
                let msg = &self.send[it % 2][..];
                if me == 0 {
                    peer.send(msg);
                    peer.receive_into(&mut self.recv[..]);
                } else {
                    peer.receive_into(&mut self.recv[..]);
                    peer.send(msg);
                }
            }
        }
        self.elapsed = since(start);
        self.ran = true;
    }

    /// One-way time per message of the last run in µs, `t / (2 · iterations)` (0 on idle ranks).
    pub fn latency_us(&self) -> f64 {
        if self.comm.rank() < 2 && self.iterations > 0 {
            self.elapsed / (2.0 * self.iterations as f64) * 1e6
        } else {
            0.0
        }
    }

    /// Check that the last message received holds the peer's pattern of the last iteration, then
    /// poison the receive buffer so the next check needs a new run.
    pub fn check(&mut self) -> Result<(), String> {
        let me = self.comm.rank();
        if me >= 2 || self.iterations == 0 {
            return Ok(());
        }
        if !std::mem::replace(&mut self.ran, false) {
            return Err("mpi.pingpong: checked without a run".into());
        }
        let parity = (self.iterations - 1) % 2;
        let peer = 1 - me;
        let bad = self
            .recv
            .iter()
            .enumerate()
            .filter(|&(k, &v)| v != pattern(peer, parity, k))
            .count();
        let first = self
            .recv
            .iter()
            .enumerate()
            .find(|&(k, &v)| v != pattern(peer, parity, k))
            .map(|(k, &v)| (k, v));
        // Poison with the pattern of the other parity: a run that receives nothing fails.
        for (k, v) in self.recv.iter_mut().enumerate() {
            *v = pattern(peer, 1 - parity, k);
        }
        match first {
            None => Ok(()),
            Some((k, v)) => Err(format!(
                "mpi.pingpong: rank {me} received {bad} of {} bytes wrong in the last message; first \
                 at byte {k}: {v} instead of {}",
                self.recv.len(),
                pattern(peer, parity, k)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_differ_by_parity_and_sender() {
        for k in 0..512 {
            assert_ne!(pattern(0, 0, k), pattern(0, 1, k), "k={k}");
            assert_ne!(pattern(0, 0, k), pattern(1, 0, k), "k={k}");
        }
        assert_eq!(bytes(8, 1000), 16_000.0);
    }
}
