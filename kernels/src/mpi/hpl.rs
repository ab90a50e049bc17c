//! Distributed HPL: the LU solve of [`crate::hpl`] on a 2-D block-cyclic distribution over MPI
//! ranks, each rank's local work on its rayon threads (hybrid MPI × rayon).
//!
//! **Process grid.** The `p` ranks form a `P × Q` grid with `P ≤ Q` ([`grid`]: the two factors of
//! `p` closest to each other, the smaller one as P, which is what HPL's tuning guide recommends
//! since the panel factorisation communicates along process columns): 1 → 1 × 1, 2 → 1 × 2,
//! 4 → 2 × 2, 6 → 2 × 3, 8 → 2 × 4. Rank `r` sits at grid row `r / Q`, column `r mod Q` (HPL's
//! row-major process mapping).
//!
//! **Distribution.** `[A | b]` (`n × (n + 1)`, b as column n, as in HPL) is cut into `nb × nb`
//! blocks; block `(I, J)` lives on grid position `(I mod P, J mod Q)` (ScaLAPACK's block-cyclic
//! layout); each rank keeps its blocks as one row-major local matrix of [`numroc`] rows and columns.
//!
//! **One block step** `k` (global columns `k·nb ..`), on grid column `k mod Q` and row `k mod P`:
//!
//! ```text
//! panel       the P ranks of the panel's grid column gather its rows (MPI_Allgatherv along the
//!             column) and each factors it with the shared-memory recursive panel (crate::hpl);
//!             redundant work for P > 1, no communication per column
//! broadcast   the factored panel and its pivots go along each grid row (MPI_Bcast)
//! swap        the rows the pivots touch (at most 2·nb) are gathered along every grid column
//!             (MPI_Allgatherv) and put in their new places; every rank of the column now holds the
//!             nb pivot rows of its trailing columns: the row of U, broadcast by the swap itself
//! U row       U₁₂ = L₁₁⁻¹·U₁₂ (every rank of the column, redundantly; the owners store it)
//! update      local A₂₂ −= L₂₁·U₁₂ through the tuned DGEMM
//! ```
//!
//! **Solve.** Back substitution block by block from the last: the partial sums of a block's rows
//! are reduced along its grid row to the diagonal block's owner (MPI_Reduce), which solves the
//! block and broadcasts its part of x to all ranks (MPI_Bcast); every rank ends with all of x.
//!
//! **Check.** Each rank computes HPL's residual norms for its share of the rows from the seeded
//! matrix (regenerated, as HPL does) and the full x; a maximum over ranks (MPI_Allreduce) gives
//! every rank the same verdict.
//!
//! Work as HPL counts it ([`crate::hpl::flops`]); the bytes are the shared-memory model
//! ([`crate::hpl::bytes`]). Time in MPI calls is `comm_s`.
//!
//! References: A. Petitet, R. C. Whaley, J. Dongarra and A. Cleary, HPL 2.3 (netlib.org/benchmark/
//! hpl, its "tuning" page for P ≤ Q); L. S. Blackford et al., *ScaLAPACK Users' Guide*, SIAM 1997,
//! §4.3 (the block-cyclic distribution, `numroc`).

use std::time::Instant;

use mpi::collective::SystemOperation;
use mpi::datatype::PartitionMut;
use mpi::topology::Color;
use mpi::traits::*;
use mpi::Count;
use rayon::prelude::*;

use super::{block_range, grid_dims, since, Comm};
use crate::gemm::Workspace;
use crate::hpl::{entry, factor_panel, nan_max, residual_rows, Residual};

/// The `P × Q` process grid for `p` ranks, `P ≤ Q` (see the module documentation).
pub fn grid(p: usize) -> (usize, usize) {
    let (rows, cols) = grid_dims(p);
    (cols, rows)
}

/// Rows (or columns) of a dimension of `n` cut into blocks of `nb`, dealt cyclically over `procs`,
/// that grid coordinate `me` holds (ScaLAPACK's `NUMROC`).
pub fn numroc(n: usize, nb: usize, me: usize, procs: usize) -> usize {
    let blocks = n / nb;
    let mut count = (blocks / procs) * nb;
    let extra = blocks % procs;
    if me < extra {
        count += nb;
    } else if me == extra {
        count += n % nb;
    }
    count
}

