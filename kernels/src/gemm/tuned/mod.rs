//! The tuned DGEMM: the Goto/BLIS algorithm with packed panels and a register-blocked SIMD
//! micro-kernel.
//!
//! ```text
//! for jc in 0..n step NC                      columns of C and B
//!   for pc in 0..k step KC                    the shared dimension
//!     pack B[pc.., jc..] into B̃ (KC × NC)     in parallel; B̃ is shared by all threads (L3)
//!     for each thread's band of rows of C     (the ic loop, split over the pool)
//!       for ic in band step MC
//!         pack A[ic.., pc..] into Ã (MC × KC) per thread (L2)
//!         for jr in 0..NC step NR             one KC × NR micro-panel of B̃ (L1/L2)
//!           for ir in 0..MC step MR           one MR × KC micro-panel of Ã (streamed from L2)
//!             C[ir.., jr..] += Ã_ir · B̃_jr    the micro-kernel: an MR × NR tile of C in registers
//! ```
//!
//! The micro-kernel keeps an `MR × NR` tile of C in vector registers and, for each of the KC steps,
//! loads one row of the B micro-panel (NR/lanes vectors) and broadcasts MR values of A, issuing
//! `MR · NR / lanes` independent FMAs: enough independent accumulators to cover the FMA latency on
//! both FMA pipes, and far fewer loads than FMAs. Packing makes both micro-panels contiguous and
//! aligned, with zero padding at the edges, so the micro-kernel never sees a partial tile; partial
//! tiles of C are written through a small buffer.
//!
//! Each thread packs its own Ã into its own buffer of the [`Workspace`] and works on its own band of
//! rows of C (a static partition, `ceil(m / threads)` rows rounded up to MR), so threads never write
//! the same memory; B̃ is packed once per (jc, pc) by all threads together and then read by all.
//!
//! Three micro-kernels are chosen at run time ([`Isa::detect`]): AVX-512F + FMA (`avx512`, 14 × 16),
//! AVX2 + FMA (`avx2`, 6 × 8) and a portable one (`portable`, 4 × 8) for other CPUs. Work: 2n³
//! flops, like every variant.
//!
//! References: K. Goto and R. A. van de Geijn, "Anatomy of High-Performance Matrix Multiplication",
//! ACM TOMS 34(3), 2008; T. M. Low et al., "Analytical Modeling Is Enough for High-Performance BLIS",
//! ACM TOMS 43(2), 2016 (how MR, NR, KC, MC and NC follow from the register file and caches).

mod avx2;
mod avx512;
mod portable;

use rayon::prelude::*;

use super::check_dims;

/// Instruction sets the tuned variant has a micro-kernel for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512F + FMA: 512-bit vectors (8 doubles), 32 registers.
    Avx512,
    /// AVX2 + FMA: 256-bit vectors (4 doubles), 16 registers.
    Avx2,
    /// Plain Rust that the compiler vectorises for the baseline target (SSE2 on x86-64).
    Portable,
}

impl Isa {
    /// The best micro-kernel this CPU can run.
    pub fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if avx512::available() {
                return Isa::Avx512;
            }
            if avx2::available() {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    /// Whether this CPU can run the micro-kernel.
    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => avx512::available(),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2::available(),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx512 | Isa::Avx2 => false,
            Isa::Portable => true,
        }
    }

    /// Lower-case name: "avx512", "avx2", "portable".
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Portable => "portable",
        }
    }

    /// Micro-tile shape `(MR, NR)` of this instruction set's micro-kernel.
    pub fn tile(self) -> (usize, usize) {
        match self {
            Isa::Avx512 => (avx512::Kernel::MR, avx512::Kernel::NR),
            Isa::Avx2 => (avx2::Kernel::MR, avx2::Kernel::NR),
            Isa::Portable => (portable::Kernel::MR, portable::Kernel::NR),
        }
    }

    /// Default cache blocking for this instruction set's micro-kernel.
    pub fn blocking(self) -> Blocking {
        match self {
            Isa::Avx512 => avx512::BLOCKING,
            Isa::Avx2 => avx2::BLOCKING,
            Isa::Portable => portable::BLOCKING,
        }
    }
}

