//! Monte Carlo π over MPI: the chunks of [`crate::pi`] split statically over the ranks, the hit
//! counts combined with `MPI_Reduce` (sum) on rank 0.
//!
//! The samples are cut into the same chunks of [`crate::pi::CHUNK`] samples as the serial and rayon
//! kernels, each drawn by [`crate::pi::chunk_hits`] from its own counter-seeded generators; rank `r`
//! of `p` takes the contiguous block [`super::block_range`]`(chunks, p, r)` and spreads it over its
//! rayon threads. Integer counts add exactly in any order, so the total on rank 0 equals
//! [`crate::pi::hits_serial`] at any number of ranks and threads.
//!
//! Work: **3 flops** per sample and **0 bytes**, as [`crate::pi`] counts them; the reduction sends
//! one 8-byte integer per rank.
//!
//! Reference: N. Metropolis and S. Ulam, "The Monte Carlo Method", JASA 44 (1949); the static
//! block distribution of chunks is MPI's classic `cpi` example turned into blocks (W. Gropp et al.,
//! *Using MPI*, 3rd ed., §3.3).

use std::ops::Range;

use mpi::collective::SystemOperation;
use mpi::traits::*;
use rayon::prelude::*;

use super::{block_range, Comm};
use crate::pi::{chunk_hits, CHUNK};

/// The chunks rank `rank` of `ranks` draws for `samples` samples.
pub fn chunks_of_rank(samples: u64, ranks: usize, rank: usize) -> Range<u64> {
    let total = samples.div_ceil(CHUNK);
    let total = usize::try_from(total).expect("chunk count fits usize");
    let r = block_range(total, ranks, rank);
    r.start as u64..r.end as u64
}

/// Hits among the samples of `chunks`, over the current rayon pool.
pub fn hits_in(samples: u64, seed: u64, chunks: Range<u64>) -> u64 {
    chunks
        .into_par_iter()
        .map(|c| chunk_hits(seed, c, (samples - c * CHUNK).min(CHUNK)))
        .sum()
}

/// The distributed hit count: this rank's chunks in its rayon pool, then a sum on rank 0. Returns
/// the total on rank 0 and `None` elsewhere. A collective call: every rank of `comm` must make it.
pub fn hits(comm: &Comm, samples: u64, seed: u64) -> Option<u64> {
    let chunks = chunks_of_rank(samples, comm.size() as usize, comm.rank() as usize);
    let local = hits_in(samples, seed, chunks);
    let root = comm.process_at_rank(0);
    if comm.rank() == 0 {
        let mut total = 0u64;
        root.reduce_into_root(&local, &mut total, SystemOperation::sum());
        Some(total)
    } else {
        root.reduce_into(&local, SystemOperation::sum());
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pi::hits_serial;
    use crate::testing::pool;

    #[test]
    fn rank_blocks_add_up_to_the_serial_count() {
        for samples in [1u64, CHUNK, 3 * CHUNK + 5, 10 * CHUNK - 1] {
            let want = hits_serial(samples, 42);
            for ranks in 1..6 {
                let got: u64 = (0..ranks)
                    .map(|r| {
                        pool(2).install(|| hits_in(samples, 42, chunks_of_rank(samples, ranks, r)))
                    })
                    .sum();
                assert_eq!(got, want, "samples={samples} ranks={ranks}");
            }
        }
    }
}