/// Global index of local index `l` on grid coordinate `me` of `procs` (block size `nb`).
fn global(l: usize, nb: usize, me: usize, procs: usize) -> usize {
    ((l / nb) * procs + me) * nb + l % nb
}

/// Grid coordinate owning global index `g`, and its local index there.
fn owner(g: usize, nb: usize, procs: usize) -> (usize, usize) {
    let block = g / nb;
    (block % procs, (block / procs) * nb + g % nb)
}

fn counts_displs(counts: Vec<usize>) -> (Vec<Count>, Vec<Count>) {
    let displs = counts
        .iter()
        .scan(0usize, |acc, &c| {
            let d = *acc;
            *acc += c;
            Some(d as Count)
        })
        .collect();
    (counts.into_iter().map(|c| c as Count).collect(), displs)
}

/// Where one block step works on this rank: the step's columns and what of them is local.
#[derive(Clone, Copy)]
struct Step {
    /// The step's first global column, and its width (nb, or less at the end).
    k0: usize,
    kb: usize,
    /// Rows from k0 on (the panel's height).
    m: usize,
    /// The grid column that owns the panel.
    pc: usize,
    /// My first local row at or after global row k0.
    lr0: usize,
    /// My first trailing local column (global ≥ k0 + kb) and how many there are.
    lc1: usize,
    ntrail: usize,
}

/// This rank's part of a distributed HPL problem.
pub struct Hpl {
    n: usize,
    nb: usize,
    seed: u64,
    world: Comm,
    /// Grid communicators: this rank's grid row (ranked by column) and column (ranked by row).
    row: Comm,
    col: Comm,
    p: usize,
    q: usize,
    myrow: usize,
    mycol: usize,
    /// Local rows and columns; the local matrix is `mp × nq` row-major.
    mp: usize,
    nq: usize,
    a: Vec<f64>,
    /// The factored panel (`(n − k) × nb`, global row order) and its pivots.
    panel: Vec<f64>,
    ipiv: Vec<usize>,
    ipiv_msg: Vec<u64>,
    /// Send and receive buffers of the gathers.
    send: Vec<f64>,
    recv: Vec<f64>,
    /// The nb pivot rows of this rank's trailing columns (the row of U).
    urows: Vec<f64>,
    perm: Vec<usize>,
    ws: Workspace,
    lbuf: Vec<f64>,
    /// Back substitution: partial sums of this rank's rows, and the full solution.
    partial: Vec<f64>,
    x: Vec<f64>,
    comm_s: f64,
    /// A run has overwritten the local blocks since the last refill.
    dirty: bool,
}

impl Hpl {
    /// Prepare on every rank of `comm` (a collective call: it splits the grid's row and column
    /// communicators), filling the local blocks of the seeded matrix.
    pub fn new(comm: &Comm, n: usize, nb: usize, seed: u64) -> Result<Hpl, String> {
        if n == 0 {
            return Err("the matrix order n must be at least 1".into());
        }
        if nb == 0 {
            return Err("the block size nb must be at least 1".into());
        }
        let (me, size) = (comm.rank() as usize, comm.size() as usize);
        let (p, q) = grid(size);
        let (myrow, mycol) = (me / q, me % q);
        let row = comm
            .split_by_color_with_key(Color::with_value(myrow as i32), mycol as i32)
            .ok_or("MPI_Comm_split gave no row communicator")?;
        let col = comm
            .split_by_color_with_key(Color::with_value(mycol as i32), myrow as i32)
            .ok_or("MPI_Comm_split gave no column communicator")?;
        let mp = numroc(n, nb, myrow, p);
        let nq = numroc(n + 1, nb, mycol, q);
        let kb = nb.min(n);
        let mut ws = Workspace::new();
        ws.reserve_mnk(mp.max(n), nq.max(kb), kb);
        let mut hpl = Hpl {
            n,
            nb,
            seed,
            world: comm.duplicate(),
            row,
            col,
            p,
            q,
            myrow,
            mycol,
            mp,
            nq,
            a: vec![0.0; mp * nq],
            panel: vec![0.0; n * kb],
            ipiv: vec![0; kb],
            ipiv_msg: vec![0; kb],
            send: vec![0.0; (n * kb).max(2 * kb * nq)],
            recv: vec![0.0; (n * kb).max(2 * kb * nq)],
            urows: vec![0.0; kb * nq],
            perm: (0..n).collect(),
            ws,
            lbuf: vec![0.0; n * kb],
            partial: vec![0.0; mp],
            x: vec![f64::NAN; n],
            comm_s: 0.0,
            dirty: true,
        };
        hpl.refill();
        Ok(hpl)
    }