/// Cache blocking of the tuned variant (see the module documentation for the loop nest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blocking {
    /// Rows of A packed at once per thread (the Ã block, L2/L3); rounded up to a multiple of MR.
    pub mc: usize,
    /// Depth of the packed panels (the shared dimension): each micro-tile of C is loaded and
    /// stored once per KC steps of its micro-kernel.
    pub kc: usize,
    /// Columns of B packed at once (the shared B̃ panel, L3); rounded up to a multiple of NR.
    pub nc: usize,
}

/// A register-blocked micro-kernel.
pub(crate) trait MicroKernel {
    /// Rows of the micro-tile (values of A broadcast per step).
    const MR: usize;
    /// Columns of the micro-tile (a multiple of the vector width).
    const NR: usize;
    /// `C[0..MR][0..NR] (+)= Σₚ a[p·MR + i] · b[p·NR + j]` for `p < kc`; with `accumulate` false C is
    /// overwritten.
    ///
    /// # Safety
    /// `a` holds `kc·MR` values, `b` holds `kc·NR`, C rows `0..MR` at stride `ldc` hold `NR` values
    /// each, and the CPU supports the kernel's instruction set. `b` is aligned to [`B_ALIGN`] bytes:
    /// the SIMD kernels read B̃ with aligned vector loads (`_mm256_load_pd`, `_mm512_load_pd`), one
    /// row of `NR` doubles per step, so `NR · 8` is a multiple of the vector width too. `a` and C
    /// need only `f64` alignment.
    unsafe fn tile(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
    );
}

/// The alignment in bytes of the packed B̃ micro-panels that [`MicroKernel::tile`] requires: the
/// widest vector (AVX-512, 64 bytes), which the AVX2 kernel's 32 bytes divide. [`AlignedBuf`]
/// starts every panel buffer on a cache line, and each micro-panel is `kc · NR` doubles, a multiple
/// of 8, so every micro-panel and every row of it stays aligned.
pub(crate) const B_ALIGN: usize = 64;

/// A 64-byte aligned cache line of doubles (packed panels start on cache lines).
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f64; 8]);
const _: () = assert!(std::mem::align_of::<Line>() == B_ALIGN);

/// A growable, 64-byte aligned buffer of doubles.
#[derive(Default)]
struct AlignedBuf(Vec<Line>);

impl AlignedBuf {
    fn ensure(&mut self, len: usize) {
        let lines = len.div_ceil(8);
        if self.0.len() < lines {
            self.0 = vec![Line([0.0; 8]); lines];
        }
    }

    fn slice_mut(&mut self, len: usize) -> &mut [f64] {
        self.ensure(len);
        // SAFETY: `Line` is `repr(C)` around `[f64; 8]` (no padding: size 64 = 8 doubles), so the
        // buffer is `8 · lines` initialised doubles, of which the first `len` are taken.
        unsafe { std::slice::from_raw_parts_mut(self.0.as_mut_ptr().cast::<f64>(), len) }
    }
}

/// Packing buffers of the tuned variant and its micro-kernel choice.
///
/// Make one per matrix size and pool, and [`Workspace::reserve`] it before timing: then
/// [`Workspace::gemm`] never allocates. (It grows the buffers itself if called with a larger `n` or
/// in a larger pool than reserved.)
pub struct Workspace {
    isa: Isa,
    blocking: Blocking,
    b_pack: AlignedBuf,
    a_pack: Vec<AlignedBuf>,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

impl Workspace {
    /// A workspace for the best micro-kernel of this CPU ([`Isa::detect`]); no buffers yet.
    pub fn new() -> Workspace {
        Workspace::with_isa(Isa::detect())
    }

    /// A workspace for a given micro-kernel, or `None` when this CPU cannot run it.
    pub fn for_isa(isa: Isa) -> Option<Workspace> {
        isa.available().then(|| Workspace::with_isa(isa))
    }

    fn with_isa(isa: Isa) -> Workspace {
        Workspace {
            isa,
            blocking: isa.blocking(),
            b_pack: AlignedBuf::default(),
            a_pack: Vec::new(),
        }
    }

    /// The same workspace with other cache blocking (rounded to the micro-tile, at least one tile).
    pub fn with_blocking(mut self, blocking: Blocking) -> Workspace {
        let (mr, nr) = self.isa.tile();
        self.blocking = Blocking {
            mc: blocking.mc.max(1).next_multiple_of(mr),
            kc: blocking.kc.max(1),
            nc: blocking.nc.max(1).next_multiple_of(nr),
        };
        self
    }

