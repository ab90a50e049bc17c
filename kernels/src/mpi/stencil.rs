//! 2-D Jacobi over MPI: the global `n × n` grid of [`crate::stencil`] cut into blocks on a 2-D
//! Cartesian process grid, one-cell halos exchanged every sweep with non-blocking messages that
//! overlap the interior computation.
//!
//! **Decomposition.** The `p` ranks form a `pr × pc` grid ([`super::grid_dims`], what
//! `MPI_Dims_create` gives, non-periodic `MPI_Cart_create`); rank `(r, c)` owns global rows
//! `block_range(n, pr, r)` and columns `block_range(n, pc, c)`, stored with a one-cell halo on each
//! side: `(lr + 2) × (lc + 2)` values, row-major. The global boundary keeps its fixed values and the
//! owned points of the global interior are updated, exactly as in the serial kernel.
//!
//! **One sweep**, from `src` to `dst` (double buffering as in the serial kernel; the first sweep of a
//! run reads the untouched initial grid, so every run computes the same result):
//!
//! ```text
//! pack the first and last owned columns of src (the rows are contiguous and sent in place)
//! post MPI_Irecv from the up/down/left/right neighbours into four halo buffers
//! post MPI_Isend of the first/last owned rows and the packed columns
//! update the interior of the block (points whose stencil reads no halo), rayon threads over rows
//! MPI_Wait for all eight requests
//! copy the received halos into src's halo cells, update the rim of the block (one cell wide)
//! ```
//!
//! The arithmetic is the serial kernel's, `0.25 · ((up + down) + (left + right))`, with no FMA
//! contraction, so every block is **bitwise identical** to the same points of
//! [`crate::stencil::Jacobi::run_serial`]'s grid at any number of ranks and threads. Whether the
//! messages actually progress during the interior update depends on the MPI library (OpenMPI's
//! shared-memory transport moves eager-sized messages at once; larger ones may wait for the
//! `MPI_Wait`); the kernel times posting + waiting + unpacking as communication (`comm_s`) and the
//! two updates as computation (`compute_s`).
//!
//! Work: as the serial stencil, **4 flops and 16 bytes per interior point per sweep**. Halo traffic
//! is separate: [`halo_bytes`] counts the message bytes of one sweep over all ranks.
//!
//! References: W. Gropp, E. Lusk and A. Skjellum, *Using MPI*, 3rd ed., MIT Press 2014, §4.6–4.9
//! (ghost points, non-blocking exchange, overlapping communication and computation); G. Hager and
//! G. Wellein, *Introduction to High Performance Computing for Scientists and Engineers*, CRC 2010,
//! §9.3 (halo exchange of a Jacobi solver) and §3.3.

use std::ops::Range;
use std::time::Instant;

use mpi::request::{LocalScope, Request};
use mpi::topology::{CartesianCommunicator, Rank};
use mpi::traits::*;
use rayon::prelude::*;

use super::{block_range, grid_dims, since, Comm};
use crate::stencil::{boundary_value, Jacobi};

const UP: usize = 0;
const DOWN: usize = 1;
const LEFT: usize = 2;
const RIGHT: usize = 3;
/// The direction a message from neighbour `d` travels in (its tag).
const OPPOSITE: [usize; 4] = [DOWN, UP, RIGHT, LEFT];
/// Tag of the reference blocks sent by rank 0 in [`HaloJacobi::new`].
const TAG_REFERENCE: i32 = 100;

/// Message bytes of one sweep over all ranks on a `pr × pc` grid: every interior cut of length `n`
/// is crossed by one row (or column) of doubles in each direction: `16n · ((pr − 1) + (pc − 1))`.
pub fn halo_bytes(n: usize, pr: usize, pc: usize) -> f64 {
    16.0 * n as f64 * (pr.saturating_sub(1) + pc.saturating_sub(1)) as f64
}