    /// The process grid `(P, Q)`.
    pub fn grid(&self) -> (usize, usize) {
        (self.p, self.q)
    }

    /// Seconds of the last run spent in MPI calls.
    pub fn comm_s(&self) -> f64 {
        self.comm_s
    }

    /// The solution of the last run on this rank (all of x; NaN before a run and after a check).
    pub fn solution(&self) -> &[f64] {
        &self.x
    }

    /// Regenerate this rank's blocks of `[A | b]` from the seed.
    pub fn refill(&mut self) {
        let (n, nb, seed, nq) = (self.n, self.nb, self.seed, self.nq);
        let (p, q, myrow, mycol) = (self.p, self.q, self.myrow, self.mycol);
        if nq > 0 {
            self.a.par_chunks_mut(nq).enumerate().for_each(|(l, rowv)| {
                let i = global(l, nb, myrow, p);
                for (lj, v) in rowv.iter_mut().enumerate() {
                    *v = entry(seed, n, i, global(lj, nb, mycol, q));
                }
            });
        }
        self.x.fill(f64::NAN);
        self.dirty = false;
    }

    /// Refill the local blocks if a run has overwritten them since the last refill (local, no
    /// communication; the point runner calls it untimed before every run).
    pub fn reset(&mut self) {
        if self.dirty {
            self.refill();
        }
    }

    /// Factor and solve (the timed region; collective: every rank calls it). Overwrites the local
    /// blocks with the factors: [`Hpl::reset`] (or [`Hpl::check`]) restores them.
    pub fn run(&mut self) {
        self.dirty = true;
        let t0 = Instant::now();
        let mut comm_s = 0.0;
        for k0 in (0..self.n).step_by(self.nb) {
            comm_s += self.step(k0);
        }
        comm_s += self.solve();
        self.comm_s = comm_s;
        debug_assert!(since(t0) >= comm_s);
    }

    /// One block step at global column `k0` (the phases of the module documentation, in order);
    /// returns the seconds spent in MPI calls.
    fn step(&mut self, k0: usize) -> f64 {
        let s = self.geometry(k0);
        let mut comm_s = 0.0;
        if self.mycol == s.pc {
            comm_s += self.gather_and_factor_panel(&s);
        }
        comm_s += self.broadcast_panel(&s);
        // Row interchanges on the trailing columns: perm[r] = the original row (relative to k0)
        // that ends at position r.
        let touched: Vec<usize> = {
            let mut t: Vec<usize> = (0..s.kb).chain(self.ipiv[..s.kb].iter().copied()).collect();
            t.sort_unstable();
            t.dedup();
            t
        };
        for j in 0..s.kb {
            self.perm.swap(j, self.ipiv[j]);
        }
        if s.ntrail > 0 {
            comm_s += self.swap_rows(&s, &touched);
            self.solve_u_row(&s);
            self.update_trailing(&s);
        }
        // Undo the permutation record for the next step (only the touched entries changed).
        for &r in &touched {
            self.perm[r] = r;
        }
        comm_s
    }

    /// Where the block step at global column `k0` works on this rank.
    fn geometry(&self, k0: usize) -> Step {
        let (n, nb, p, q) = (self.n, self.nb, self.p, self.q);
        let kb = nb.min(n - k0);
        // My local rows from global k0 on, and my trailing local columns (global ≥ k0 + kb).
        let lc1 = numroc(k0 + kb, nb, self.mycol, q);
        Step {
            k0,
            kb,
            m: n - k0,
            pc: (k0 / nb) % q,
            lr0: numroc(k0, nb, self.myrow, p),
            lc1,
            ntrail: self.nq - lc1,
        }
    }

