//! Distributed DGEMM `C = A·B` with SUMMA on a 2-D process grid; the local products run the tuned
//! kernel ([`crate::gemm::Workspace`]) on each rank's rayon threads (hybrid MPI × rayon).
//!
//! **Distribution.** The `p` ranks form a `pr × pc` grid ([`super::grid_dims`]). The `n × n`
//! matrices are cut into `nb × nb` square blocks of side `b = ⌈n / nb⌉` with `nb = lcm(pr, pc)`
//! (zero-padded to `nb · b`, which leaves the top-left `n × n` of the product unchanged); rank
//! `(r, c)` owns block rows `r·mi .. (r+1)·mi` and block columns `c·mj .. (c+1)·mj` of A, B and C,
//! `mi = nb / pr`, `mj = nb / pc`, each block stored contiguously. Square blocks let every local
//! product be one call of the tuned square kernel.
//!
//! **SUMMA** (van de Geijn and Watts): for each block index `k` of the shared dimension,
//!
//! ```text
//! the owner of block column k of A in each process row broadcasts it along its row   (MPI_Bcast)
//! the owner of block row k of B in each process column broadcasts it along its column (MPI_Bcast)
//! every rank: C[i][j] += A[i][k] · B[k][j] for its mi × mj blocks                      (tuned DGEMM)
//! ```
//!
//! Work: **2n³ flops** and **24n² bytes** (the compulsory traffic, as the shared-memory DGEMM
//! counts it). Communication, not in the work: each rank receives the panels it does not own,
//! [`comm_bytes`] = `8·(nb·b)²·((1 − 1/pc)/pr + (1 − 1/pr)/pc)` bytes per product; time spent in the
//! broadcasts is reported as `comm_s`.
//!
//! **Verification** (Freivalds, per rank, no communication): with a seeded random vector `x`,
//! the rank's block of `C·x` restricted to its own columns, `C[I, J]·x[J]`, must equal
//! `A[I, :]·(B[:, J]·x[J])`, computed once when the instance is made from the entries' generator,
//! within the componentwise rounding bound `4(n+2)ε·|A[I,:]|(|B[:,J]||x[J]|)`.
//!
//! References: R. A. van de Geijn and J. Watts, "SUMMA: Scalable Universal Matrix Multiplication
//! Algorithm", Concurrency: Practice and Experience 9(4), 1997; R. Freivalds, "Probabilistic
//! machines can use less running time", IFIP Congress 1977.

use std::time::Instant;

use mpi::topology::Color;
use mpi::traits::*;
use rayon::prelude::*;

use super::{grid_dims, lcm, signed_unit, since, splitmix64, Comm};
use crate::gemm::Workspace;

const SEED_A: u64 = 0xA11C_E5ED;
const SEED_B: u64 = 0xB0B5_EED5;
const SEED_X: u64 = 0x0C0F_FEE5;

/// Entry `(i, j)` of the `n × n` matrix generated from `seed` (0 outside the matrix: padding).
pub fn entry(seed: u64, n: usize, i: usize, j: usize) -> f64 {
    if i < n && j < n {
        signed_unit(splitmix64(((i * n + j) as u64) ^ seed.rotate_left(32)))
    } else {
        0.0
    }
}

fn x_entry(j: usize) -> f64 {
    signed_unit(splitmix64(j as u64 ^ SEED_X))
}

/// The block layout for `n` on `p` ranks: `(pr, pc, nb, b)`.
pub fn layout(n: usize, p: usize) -> (usize, usize, usize, usize) {
    let (pr, pc) = grid_dims(p);
    let nb = lcm(pr, pc);
    (pr, pc, nb, n.div_ceil(nb).max(1))
}

/// Bytes each rank receives in the broadcasts of one product (see the module documentation).
pub fn comm_bytes(n: usize, p: usize) -> f64 {
    let (pr, pc, nb, b) = layout(n, p);
    let side = (nb * b) as f64;
    let (pr, pc) = (pr as f64, pc as f64);
    8.0 * side * side * ((1.0 - 1.0 / pc) / pr + (1.0 - 1.0 / pr) / pc)
}