    /// The micro-kernel in use.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// The cache blocking in use.
    pub fn blocking(&self) -> Blocking {
        self.blocking
    }

    /// Allocate the packing buffers for `n × n` products in the current pool.
    pub fn reserve(&mut self, n: usize) {
        self.reserve_mnk(n, n, n);
    }

    /// Allocate the packing buffers for `m × k` by `k × n` products (see [`Workspace::update`])
    /// in the current pool.
    pub fn reserve_mnk(&mut self, m: usize, n: usize, k: usize) {
        let (mr, nr) = self.isa.tile();
        let Blocking { mc, kc, nc } = self.blocking;
        let kc = kc.min(k).max(1);
        self.b_pack.ensure(kc * nc.min(n.next_multiple_of(nr)));
        let threads = rayon::current_num_threads();
        if self.a_pack.len() < threads {
            self.a_pack.resize_with(threads, AlignedBuf::default);
        }
        for buf in &mut self.a_pack {
            buf.ensure(kc * mc.min(m.next_multiple_of(mr)));
        }
    }

    /// `C = A·B` for `n × n` row-major matrices, in the current rayon pool. Panics if a slice is not
    /// `n²` long.
    pub fn gemm(&mut self, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
        check_dims(n, a, b, c);
        if n == 0 {
            return;
        }
        self.reserve(n);
        let shape = Shape {
            m: n,
            n,
            k: n,
            lda: n,
            ldb: n,
            ldc: n,
            overwrite: true,
        };
        self.dispatch(&shape, a, b, c);
    }

    /// `C += A·B` for a row-major `m × k` A (row stride `lda`), `k × n` B (row stride `ldb`) and
    /// `m × n` C (row stride `ldc`), in the current rayon pool: the general product the blocked LU
    /// factorisation's trailing update `A₂₂ −= L₂₁·U₁₂` needs (it passes −L₂₁). The slices start at
    /// the first element of each matrix and must reach its last (`(rows − 1)·ld + cols`
    /// elements); panics otherwise.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        m: usize,
        n: usize,
        k: usize,
        a: &[f64],
        lda: usize,
        b: &[f64],
        ldb: usize,
        c: &mut [f64],
        ldc: usize,
    ) {
        if m == 0 || n == 0 || k == 0 {
            return;
        }
        let need = |rows: usize, cols: usize, ld: usize| (rows - 1) * ld + cols;
        assert!(
            lda >= k && ldb >= n && ldc >= n,
            "gemm update: row strides ({lda}, {ldb}, {ldc}) shorter than rows ({k}, {n}, {n})"
        );
        assert!(
            a.len() >= need(m, k, lda) && b.len() >= need(k, n, ldb) && c.len() >= need(m, n, ldc),
            "gemm update: A, B or C shorter than its {m} × {k}, {k} × {n}, {m} × {n} shape"
        );
        self.reserve_mnk(m, n, k);
        let shape = Shape {
            m,
            n,
            k,
            lda,
            ldb,
            ldc,
            overwrite: false,
        };
        let c = &mut c[..need(m, n, ldc)];
        self.dispatch(&shape, a, b, c);
    }

    fn dispatch(&mut self, shape: &Shape, a: &[f64], b: &[f64], c: &mut [f64]) {
        match self.isa {
            // A workspace only holds an `Isa` this CPU supports (`for_isa`, `detect`).
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => drive::<avx512::Kernel>(self, shape, a, b, c),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => drive::<avx2::Kernel>(self, shape, a, b, c),
            _ => drive::<portable::Kernel>(self, shape, a, b, c),
        }
    }
}

/// The shape of one product for [`drive`]: `m × k` by `k × n`, row strides, and whether C is
/// overwritten (`C = A·B`) or accumulated into (`C += A·B`).
struct Shape {
    m: usize,
    n: usize,
    k: usize,
    lda: usize,
    ldb: usize,
    ldc: usize,
    overwrite: bool,
}

/// `C = A·B` with the tuned algorithm and the best micro-kernel of this CPU, allocating its packing
/// buffers (use a [`Workspace`] to keep allocation out of a timed region). Panics if a slice is not
/// `n²` long.
pub fn tuned(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    Workspace::new().gemm(n, a, b, c);
}