/// The local indices (1-based, the halo being 0) of the owned rows or columns of block `owned`
/// (global indices) that the sweep updates: those inside the global interior `1..n-1`.
pub fn updated(owned: &Range<usize>, n: usize) -> Range<usize> {
    let lo = owned.start.max(1);
    let hi = owned.end.min(n.saturating_sub(1)).max(lo);
    lo - owned.start + 1..hi - owned.start + 1
}

/// The part of `range` inside `[lo, hi)`, clamped so that it splits `range` into three contiguous
/// pieces `range.start..a`, `a..b`, `b..range.end`.
pub fn inner(range: &Range<usize>, lo: usize, hi: usize) -> Range<usize> {
    let a = lo.clamp(range.start, range.end);
    let b = hi.clamp(a, range.end);
    a..b
}

/// Update row `i`, columns `cols` of `dst_row` (row `i` of the destination) from `src` (row-major
/// with row length `w`), with the widest SIMD this CPU has; every path computes the same bits.
fn update_row(dst_row: &mut [f64], src: &[f64], w: usize, i: usize, cols: &Range<usize>) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { update_row_avx512(dst_row, src, w, i, cols) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { update_row_avx2(dst_row, src, w, i, cols) };
        }
    }
    update_row_generic(dst_row, src, w, i, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn update_row_avx512(
    dst_row: &mut [f64],
    src: &[f64],
    w: usize,
    i: usize,
    cols: &Range<usize>,
) {
    update_row_generic(dst_row, src, w, i, cols)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn update_row_avx2(
    dst_row: &mut [f64],
    src: &[f64],
    w: usize,
    i: usize,
    cols: &Range<usize>,
) {
    update_row_generic(dst_row, src, w, i, cols)
}

/// The serial kernel's arithmetic, `0.25 · ((up + down) + (left + right))` (no FMA contraction in
/// Rust, so every instruction set gives the same bits).
#[inline(always)]
fn update_row_generic(dst_row: &mut [f64], src: &[f64], w: usize, i: usize, cols: &Range<usize>) {
    let (a, b) = (cols.start, cols.end);
    if a >= b {
        return;
    }
    let up = &src[(i - 1) * w + a..(i - 1) * w + b];
    let down = &src[(i + 1) * w + a..(i + 1) * w + b];
    let left = &src[i * w + a - 1..i * w + b - 1];
    let right = &src[i * w + a + 1..i * w + b + 1];
    for ((((d, u), dn), l), r) in dst_row[a..b]
        .iter_mut()
        .zip(up)
        .zip(down)
        .zip(left)
        .zip(right)
    {
        *d = 0.25 * ((u + dn) + (l + r));
    }
}

fn update_serial(dst: &mut [f64], src: &[f64], w: usize, rows: Range<usize>, cols: &Range<usize>) {
    for i in rows {
        update_row(&mut dst[i * w..(i + 1) * w], src, w, i, cols);
    }
}

fn update_parallel(
    dst: &mut [f64],
    src: &[f64],
    w: usize,
    rows: Range<usize>,
    cols: &Range<usize>,
) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let per = crate::static_chunk(rows.len());
    let first = rows.start;
    dst[rows.start * w..rows.end * w]
        .par_chunks_mut(per * w)
        .enumerate()
        .for_each(|(k, block)| {
            for (r, row) in block.chunks_exact_mut(w).enumerate() {
                update_row(row, src, w, first + k * per + r, cols);
            }
        });
}

/// The local geometry of a rank's block, the same at every sweep.
struct Block {
    /// Owned rows and columns, and the local row length (owned columns + 2).
    lr: usize,
    lc: usize,
    w: usize,
    /// Updated global rows and columns (the global interior), as local ranges.
    ur: Range<usize>,
    uc: Range<usize>,
    /// The points whose stencil reads no halo (local rows and columns 2..=l-1).
    ir: Range<usize>,
    ic: Range<usize>,
}

/// Pack the first and last owned columns of `src`, post the eight non-blocking halo messages,
/// update the interior while they fly, and wait for them. Returns (seconds packing, posting and
/// waiting; seconds updating).
fn exchange_and_update_interior(
    comm: &CartesianCommunicator,
    nbr: &[Option<Rank>; 4],
    send: &mut [Vec<f64>; 2],
    recv: &mut [Vec<f64>; 4],
    src: &[f64],
    dst: &mut [f64],
    block: &Block,
) -> (f64, f64) {
    let &Block { lr, lc, w, .. } = block;
    let t = Instant::now();
    let [sl, sr] = send;
    for (k, i) in (1..=lr).enumerate() {
        sl[k] = src[i * w + 1];
        sr[k] = src[i * w + lc];
    }
    mpi::request::scope(|scope| {
        let mut reqs: [Option<Request<'_, [f64], &LocalScope<'_>>>; 8] = Default::default();
        let [rup, rdown, rleft, rright] = recv;
        let targets: [&mut [f64]; 4] = [rup, rdown, rleft, rright];
        for (d, buf) in targets.into_iter().enumerate() {
            if let Some(q) = nbr[d] {
                reqs[d] = Some(comm.process_at_rank(q).immediate_receive_into_with_tag(
                    scope,
                    buf,
                    OPPOSITE[d] as i32,
                ));
            }
        }
        let outgoing: [&[f64]; 4] = [
            &src[w + 1..w + 1 + lc],
            &src[lr * w + 1..lr * w + 1 + lc],
            &sl[..],
            &sr[..],
        ];
        for (d, buf) in outgoing.into_iter().enumerate() {
            if let Some(q) = nbr[d] {
                reqs[4 + d] = Some(
                    comm.process_at_rank(q)
                        .immediate_send_with_tag(scope, buf, d as i32),
                );
            }
        }
        let posted = since(t);
        let t = Instant::now();
        update_parallel(dst, src, w, block.ir.clone(), &block.ic);
        let computed = since(t);
        let t = Instant::now();
        for r in reqs.iter_mut() {
            if let Some(r) = r.take() {
                r.wait_without_status();
            }
        }
        (posted + since(t), computed)
    })
}

/// Copy the received halos into `src`'s halo cells (only from neighbours that exist).
fn unpack_halos(src: &mut [f64], recv: &[Vec<f64>; 4], nbr: &[Option<Rank>; 4], block: &Block) {
    let &Block { lr, lc, w, .. } = block;
    if nbr[UP].is_some() {
        src[1..1 + lc].copy_from_slice(&recv[UP]);
    }
    if nbr[DOWN].is_some() {
        src[(lr + 1) * w + 1..(lr + 1) * w + 1 + lc].copy_from_slice(&recv[DOWN]);
    }
    for (k, i) in (1..=lr).enumerate() {
        if nbr[LEFT].is_some() {
            src[i * w] = recv[LEFT][k];
        }
        if nbr[RIGHT].is_some() {
            src[i * w + lc + 1] = recv[RIGHT][k];
        }
    }
}

/// Update the rim, the points that read a halo: updated rows above and below the interior rows,
/// and the interior rows' columns left and right of the interior columns.
fn update_rim(dst: &mut [f64], src: &[f64], block: &Block) {
    let Block {
        w, ur, uc, ir, ic, ..
    } = block;
    update_serial(dst, src, *w, ur.start..ir.start, uc);
    update_serial(dst, src, *w, ir.end..ur.end, uc);
    update_serial(dst, src, *w, ir.clone(), &(uc.start..ic.start));
    update_serial(dst, src, *w, ir.clone(), &(ic.end..uc.end));
}

/// This rank's block of a distributed Jacobi problem.
pub struct HaloJacobi {
    comm: CartesianCommunicator,
    n: usize,
    iterations: usize,
    dims: (usize, usize),
    /// Owned global rows and columns.
    rows: Range<usize>,
    cols: Range<usize>,
    /// Row length of the local arrays (owned columns + 2).
    w: usize,
    /// Neighbour ranks up, down, left, right (`None` at the global edge).
    nbr: [Option<Rank>; 4],
    /// Initial grid and the two sweep buffers, `(lr + 2) × w` each.
    bufs: [Vec<f64>; 3],
    /// Packed first and last owned columns.
    send: [Vec<f64>; 2],
    /// Halos received from up, down (`lc` each), left, right (`lr` each).
    recv: [Vec<f64>; 4],
    /// The owned block (`lr × lc`, no halo) after `iterations` serial sweeps.
    reference: Vec<f64>,
    comm_s: f64,
    compute_s: f64,
    ran: bool,
}

impl HaloJacobi {
    /// Prepare on every rank of `comm` (a collective call): the Cartesian grid, this rank's block,
    /// and the reference block, computed on rank 0 over the whole grid (with the rayon kernel, which
    /// is bitwise the serial one) and sent to each rank.
    pub fn new(comm: &Comm, n: usize, iterations: usize) -> Result<HaloJacobi, String> {
        let p = comm.size() as usize;
        let (pr, pc) = grid_dims(p);
        if n < 3 || n < pr || n < pc {
            return Err(format!(
                "the grid side must be at least 3 and at least the process grid's {pr} × {pc} (got \
                 n = {n}); use a larger `size`"
            ));
        }
        let cart = comm
            .create_cartesian_communicator(&[pr as i32, pc as i32], &[false, false], false)
            .ok_or("MPI_Cart_create left this rank out of the process grid")?;
        let me = cart.rank();
        let at = |rank: Rank| {
            let c = cart.rank_to_coordinates(rank);
            (c[0] as usize, c[1] as usize)
        };
        let (r, c) = at(me);
        let (rows, cols) = (block_range(n, pr, r), block_range(n, pc, c));
        let (lr, lc) = (rows.len(), cols.len());
        let w = lc + 2;
        let (up, down) = cart.shift(0, 1);
        let (left, right) = cart.shift(1, 1);
        let grid = || {
            let mut g = vec![0.0; (lr + 2) * w];
            let per = crate::static_chunk(lr + 2);
            g.par_chunks_mut(per * w).enumerate().for_each(|(k, b)| {
                for (q, row) in b.chunks_exact_mut(w).enumerate() {
                    let li = k * per + q;
                    if li == 0 || li > lr {
                        continue;
                    }
                    let gi = rows.start + li - 1;
                    for (lj, v) in row.iter_mut().enumerate().take(lc + 1).skip(1) {
                        let gj = cols.start + lj - 1;
                        let edge = gi == 0 || gj == 0 || gi == n - 1 || gj == n - 1;
                        *v = if edge { boundary_value(n, gi, gj) } else { 0.0 };
                    }
                }
            });
            g
        };
        let bufs = [grid(), grid(), grid()];
        let pack = |g: &[f64], rows: &Range<usize>, cols: &Range<usize>| -> Vec<f64> {
            rows.clone()
                .flat_map(|i| g[i * n + cols.start..i * n + cols.end].iter().copied())
                .collect()
        };
        let mut reference = vec![0.0; lr * lc];
        if me == 0 {
            let mut j = Jacobi::new(n);
            j.run(iterations);
            let g = j.result();
            for q in 1..p as Rank {
                let (qr, qc) = at(q);
                let block = pack(g, &block_range(n, pr, qr), &block_range(n, pc, qc));
                cart.process_at_rank(q)
                    .send_with_tag(&block[..], TAG_REFERENCE);
            }
            reference = pack(g, &rows, &cols);
        } else {
            cart.process_at_rank(0)
                .receive_into_with_tag(&mut reference[..], TAG_REFERENCE);
        }
        Ok(HaloJacobi {
            comm: cart,
            n,
            iterations,
            dims: (pr, pc),
            rows,
            cols,
            w,
            nbr: [up, down, left, right],
            bufs,
            send: [vec![0.0; lr], vec![0.0; lr]],
            recv: [vec![0.0; lc], vec![0.0; lc], vec![0.0; lr], vec![0.0; lr]],
            reference,
            comm_s: 0.0,
            compute_s: 0.0,
            ran: false,
        })
    }

    /// The process grid `(pr, pc)`.
    pub fn dims(&self) -> (usize, usize) {
        self.dims
    }

    /// Seconds of the last run spent packing, posting, waiting for and unpacking halos.
    pub fn comm_s(&self) -> f64 {
        self.comm_s
    }

    /// Seconds of the last run spent updating points.
    pub fn compute_s(&self) -> f64 {
        self.compute_s
    }

    /// `iterations` sweeps from the initial grid, exchanging halos before each.
    pub fn run(&mut self) {
        let HaloJacobi {
            comm,
            n,
            iterations,
            rows,
            cols,
            w,
            nbr,
            bufs,
            send,
            recv,
            ..
        } = self;
        let (n, w) = (*n, *w);
        let (lr, lc) = (rows.len(), cols.len());
        let (ur, uc) = (updated(rows, n), updated(cols, n));
        // Points whose stencil reads no halo: local rows and columns 2..=l-1.
        let (ir, ic) = (inner(&ur, 2, lr), inner(&uc, 2, lc));
        let block = Block {
            lr,
            lc,
            w,
            ur,
            uc,
            ir,
            ic,
        };
        let (mut comm_s, mut compute_s) = (0.0, 0.0);
        let [init, b0, b1] = bufs;
        for it in 0..*iterations {
            let (src, dst): (&mut [f64], &mut [f64]) = if it == 0 {
                (&mut init[..], &mut b0[..])
            } else if it % 2 == 1 {
                (&mut b0[..], &mut b1[..])
            } else {
                (&mut b1[..], &mut b0[..])
            };
            let (c, m) = exchange_and_update_interior(comm, nbr, send, recv, src, dst, &block);
            let t = Instant::now();
            unpack_halos(src, recv, nbr, &block);
            comm_s += c + since(t);
            let t = Instant::now();
            update_rim(dst, src, &block);
            compute_s += m + since(t);
        }
        self.comm_s = comm_s;
        self.compute_s = compute_s;
        self.ran = true;
    }

    fn result_index(&self) -> usize {
        match self.iterations {
            0 => 0,
            k => 1 + (k - 1) % 2,
        }
    }

    /// Compare the owned block after the last run with the serial reference, bitwise, then poison
    /// the updated points (so the next check needs a new run).
    pub fn check(&mut self) -> Result<(), String> {
        if self.iterations > 0 && !std::mem::replace(&mut self.ran, false) {
            return Err("mpi.stencil: checked without a run".into());
        }
        let (n, w, lc) = (self.n, self.w, self.cols.len());
        let g = &self.bufs[self.result_index()];
        let mut bad = 0usize;
        let mut first = None;
        for (k, want) in self.reference.iter().enumerate() {
            let (li, lj) = (k / lc + 1, k % lc + 1);
            let got = g[li * w + lj];
            if got.to_bits() != want.to_bits() {
                bad += 1;
                first.get_or_insert((
                    self.rows.start + li - 1,
                    self.cols.start + lj - 1,
                    got,
                    *want,
                ));
            }
        }
        if self.iterations > 0 {
            let (ur, uc) = (updated(&self.rows, n), updated(&self.cols, n));
            let idx = self.result_index();
            let g = &mut self.bufs[idx];
            for i in ur {
                g[i * w + uc.start..i * w + uc.end].fill(f64::NAN);
            }
        }
        match first {
            None => Ok(()),
            Some((i, j, got, want)) => Err(format!(
                "mpi.stencil: rank {} (rows {:?}, columns {:?} of the {n} × {n} grid): {bad} of {} \
                 points differ from the serial reference after {} sweeps; first at row {i}, column \
                 {j}: {got} instead of {want}",
                self.comm.rank(),
                self.rows,
                self.cols,
                self.reference.len(),
                self.iterations
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updated_points_are_the_global_interior() {
        let n = 10;
        assert_eq!(updated(&(0..4), n), 2..5); // global rows 1..4
        assert_eq!(updated(&(4..7), n), 1..4);
        assert_eq!(updated(&(7..10), n), 1..3); // global rows 7, 8
        assert_eq!(updated(&(0..1), n), 2..2);
        assert_eq!(updated(&(9..10), n), 1..1);
    }

    #[test]
    fn interior_and_rim_partition_the_updated_points() {
        // Every (local) updated point is computed exactly once, and interior points read no halo.
        for n in [3usize, 4, 5, 9, 16] {
            for parts in 1..=n.min(5) {
                for k in 0..parts {
                    let owned = block_range(n, parts, k);
                    let l = owned.len();
                    let u = updated(&owned, n);
                    let i = inner(&u, 2, l);
                    assert!(u.start <= i.start && i.start <= i.end && i.end <= u.end);
                    for x in i.clone() {
                        assert!(x >= 2 && x < l, "n={n} parts={parts} k={k} x={x}");
                    }
                    let mut count = vec![0; l + 2];
                    for x in (u.start..i.start).chain(i.clone()).chain(i.end..u.end) {
                        count[x] += 1;
                    }
                    for (x, c) in count.iter().enumerate() {
                        assert_eq!(*c, usize::from(u.contains(&x)), "n={n} k={k} x={x}");
                    }
                }
            }
        }
    }

    #[test]
    fn blockwise_sweeps_equal_the_serial_kernel() {
        // The halo arithmetic without MPI: cut a grid into 2 × 3 blocks, fill the halos from the
        // neighbours' blocks, sweep each block (interior + rim) and compare with the serial sweep.
        let n = 11;
        let mut serial = Jacobi::new(n);
        serial.run_serial(1);
        let global = Jacobi::new(n).result().to_vec();
        let (pr, pc) = (2, 3);
        for r in 0..pr {
            for c in 0..pc {
                let (rows, cols) = (block_range(n, pr, r), block_range(n, pc, c));
                let (lr, lc) = (rows.len(), cols.len());
                let w = lc + 2;
                let mut src = vec![f64::NAN; (lr + 2) * w];
                for li in 0..lr + 2 {
                    for lj in 0..w {
                        let (gi, gj) = (rows.start + li, cols.start + lj);
                        if (1..=n).contains(&gi) && (1..=n).contains(&gj) {
                            src[li * w + lj] = global[(gi - 1) * n + gj - 1];
                        }
                    }
                }
                let mut dst = src.clone();
                let (ur, uc) = (updated(&rows, n), updated(&cols, n));
                let (ir, ic) = (inner(&ur, 2, lr), inner(&uc, 2, lc));
                update_parallel(&mut dst, &src, w, ir.clone(), &ic);
                update_serial(&mut dst, &src, w, ur.start..ir.start, &uc);
                update_serial(&mut dst, &src, w, ir.end..ur.end, &uc);
                update_serial(&mut dst, &src, w, ir.clone(), &(uc.start..ic.start));
                update_serial(&mut dst, &src, w, ir.clone(), &(ic.end..uc.end));
                for li in 1..=lr {
                    for lj in 1..=lc {
                        let (gi, gj) = (rows.start + li - 1, cols.start + lj - 1);
                        assert_eq!(
                            dst[li * w + lj].to_bits(),
                            serial.result()[gi * n + gj].to_bits(),
                            "block ({r}, {c}) point ({gi}, {gj})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn halo_volume() {
        assert_eq!(halo_bytes(100, 1, 1), 0.0);
        assert_eq!(halo_bytes(100, 2, 2), 16.0 * 100.0 * 2.0);
    }
}