/// This rank's part of a distributed product.
pub struct Summa {
    n: usize,
    b: usize,
    nb: usize,
    /// Grid position and blocks per rank in each direction.
    r: usize,
    c: usize,
    mi: usize,
    mj: usize,
    row: Comm,
    col: Comm,
    /// A's blocks, block column after block column (a block column is one contiguous panel).
    a: Vec<f64>,
    /// B's blocks, block row after block row (a block row is one contiguous panel).
    bm: Vec<f64>,
    /// C's blocks, block row after block row.
    cm: Vec<f64>,
    apanel: Vec<f64>,
    bpanel: Vec<f64>,
    tmp: Vec<f64>,
    ws: Workspace,
    /// `A[I,:]·(B[:,J]·x[J])` and its rounding bound, for this rank's rows.
    z: Vec<f64>,
    bound: Vec<f64>,
    comm_s: f64,
    compute_s: f64,
    ran: bool,
}

impl Summa {
    /// Prepare on every rank of `comm` (a collective call: it splits row and column communicators).
    pub fn new(comm: &Comm, n: usize) -> Result<Summa, String> {
        if n == 0 {
            return Err("the matrix order must be at least 1".into());
        }
        let (me, p) = (comm.rank() as usize, comm.size() as usize);
        let (pr, pc, nb, b) = layout(n, p);
        let (r, c) = (me / pc, me % pc);
        let (mi, mj) = (nb / pr, nb / pc);
        let row = comm
            .split_by_color_with_key(Color::with_value(r as i32), c as i32)
            .ok_or("MPI_Comm_split gave no row communicator")?;
        let col = comm
            .split_by_color_with_key(Color::with_value(c as i32), r as i32)
            .ok_or("MPI_Comm_split gave no column communicator")?;
        let bb = b * b;
        let fill = |seed: u64, col_major: bool| -> Vec<f64> {
            let mut v = vec![0.0; mi * mj * bb];
            v.par_chunks_mut(bb).enumerate().for_each(|(q, blk)| {
                let (il, jl) = if col_major {
                    (q % mi, q / mi)
                } else {
                    (q / mj, q % mj)
                };
                let (i0, j0) = ((r * mi + il) * b, (c * mj + jl) * b);
                for (ii, rowv) in blk.chunks_exact_mut(b).enumerate() {
                    for (jj, v) in rowv.iter_mut().enumerate() {
                        *v = entry(seed, n, i0 + ii, j0 + jj);
                    }
                }
            });
            v
        };
        let (a, bm) = (fill(SEED_A, true), fill(SEED_B, false));
        // Freivalds' reference for this rank's rows and columns.
        let cols = (c * mj * b).min(n)..((c + 1) * mj * b).min(n);
        let rows = (r * mi * b)..((r + 1) * mi * b);
        let (w, wabs): (Vec<f64>, Vec<f64>) = (0..n)
            .into_par_iter()
            .map(|k| {
                cols.clone().fold((0.0, 0.0), |(s, t), j| {
                    let (bv, xv) = (entry(SEED_B, n, k, j), x_entry(j));
                    (s + bv * xv, t + (bv * xv).abs())
                })
            })
            .unzip();
        let (z, bound): (Vec<f64>, Vec<f64>) = rows
            .into_par_iter()
            .map(|i| {
                (0..n).fold((0.0, 0.0), |(s, t), k| {
                    let av = entry(SEED_A, n, i, k);
                    (s + av * w[k], t + av.abs() * wabs[k])
                })
            })
            .unzip();
        let mut ws = Workspace::new();
        ws.reserve(b);
        Ok(Summa {
            n,
            b,
            nb,
            r,
            c,
            mi,
            mj,
            row,
            col,
            a,
            bm,
            cm: vec![0.0; mi * mj * bb],
            apanel: vec![0.0; mi * bb],
            bpanel: vec![0.0; mj * bb],
            tmp: vec![0.0; bb],
            ws,
            z,
            bound,
            comm_s: 0.0,
            compute_s: 0.0,
            ran: false,
        })
    }

    /// Seconds of the last run in the panel broadcasts.
    pub fn comm_s(&self) -> f64 {
        self.comm_s
    }

    /// Seconds of the last run in local products.
    pub fn compute_s(&self) -> f64 {
        self.compute_s
    }