    /// Panel (on the panel's grid column only): gather its rows along the grid column, factor it
    /// redundantly, store this rank's rows of it; returns MPI seconds.
    fn gather_and_factor_panel(&mut self, s: &Step) -> f64 {
        let (n, nb, p, q) = (self.n, self.nb, self.p, self.q);
        let (myrow, mycol, nq) = (self.myrow, self.mycol, self.nq);
        let Step { k0, kb, m, lr0, .. } = *s;
        let lcp = numroc(k0, nb, mycol, q);
        let mine = self.mp - lr0;
        for (l, dst) in self.send[..mine * kb].chunks_exact_mut(kb).enumerate() {
            dst.copy_from_slice(&self.a[(lr0 + l) * nq + lcp..][..kb]);
        }
        let counts: Vec<usize> = (0..p)
            .map(|r| (numroc(n, nb, r, p) - numroc(k0, nb, r, p)) * kb)
            .collect();
        let offsets: Vec<usize> = counts
            .iter()
            .scan(0, |acc, &c| {
                let d = *acc;
                *acc += c;
                Some(d)
            })
            .collect();
        let t = Instant::now();
        if p == 1 {
            self.recv[..m * kb].copy_from_slice(&self.send[..m * kb]);
        } else {
            let (cnt, dsp) = counts_displs(counts);
            let mut part = PartitionMut::new(&mut self.recv[..m * kb], cnt, &dsp[..]);
            self.col
                .all_gather_varcount_into(&self.send[..mine * kb], &mut part);
        }
        let comm_s = since(t);
        // Into global row order.
        for r in 0..m {
            let (who, l) = owner(k0 + r, nb, p);
            let l = l - numroc(k0, nb, who, p);
            self.panel[r * kb..(r + 1) * kb]
                .copy_from_slice(&self.recv[offsets[who] + l * kb..][..kb]);
        }
        factor_panel(
            &mut self.panel[..m * kb],
            kb,
            m,
            0,
            0,
            kb,
            &mut self.ipiv[..kb],
            &mut self.ws,
            &mut self.lbuf,
        );
        // Store my rows of the factored panel (L, and U₁₁ on the diagonal block's owner).
        for l in lr0..self.mp {
            let r = global(l, nb, myrow, p) - k0;
            self.a[l * nq + lcp..][..kb].copy_from_slice(&self.panel[r * kb..(r + 1) * kb]);
        }
        for (d, &v) in self.ipiv_msg.iter_mut().zip(&self.ipiv[..kb]) {
            *d = v as u64;
        }
        comm_s
    }

    /// Broadcast: the factored panel and its pivots along the grid rows; returns MPI seconds.
    fn broadcast_panel(&mut self, s: &Step) -> f64 {
        let (kb, m) = (s.kb, s.m);
        let t = Instant::now();
        if self.q > 1 {
            let root = self.row.process_at_rank(s.pc as i32);
            root.broadcast_into(&mut self.panel[..m * kb]);
            root.broadcast_into(&mut self.ipiv_msg[..kb]);
        }
        let comm_s = since(t);
        for (d, &v) in self.ipiv[..kb].iter_mut().zip(&self.ipiv_msg[..kb]) {
            *d = v as usize;
        }
        comm_s
    }

    /// Swap: gather the `touched` rows (as they were) of the trailing columns along the grid
    /// column, copy the pivot rows into `urows` (the row of U) and put the rows displaced below
    /// the panel's top in their new places; returns MPI seconds.
    fn swap_rows(&mut self, s: &Step, touched: &[usize]) -> f64 {
        let (nb, p, myrow, nq) = (self.nb, self.p, self.myrow, self.nq);
        let Step {
            k0,
            kb,
            lc1,
            ntrail,
            ..
        } = *s;
        let mut counts = vec![0usize; p];
        let mut order: Vec<Vec<usize>> = vec![Vec::new(); p];
        for &r in touched {
            let who = owner(k0 + r, nb, p).0;
            counts[who] += ntrail;
            order[who].push(r);
        }
        let mut sent = 0;
        for &r in &order[myrow] {
            let l = owner(k0 + r, nb, p).1;
            self.send[sent..sent + ntrail].copy_from_slice(&self.a[l * nq + lc1..][..ntrail]);
            sent += ntrail;
        }
        let total: usize = counts.iter().sum();
        let t = Instant::now();
        if p == 1 {
            self.recv[..total].copy_from_slice(&self.send[..total]);
        } else {
            let (cnt, dsp) = counts_displs(counts);
            let mut part = PartitionMut::new(&mut self.recv[..total], cnt, &dsp[..]);
            self.col
                .all_gather_varcount_into(&self.send[..sent], &mut part);
        }
        let comm_s = since(t);
        // Where each touched original row sits in `recv`.
        let mut at = std::collections::HashMap::with_capacity(touched.len());
        let mut off = 0;
        for rows in &order {
            for &r in rows {
                at.insert(r, off);
                off += ntrail;
            }
        }
        // The rows of U (positions 0..kb), on every rank of the column.
        for j in 0..kb {
            let src = at[&self.perm[j]];
            self.urows[j * ntrail..(j + 1) * ntrail].copy_from_slice(&self.recv[src..src + ntrail]);
        }
        // Rows displaced below the panel's top go to their new places.
        for &r in touched {
            if r >= kb && self.perm[r] != r {
                let (who, l) = owner(k0 + r, nb, p);
                if who == myrow {
                    let src = at[&self.perm[r]];
                    self.a[l * nq + lc1..][..ntrail].copy_from_slice(&self.recv[src..src + ntrail]);
                }
            }
        }
        comm_s
    }

