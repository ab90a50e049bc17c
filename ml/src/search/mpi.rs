//! A search's task list distributed over MPI ranks (feature `mpi`).
//!
//! Every rank holds the same dataset and builds the same task list (both depend on the seed
//! alone). [`MpiRunner`] splits the list between the ranks in one of two ways:
//!
//! * **static** scatter: task `i` runs on rank `i mod size`, each rank running its share at its local
//!   [`Parallelism`]; no messages until the results are gathered. Cheap, but a rank that draws slow
//!   tasks (deep trees, large candidates) makes the others wait.
//! * **dynamic** hand-out: rank 0 only coordinates (when there are other ranks): each worker asks for
//!   a task, runs it (its fit parallel inside when the local parallelism allows), and sends the
//!   result back with its next request, so fast ranks take more tasks. One round trip per task.
//!
//! Either way the results are gathered on rank 0 (`MPI_Gatherv` for static, the replies for
//! dynamic) and broadcast back, so every rank returns the full result list, in task order, identical
//! to a serial run: each task's result depends on the task alone. A failing task fails the search
//! on every rank with the same message (the first failing task's, in task order for static).
//!
//! A result travels as three `u64`s: task index, score bits, prediction fingerprint.

use mpi::datatype::PartitionMut;
use mpi::point_to_point::Status;
use mpi::traits::*;
use mpi::Count;

use super::{Parallelism, Runner, Task, TaskFn, TaskResult};

/// Runs a task list over the ranks of `comm`; see the module documentation.
pub struct MpiRunner<'c, C: Communicator> {
    pub comm: &'c C,
    /// The parallelism inside each rank (static), or whether a rank's fits are parallel (dynamic).
    pub local: Parallelism,
    /// Dynamic hand-out by rank 0 instead of a static scatter.
    pub dynamic: bool,
}

const READY: u64 = 0;
const RESULT: u64 = 1;
const FAILED: u64 = 2;
const STOP: u64 = u64::MAX;

impl<C: Communicator> Runner for MpiRunner<'_, C> {
    fn run(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String> {
        if self.dynamic && self.comm.size() > 1 {
            self.dynamic(tasks, fit)
        } else {
            self.static_scatter(tasks, fit)
        }
    }
}

fn encode(i: usize, r: &TaskResult) -> [u64; 3] {
    [i as u64, r.score.to_bits(), r.fingerprint]
}

impl<C: Communicator> MpiRunner<'_, C> {
    /// Broadcast `msg` (the error of `from`, or nothing) from rank `from`.
    fn share_error(&self, from: i32, msg: &str) -> String {
        let root = self.comm.process_at_rank(from);
        let mut len = [msg.len() as u64];
        root.broadcast_into(&mut len[..]);
        let mut bytes = if self.comm.rank() == from {
            msg.as_bytes().to_vec()
        } else {
            vec![0u8; len[0] as usize]
        };
        root.broadcast_into(&mut bytes[..]);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn static_scatter(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String> {
        let (rank, size) = (self.comm.rank() as usize, self.comm.size() as usize);
        let mine: Vec<usize> = (rank..tasks.len()).step_by(size).collect();
        let my_tasks: Vec<Task> = mine.iter().map(|&i| tasks[i].clone()).collect();
        let local = self.local.run(&my_tasks, fit);
        // Agree on failure: the lowest failing rank shares its message.
        let flag = if local.is_err() {
            rank as i32
        } else {
            size as i32
        };
        let mut first = 0i32;
        self.comm
            .all_reduce_into(&flag, &mut first, mpi::collective::SystemOperation::min());
        if (first as usize) < size {
            let msg = self.share_error(first, local.as_ref().err().map_or("", |e| e.as_str()));
            return Err(format!("rank {first}: {msg}"));
        }
        let local = local.unwrap_or_default();
        let send: Vec<u64> = mine
            .iter()
            .zip(&local)
            .flat_map(|(&i, r)| encode(i, r))
            .collect();
        let root = self.comm.process_at_rank(0);
        let mut all = vec![0u64; 3 * tasks.len()];
        if rank == 0 {
            let counts: Vec<Count> = (0..size)
                .map(|r| (3 * (r..tasks.len()).step_by(size).count()) as Count)
                .collect();
            let displs: Vec<Count> = counts
                .iter()
                .scan(0, |acc, &c| {
                    let d = *acc;
                    *acc += c;
                    Some(d)
                })
                .collect();
            let mut part = PartitionMut::new(&mut all[..], counts, &displs[..]);
            root.gather_varcount_into_root(&send[..], &mut part);
        } else {
            root.gather_varcount_into(&send[..]);
        }
        root.broadcast_into(&mut all[..]);
        decode(&all, tasks.len())
    }

    fn dynamic(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String> {
        let root = self.comm.process_at_rank(0);
        let mut all = vec![0u64; 3 * tasks.len()];
        // (task, message) of the first failure in task order, known to rank 0.
        let mut failure: Option<(usize, String)> = None;
        if self.comm.rank() == 0 {
            let (mut next, mut active) = (0usize, self.comm.size() - 1);
            while active > 0 {
                let (msg, status): (Vec<u64>, Status) = self.comm.any_process().receive_vec();
                let src = self.comm.process_at_rank(status.source_rank());
                match msg[0] {
                    RESULT => {
                        let i = msg[1] as usize;
                        all[3 * i..3 * i + 3].copy_from_slice(&msg[1..4]);
                    }
                    FAILED => {
                        let i = msg[1] as usize;
                        let (text, _): (Vec<u8>, Status) = src.receive_vec();
                        let text = format!(
                            "rank {}: {}",
                            status.source_rank(),
                            String::from_utf8_lossy(&text)
                        );
                        if failure.as_ref().is_none_or(|(j, _)| i < *j) {
                            failure = Some((i, text));
                        }
                    }
                    _ => {}
                }
                if next < tasks.len() && failure.is_none() {
                    src.send(&[next as u64][..]);
                    next += 1;
                } else {
                    src.send(&[STOP][..]);
                    active -= 1;
                }
            }
        } else {
            let options = self.local.fit_options();
            root.send(&[READY][..]);
            loop {
                let (msg, _): (Vec<u64>, Status) = root.receive_vec();
                if msg[0] == STOP {
                    break;
                }
                let i = msg[0] as usize;
                match fit(&tasks[i], options) {
                    Ok(r) => {
                        let e = encode(i, &r);
                        root.send(&[RESULT, e[0], e[1], e[2]][..]);
                    }
                    Err(e) => {
                        root.send(&[FAILED, i as u64][..]);
                        root.send(e.as_bytes());
                    }
                }
            }
        }
        let mut failed = [u64::from(failure.is_some())];
        root.broadcast_into(&mut failed[..]);
        if failed[0] == 1 {
            return Err(self.share_error(0, failure.as_ref().map_or("", |f| f.1.as_str())));
        }
        root.broadcast_into(&mut all[..]);
        decode(&all, tasks.len())
    }
}

fn decode(all: &[u64], n: usize) -> Result<Vec<TaskResult>, String> {
    let mut out = vec![None; n];
    for c in all.chunks_exact(3) {
        if let Some(slot) = out.get_mut(c[0] as usize) {
            *slot = Some(TaskResult {
                score: f64::from_bits(c[1]),
                fingerprint: c[2],
            });
        }
    }
    out.into_iter()
        .enumerate()
        .map(|(i, r)| r.ok_or_else(|| format!("task {i}: no result came back from its rank")))
        .collect()
}