/// Pack rows `r0..r0+mr` (zero-padded to a multiple of `MR`), columns `p0..p0+kc` of the row-major A
/// (row stride `lda`) into micro-panels: panel `q` holds, for each `p`, the `MR` values of rows
/// `q·MR..q·MR+MR` at depth `p`.
#[allow(clippy::too_many_arguments)]
fn pack_a(
    dst: &mut [f64],
    mr: usize,
    a: &[f64],
    lda: usize,
    r0: usize,
    rows: usize,
    p0: usize,
    kc: usize,
) {
    for (q, panel) in dst.chunks_exact_mut(mr * kc).enumerate() {
        let first = q * mr;
        if first >= rows {
            break;
        }
        let valid = (rows - first).min(mr);
        for i in 0..mr {
            if i < valid {
                let src = &a[(r0 + first + i) * lda + p0..][..kc];
                for (p, &v) in src.iter().enumerate() {
                    panel[p * mr + i] = v;
                }
            } else {
                for p in 0..kc {
                    panel[p * mr + i] = 0.0;
                }
            }
        }
    }
}

/// Pack one `kc × NR` micro-panel of B: rows `p0..p0+kc`, columns `j0..j0+cols` (zero-padded to
/// `NR`) of the row-major B (row stride `ldb`), row after row.
#[allow(clippy::too_many_arguments)]
fn pack_b(
    dst: &mut [f64],
    nr: usize,
    b: &[f64],
    ldb: usize,
    p0: usize,
    kc: usize,
    j0: usize,
    cols: usize,
) {
    for (p, row) in dst.chunks_exact_mut(nr).take(kc).enumerate() {
        let src = &b[(p0 + p) * ldb + j0..][..cols];
        row[..cols].copy_from_slice(src);
        row[cols..].fill(0.0);
    }
}

/// Largest micro-tile any kernel uses (for the edge buffer).
const MAX_TILE: usize = 32 * 32;