    /// U row: U₁₂ = L₁₁⁻¹·U₁₂, redundantly on the column; the owners of the top rows store it.
    fn solve_u_row(&mut self, s: &Step) {
        let (nb, p, myrow, nq) = (self.nb, self.p, self.myrow, self.nq);
        let Step {
            k0,
            kb,
            lc1,
            ntrail,
            ..
        } = *s;
        crate::hpl::trsm_unit_lower_separate(
            &self.panel[..kb * kb],
            kb,
            kb,
            &mut self.urows[..kb * ntrail],
            ntrail,
        );
        for j in 0..kb {
            let (who, l) = owner(k0 + j, nb, p);
            if who == myrow {
                self.a[l * nq + lc1..][..ntrail]
                    .copy_from_slice(&self.urows[j * ntrail..(j + 1) * ntrail]);
            }
        }
    }

    /// Update: this rank's rows below the panel, A₂₂ −= L₂₁·U₁₂ through the tuned DGEMM.
    fn update_trailing(&mut self, s: &Step) {
        let (nb, p, myrow, nq) = (self.nb, self.p, self.myrow, self.nq);
        let Step {
            k0,
            kb,
            lc1,
            ntrail,
            ..
        } = *s;
        let lr1 = numroc(k0 + kb, nb, myrow, p);
        let rows = self.mp - lr1;
        if rows == 0 {
            return;
        }
        let panel = &self.panel;
        self.lbuf[..rows * kb]
            .par_chunks_mut(kb)
            .enumerate()
            .with_min_len(64)
            .for_each(|(i, dst)| {
                let r = global(lr1 + i, nb, myrow, p) - k0;
                dst.iter_mut()
                    .zip(&panel[r * kb..(r + 1) * kb])
                    .for_each(|(d, v)| *d = -v);
            });
        self.ws.update(
            rows,
            ntrail,
            kb,
            &self.lbuf[..rows * kb],
            kb,
            &self.urows[..kb * ntrail],
            ntrail,
            &mut self.a[lr1 * nq + lc1..],
            nq,
        );
    }

    /// Distributed back substitution; every rank ends with all of x. Returns MPI seconds.
    fn solve(&mut self) -> f64 {
        let (n, nb, p, q) = (self.n, self.nb, self.p, self.q);
        let (myrow, mycol, nq) = (self.myrow, self.mycol, self.nq);
        let mut comm_s = 0.0;
        self.partial.fill(0.0);
        // The column of y = L⁻¹b (global column n).
        let (ycol, ylocal) = owner(n, nb, q);
        let blocks = n.div_ceil(nb);
        let mut sums = vec![0.0; nb];
        let mut xb = vec![0.0; nb];
        for bi in (0..blocks).rev() {
            let r0 = bi * nb;
            let w = nb.min(n - r0);
            let (pr, pc) = (bi % p, bi % q);
            if myrow == pr {
                // My contribution to the block's rows: partial sums minus y where I hold it.
                let (_, l0) = owner(r0, nb, p);
                for (i, sum) in sums[..w].iter_mut().enumerate() {
                    let mut s = self.partial[l0 + i];
                    if mycol == ycol {
                        s -= self.a[(l0 + i) * nq + ylocal];
                    }
                    *sum = s;
                }
                let t = Instant::now();
                let root = self.row.process_at_rank(pc as i32);
                if mycol == pc {
                    let mut total = vec![0.0; w];
                    if q > 1 {
                        root.reduce_into_root(&sums[..w], &mut total[..], SystemOperation::sum());
                    } else {
                        total.copy_from_slice(&sums[..w]);
                    }
                    comm_s += since(t);
                    // Solve the diagonal block: U_bb·x_b = −total.
                    let (_, c0) = owner(r0, nb, q);
                    for i in (0..w).rev() {
                        let rowv = &self.a[(l0 + i) * nq + c0..][..w];
                        let s: f64 = (i + 1..w).map(|j| rowv[j] * xb[j]).sum();
                        xb[i] = (-total[i] - s) / rowv[i];
                    }
                } else {
                    if q > 1 {
                        root.reduce_into(&sums[..w], SystemOperation::sum());
                    }
                    comm_s += since(t);
                }
            }
            let t = Instant::now();
            self.world
                .process_at_rank((pr * q + pc) as i32)
                .broadcast_into(&mut xb[..w]);
            comm_s += since(t);
            self.x[r0..r0 + w].copy_from_slice(&xb[..w]);
            // My rows above the block accumulate U[·, block]·x_block.
            if mycol == pc {
                let (_, c0) = owner(r0, nb, q);
                let above = numroc(r0, nb, myrow, p);
                let a = &self.a;
                let xb = &xb[..w];
                self.partial[..above]
                    .par_iter_mut()
                    .enumerate()
                    .with_min_len(256)
                    .for_each(|(l, s)| {
                        let rowv = &a[l * nq + c0..][..w];
                        *s += rowv.iter().zip(xb).map(|(u, x)| u * x).sum::<f64>();
                    });
            }
        }
        comm_s
    }