    /// One distributed product `C = A·B`.
    pub fn run(&mut self) {
        let Summa {
            b,
            nb,
            r,
            c,
            mi,
            mj,
            row,
            col,
            a,
            bm,
            cm,
            apanel,
            bpanel,
            tmp,
            ws,
            ..
        } = self;
        let (b, mi, mj) = (*b, *mi, *mj);
        let bb = b * b;
        let (mut comm_s, mut compute_s) = (0.0, 0.0);
        for k in 0..*nb {
            let t = Instant::now();
            let (ck, kj) = (k / mj, k % mj);
            let (rk, ki) = (k / mi, k % mi);
            let apan: &mut [f64] = if *c == ck {
                &mut a[kj * mi * bb..(kj + 1) * mi * bb]
            } else {
                &mut apanel[..]
            };
            row.process_at_rank(ck as i32).broadcast_into(apan);
            let bpan: &mut [f64] = if *r == rk {
                &mut bm[ki * mj * bb..(ki + 1) * mj * bb]
            } else {
                &mut bpanel[..]
            };
            col.process_at_rank(rk as i32).broadcast_into(bpan);
            comm_s += since(t);
            let t = Instant::now();
            let (apan, bpan): (&[f64], &[f64]) = (apan, bpan);
            for il in 0..mi {
                for jl in 0..mj {
                    let ablk = &apan[il * bb..(il + 1) * bb];
                    let bblk = &bpan[jl * bb..(jl + 1) * bb];
                    let cblk = &mut cm[(il * mj + jl) * bb..(il * mj + jl + 1) * bb];
                    if k == 0 {
                        ws.gemm(b, ablk, bblk, cblk);
                    } else {
                        ws.gemm(b, ablk, bblk, tmp);
                        let per = crate::static_chunk(bb);
                        cblk.par_chunks_mut(per)
                            .zip(tmp.par_chunks(per))
                            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, s)| *d += s));
                    }
                }
            }
            compute_s += since(t);
        }
        self.comm_s = comm_s;
        self.compute_s = compute_s;
        self.ran = true;
    }

    /// Freivalds' check of this rank's block of C (see the module documentation), then poison C.
    pub fn check(&mut self) -> Result<(), String> {
        if !std::mem::replace(&mut self.ran, false) {
            return Err("mpi.gemm: checked without a run".into());
        }
        let (n, b, mi, mj) = (self.n, self.b, self.mi, self.mj);
        let bb = b * b;
        let (r, c) = (self.r, self.c);
        let cm = &self.cm;
        let tol = 4.0 * (n + 2) as f64 * f64::EPSILON;
        let bad = (0..(mi * b).min(n.saturating_sub(r * mi * b)))
            .into_par_iter()
            .filter_map(|li| {
                let (il, ii) = (li / b, li % b);
                let mut y = 0.0;
                for jl in 0..mj {
                    let blk = &cm[(il * mj + jl) * bb + ii * b..][..b];
                    for (jj, v) in blk.iter().enumerate() {
                        let gj = (c * mj + jl) * b + jj;
                        if gj < n {
                            y += v * x_entry(gj);
                        }
                    }
                }
                let (z, bound) = (self.z[li], self.bound[li]);
                let ok = (y - z).abs() <= tol * bound + f64::MIN_POSITIVE;
                (!ok).then_some((r * mi * b + li, y, z, tol * bound))
            })
            .min_by(|p, q| p.0.cmp(&q.0));
        self.cm.fill(f64::NAN);
        match bad {
            None => Ok(()),
            Some((i, y, z, t)) => Err(format!(
                "mpi.gemm: rank at grid position ({r}, {c}) fails Freivalds' check of its block of C: \
                 at row {i}, (C·x) = {y} but A·(B·x) = {z} (difference {:e}, bound {t:e})",
                y - z
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_give_square_blocks_covering_n() {
        for p in 1..13 {
            for n in [1usize, 5, 37, 64, 100] {
                let (pr, pc, nb, b) = layout(n, p);
                assert_eq!(pr * pc, p);
                assert_eq!(nb % pr, 0);
                assert_eq!(nb % pc, 0);
                assert!(nb * b >= n && (nb * b) < n + nb, "n={n} p={p}");
            }
        }
        assert_eq!(layout(100, 4), (2, 2, 2, 50));
        assert_eq!(layout(100, 6), (3, 2, 6, 17));
    }

    #[test]
    fn comm_volume() {
        assert_eq!(comm_bytes(100, 1), 0.0);
        // 2 × 2: each rank receives half of its block row of A and half of its block column of B.
        assert_eq!(comm_bytes(100, 4), 8.0 * 100.0 * 100.0 * 0.5);
    }

    #[test]
    fn entries_are_padded_with_zeros() {
        assert_eq!(entry(SEED_A, 4, 4, 0), 0.0);
        assert_ne!(entry(SEED_A, 4, 3, 3), entry(SEED_B, 4, 3, 3));
    }
}