/// The Goto/BLIS loop nest for an `m × k` by `k × n` product into `m × n` C, all row-major with
/// the row strides of `shape`; `c` ends at C's last element.
fn drive<K: MicroKernel>(ws: &mut Workspace, shape: &Shape, a: &[f64], b: &[f64], c: &mut [f64]) {
    let Shape {
        m,
        n,
        k,
        lda,
        ldb,
        ldc,
        overwrite,
    } = *shape;
    let (mr, nr) = (K::MR, K::NR);
    const { assert!(K::MR * K::NR <= MAX_TILE) };
    // Each micro-panel of B̃ (kc·NR doubles) starts where the last ended: NR doubles must keep the
    // B_ALIGN alignment the buffer starts with.
    const { assert!((K::NR * 8) % B_ALIGN == 0) };
    let Blocking { mc, kc, nc } = ws.blocking;
    let Workspace { b_pack, a_pack, .. } = ws;
    let threads = rayon::current_num_threads().min(a_pack.len()).max(1);
    // Static partition of the rows of C: one band per thread, a multiple of MR rows each.
    let band = m.div_ceil(threads).next_multiple_of(mr);
    for jc in (0..n).step_by(nc) {
        let ncur = nc.min(n - jc);
        let panels = ncur.div_ceil(nr);
        for pc in (0..k).step_by(kc) {
            let kcur = kc.min(k - pc);
            let accumulate = pc > 0 || !overwrite;
            let bp = b_pack.slice_mut(panels * kcur * nr);
            bp.par_chunks_mut(kcur * nr)
                .enumerate()
                .for_each(|(q, dst)| {
                    let j0 = jc + q * nr;
                    pack_b(dst, nr, b, ldb, pc, kcur, j0, nr.min(n - j0));
                });
            let bp: &[f64] = bp;
            c.par_chunks_mut(band * ldc)
                .zip(a_pack.par_iter_mut())
                .enumerate()
                .for_each(|(t, (cband, abuf))| {
                    let r0 = t * band;
                    let rows = band.min(m - r0);
                    let mut edge = [0.0f64; MAX_TILE];
                    for ic in (0..rows).step_by(mc) {
                        let mcur = mc.min(rows - ic);
                        let ap = abuf.slice_mut(mcur.next_multiple_of(mr) * kcur);
                        pack_a(ap, mr, a, lda, r0 + ic, mcur, pc, kcur);
                        for jr in 0..panels {
                            let ncols = nr.min(ncur - jr * nr);
                            let bpanel = bp[jr * kcur * nr..].as_ptr();
                            debug_assert_eq!(bpanel.addr() % B_ALIGN, 0, "B̃ micro-panel alignment");
                            for ir in (0..mcur).step_by(mr) {
                                let nrows = mr.min(mcur - ir);
                                let apanel = ap[ir * kcur..].as_ptr();
                                let coff = (ic + ir) * ldc + jc + jr * nr;
                                if nrows == mr && ncols == nr {
                                    // SAFETY: full tile inside the band; panels hold kcur·MR and
                                    // kcur·NR values, B̃'s aligned to B_ALIGN (checked above in
                                    // debug builds); the workspace's ISA is supported.
                                    unsafe {
                                        K::tile(
                                            kcur,
                                            apanel,
                                            bpanel,
                                            cband[coff..].as_mut_ptr(),
                                            ldc,
                                            accumulate,
                                        )
                                    };
                                } else {
                                    // SAFETY: as above, into the MR × NR edge buffer.
                                    unsafe {
                                        K::tile(kcur, apanel, bpanel, edge.as_mut_ptr(), nr, false)
                                    };
                                    for i in 0..nrows {
                                        let dst = &mut cband[coff + i * ldc..][..ncols];
                                        let src = &edge[i * nr..][..ncols];
                                        if accumulate {
                                            dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                                        } else {
                                            dst.copy_from_slice(src);
                                        }
                                    }
                                }
                            }
                        }
                    }
                });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::naive_serial;
    use crate::gemm::tests::{assert_close, inputs};
    use crate::testing::{pool, THREADS};

    /// The CPU flags a micro-kernel needs, for the SKIPPED line of a CPU without them.
    fn cpu_flags(isa: Isa) -> &'static str {
        match isa {
            Isa::Avx512 => "avx512f and fma",
            Isa::Avx2 => "avx2 and fma",
            Isa::Portable => "nothing",
        }
    }

    /// Every micro-kernel this CPU can run (the AVX2 one too on an AVX-512 CPU, so both paths are
    /// tested wherever the CPU allows). One it cannot run is named on stderr as SKIPPED with the
    /// flags it lacks, never dropped silently: these machines vary between AVX2-only and
    /// AVX-512 CPUs.
    fn isas() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Portable]
            .into_iter()
            .filter(|&isa| {
                let ok = isa.available();
                if !ok {
                    eprintln!(
                        "SKIPPED: the {} micro-kernel is not tested: this CPU lacks {}",
                        isa.name(),
                        cpu_flags(isa)
                    );
                }
                ok
            })
            .collect()
    }

    /// Says which micro-kernels this run tests and which it skips (`.config/nextest.toml` shows
    /// this test's output even when it passes), and checks that an AVX-512 CPU also tests the
    /// AVX2 kernel.
    #[test]
    fn micro_kernels_tested_on_this_cpu_are_listed_and_skips_named() {
        let tested = isas();
        let names: Vec<&str> = tested.iter().map(|i| i.name()).collect();
        eprintln!("micro-kernels tested on this CPU: {}", names.join(", "));
        assert!(tested.contains(&Isa::Portable));
        if Isa::Avx512.available() {
            assert!(
                tested.contains(&Isa::Avx2),
                "an AVX-512 CPU runs the AVX2 kernel too"
            );
        }
        assert_eq!(tested.contains(&Isa::Avx2), avx2::available());
    }

    #[test]
    fn every_micro_kernel_with_tiny_blocks_matches_the_reference() {
        // Tiny blocks exercise every loop of the nest (several jc, pc and ic blocks, edge tiles)
        // at sizes a debug build checks quickly.
        for isa in isas() {
            let (mr, nr) = isa.tile();
            let tiny = Blocking {
                mc: 2 * mr,
                kc: 5,
                nc: 2 * nr,
            };
            for n in [1usize, 2, 5, mr + 1, nr + 3, 2 * mr * 2 + 1, 3 * nr + 1] {
                let (a, b) = inputs(n);
                let mut want = vec![0.0; n * n];
                naive_serial(n, &a, &b, &mut want);
                for t in THREADS {
                    let mut c = vec![f64::NAN; n * n];
                    pool(t).install(|| {
                        let mut ws = Workspace::for_isa(isa).unwrap().with_blocking(tiny);
                        ws.gemm(n, &a, &b, &mut c);
                    });
                    assert_close(n, &a, &b, &c, &want, &format!("{} n={n} t={t}", isa.name()));
                }
            }
        }
    }

    #[test]
    fn default_blockings_are_consistent() {
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Portable] {
            let (mr, nr) = isa.tile();
            let b = isa.blocking();
            assert_eq!(b.mc % mr, 0, "{isa:?}");
            assert_eq!(b.nc % nr, 0, "{isa:?}");
            assert!(mr * nr <= MAX_TILE && nr % 4 == 0 && b.kc > 0, "{isa:?}");
        }
    }

    /// Default blocking across its block edges (n > KC and > MC). The workspace builds this crate
    /// optimised in test builds too (`[profile.dev.package.scalelab-kernels]`), which keeps this fast.
    #[test]
    fn default_blocking_across_block_edges() {
        for isa in isas() {
            let b = isa.blocking();
            let n = b.kc.max(b.mc) + 3;
            let (a, bm) = inputs(n);
            let mut want = vec![0.0; n * n];
            naive_serial(n, &a, &bm, &mut want);
            for t in [1, 2, 3] {
                let mut c = vec![f64::NAN; n * n];
                pool(t).install(|| Workspace::for_isa(isa).unwrap().gemm(n, &a, &bm, &mut c));
                assert_close(
                    n,
                    &a,
                    &bm,
                    &c,
                    &want,
                    &format!("{} n={n} t={t}", isa.name()),
                );
            }
        }
    }

    #[test]
    fn default_blocking_small_sizes() {
        for isa in isas() {
            let (mr, nr) = isa.tile();
            for n in [2 * mr + 3, nr * 2 + 5] {
                let (a, b) = inputs(n);
                let mut want = vec![0.0; n * n];
                naive_serial(n, &a, &b, &mut want);
                let mut c = vec![f64::NAN; n * n];
                pool(2).install(|| Workspace::for_isa(isa).unwrap().gemm(n, &a, &b, &mut c));
                assert_close(n, &a, &b, &c, &want, &format!("{} n={n}", isa.name()));
            }
        }
    }

    /// `C += A·B` on strided sub-matrices of larger arrays (the LU trailing update's shape):
    /// every element inside C's window matches the serial sum, every element outside is untouched.
    #[test]
    fn strided_update_accumulates_inside_its_window_only() {
        for isa in isas() {
            let (mr, nr) = isa.tile();
            let tiny = Blocking {
                mc: 2 * mr,
                kc: 5,
                nc: 2 * nr,
            };
            for (m, n, k) in [
                (1usize, 1usize, 1usize),
                (7, 3, 2),
                (2 * mr + 3, 3 * nr + 1, 11),
            ] {
                let (lda, ldb, ldc) = (k + 3, n + 5, n + 2);
                let a = crate::testing::random_vec(m * lda, 1);
                let b = crate::testing::random_vec(k * ldb, 2);
                let c0 = crate::testing::random_vec(m * ldc, 3);
                for t in [1, 3] {
                    let mut c = c0.clone();
                    pool(t).install(|| {
                        let mut ws = Workspace::for_isa(isa).unwrap().with_blocking(tiny);
                        ws.update(m, n, k, &a, lda, &b, ldb, &mut c, ldc);
                    });
                    for i in 0..m {
                        for j in 0..ldc {
                            let got = c[i * ldc + j];
                            if j >= n {
                                assert_eq!(got, c0[i * ldc + j], "outside ({i}, {j})");
                                continue;
                            }
                            let want: f64 = c0[i * ldc + j]
                                + (0..k).map(|p| a[i * lda + p] * b[p * ldb + j]).sum::<f64>();
                            assert!(
                                (got - want).abs() <= 1e-12 * (k as f64 + 1.0),
                                "{} m={m} n={n} k={k} t={t} ({i}, {j}): {got} vs {want}",
                                isa.name()
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn workspace_reuse_and_growth() {
        let mut ws = Workspace::new();
        for n in [9usize, 40, 3] {
            let (a, b) = inputs(n);
            let mut want = vec![0.0; n * n];
            naive_serial(n, &a, &b, &mut want);
            let mut c = vec![0.0; n * n];
            pool(2).install(|| ws.gemm(n, &a, &b, &mut c));
            assert_close(n, &a, &b, &c, &want, &format!("reuse n={n}"));
        }
    }
}