    /// HPL's residual of the last run, the same on every rank (collective).
    pub fn residual(&self) -> Residual {
        let (me, size) = (self.world.rank() as usize, self.world.size() as usize);
        let rows = block_range(self.n, size, me);
        let (r, a, b) = residual_rows(self.seed, self.n, rows, &self.x);
        // MPI's maximum of a NaN is undefined: send it as infinity, which fails the check too.
        let fix = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        let local = [fix(r), a, b];
        let mut all = [0.0f64; 3];
        self.world
            .all_reduce_into(&local[..], &mut all[..], SystemOperation::max());
        let norm_x = self.x.iter().fold(0.0, |m: f64, v| nan_max(m, v.abs()));
        Residual::new(self.n, all[0], all[1], fix(norm_x), all[2])
    }

    /// Check the last run with HPL's scaled residual (collective), then refill the local blocks.
    pub fn check(&mut self) -> Result<Residual, String> {
        let res = self.residual();
        self.refill();
        res.check(&format!(
            "mpi.hpl n={} nb={} grid {}×{}",
            self.n, self.nb, self.p, self.q
        ))
        .map(|()| res)
    }

    /// Break the last run's factorisation on purpose (one entry of U near the middle changed by 1%
    /// on its owner) and solve again (collective). For tests of the check only.
    #[doc(hidden)]
    pub fn break_factorization(&mut self) {
        let (n, nb) = (self.n, self.nb);
        let i = n / 2;
        let j = (i + 1).min(n - 1);
        let (pr, li) = owner(i, nb, self.p);
        let (pc, lj) = owner(j, nb, self.q);
        if pr == self.myrow && pc == self.mycol {
            let v = &mut self.a[li * self.nq + lj];
            *v = *v * 1.01 + 0.01;
        }
        self.solve();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_put_the_smaller_factor_first() {
        assert_eq!(grid(1), (1, 1));
        assert_eq!(grid(2), (1, 2));
        assert_eq!(grid(4), (2, 2));
        assert_eq!(grid(6), (2, 3));
        assert_eq!(grid(8), (2, 4));
        assert_eq!(grid(7), (1, 7));
    }

    #[test]
    fn numroc_and_index_maps_cover_every_row_once() {
        for (n, nb, procs) in [
            (10usize, 3usize, 2usize),
            (7, 7, 3),
            (1, 4, 2),
            (100, 8, 3),
            (9, 2, 4),
        ] {
            let total: usize = (0..procs).map(|me| numroc(n, nb, me, procs)).sum();
            assert_eq!(total, n, "n={n} nb={nb} procs={procs}");
            let mut seen = vec![false; n];
            for me in 0..procs {
                for l in 0..numroc(n, nb, me, procs) {
                    let g = global(l, nb, me, procs);
                    assert!(!seen[g]);
                    seen[g] = true;
                    assert_eq!(owner(g, nb, procs), (me, l));
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
    }
}
