//! Launch configurations: grid and block sizes and the static shared memory of every kernel,
//! checked against the limits every CUDA device since compute capability 3.0 shares (1024
//! threads per block, grids of 2³¹−1 × 65535 blocks, 48 KiB of static shared memory per block).
//!
//! The constants mirror the `#define`s of the `.cu` sources; a test in the parent module reads
//! the sources and checks they agree.

use super::{Gemm, Reduce, Transpose};

/// Threads per block of the element-wise kernels.
pub const ELEMENTWISE_BLOCK: u32 = 256;
/// Threads per block of the reductions (`REDUCE_BLOCK` in reduce.cu).
pub const REDUCE_BLOCK: u32 = 256;
/// Blocks per SM of the grid-stride reduction: enough resident warps to hide memory latency.
pub const GRIDSTRIDE_BLOCKS_PER_SM: u32 = 8;
/// Transpose tile side (`TILE` in transpose.cu).
pub const TRANSPOSE_TILE: u32 = 32;
/// Transpose block height (`ROWS` in transpose.cu); the block is TILE × ROWS threads.
pub const TRANSPOSE_ROWS: u32 = 8;
/// Naive SGEMM block width and height (`NAIVE_X`, `NAIVE_Y`).
pub const NAIVE_X: u32 = 32;
/// See [`NAIVE_X`].
pub const NAIVE_Y: u32 = 8;
/// Tiled SGEMM tile side (`TILE` in sgemm.cu); the block is TILE × TILE threads.
pub const GEMM_TILE: u32 = 32;
/// Register-blocked SGEMM: block tile rows (`BM`).
pub const REG_BM: u32 = 128;
/// Register-blocked SGEMM: block tile columns (`BN`).
pub const REG_BN: u32 = 128;
/// Register-blocked SGEMM: k-step staged in shared memory (`BK`).
pub const REG_BK: u32 = 16;
/// Register-blocked SGEMM: rows of C per thread (`TM`).
pub const REG_TM: u32 = 8;
/// Register-blocked SGEMM: columns of C per thread (`TN`).
pub const REG_TN: u32 = 8;

/// Most threads in one block.
pub const MAX_THREADS_PER_BLOCK: u32 = 1024;
/// Most blocks along x.
pub const MAX_GRID_X: u64 = (1 << 31) - 1;
/// Most blocks along y and z.
pub const MAX_GRID_YZ: u64 = 65_535;
/// Most static (`__shared__`) memory per block.
pub const MAX_STATIC_SHARED: u32 = 48 * 1024;

/// One kernel launch: grid and block dimensions and the static shared memory the kernel declares
/// (for checking; no dynamic shared memory is used).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Launch {
    /// Blocks along x, y, z.
    pub grid: (u32, u32, u32),
    /// Threads per block along x, y, z.
    pub block: (u32, u32, u32),
    /// Bytes of `__shared__` arrays per block.
    pub static_shared: u32,
}

impl Launch {
    /// Threads in one block.
    pub fn threads_per_block(&self) -> u32 {
        self.block.0 * self.block.1 * self.block.2
    }

    /// Threads in the whole grid.
    pub fn total_threads(&self) -> u64 {
        u64::from(self.threads_per_block())
            * u64::from(self.grid.0)
            * u64::from(self.grid.1)
            * u64::from(self.grid.2)
    }

    /// `Ok` when the launch respects the device limits (see the module documentation).
    pub fn check(&self) -> Result<(), String> {
        if self.threads_per_block() == 0 || self.threads_per_block() > MAX_THREADS_PER_BLOCK {
            return Err(format!(
                "{} threads per block (limit {MAX_THREADS_PER_BLOCK})",
                self.threads_per_block()
            ));
        }
        let (x, y, z) = self.grid;
        if x == 0 || u64::from(x) > MAX_GRID_X || y == 0 || u64::from(y) > MAX_GRID_YZ || z == 0 {
            return Err(format!("grid {x} x {y} x {z} is outside the device limits"));
        }
        if self.static_shared > MAX_STATIC_SHARED {
            return Err(format!(
                "{} bytes of shared memory per block (limit {MAX_STATIC_SHARED})",
                self.static_shared
            ));
        }
        Ok(())
    }
}

/// Blocks to cover `n` with `per_block` each, or an error past `limit` blocks.
fn blocks(n: u64, per_block: u64, limit: u64, what: &str) -> Result<u32, String> {
    let b = n.div_ceil(per_block).max(1);
    if b > limit {
        return Err(format!(
            "{what} needs {b} blocks along one grid dimension, more than the {limit} a device allows; use a smaller size"
        ));
    }
    Ok(b as u32)
}

/// An element-wise kernel over `n` elements: one element per thread.
pub fn elementwise(n: u64) -> Result<Launch, String> {
    Ok(Launch {
        grid: (
            blocks(n, ELEMENTWISE_BLOCK.into(), MAX_GRID_X, "the kernel")?,
            1,
            1,
        ),
        block: (ELEMENTWISE_BLOCK, 1, 1),
        static_shared: 0,
    })
}

/// A reduction of `n` elements on a device with `sms` multiprocessors.
pub fn reduce(variant: Reduce, n: u64, sms: u32) -> Result<Launch, String> {
    let u64_bytes = 8;
    let (grid, static_shared) = match variant {
        Reduce::Atomic => (blocks(n, REDUCE_BLOCK.into(), MAX_GRID_X, "reduce")?, 0),
        Reduce::Shared => (
            blocks(n, REDUCE_BLOCK.into(), MAX_GRID_X, "reduce")?,
            REDUCE_BLOCK * u64_bytes,
        ),
        Reduce::Shuffle => (
            blocks(n, REDUCE_BLOCK.into(), MAX_GRID_X, "reduce")?,
            REDUCE_BLOCK / 32 * u64_bytes,
        ),
        Reduce::GridStride => {
            let needed = blocks(n, REDUCE_BLOCK.into(), MAX_GRID_X, "reduce")?;
            (
                (sms.max(1) * GRIDSTRIDE_BLOCKS_PER_SM).min(needed),
                REDUCE_BLOCK / 32 * u64_bytes,
            )
        }
    };
    Ok(Launch {
        grid: (grid, 1, 1),
        block: (REDUCE_BLOCK, 1, 1),
        static_shared,
    })
}

/// A transpose of a `rows × cols` matrix: one block per TILE × TILE tile.
pub fn transpose(variant: Transpose, rows: u64, cols: u64) -> Result<Launch, String> {
    let tile = u64::from(TRANSPOSE_TILE);
    Ok(Launch {
        grid: (
            blocks(cols, tile, MAX_GRID_X, "transpose")?,
            blocks(rows, tile, MAX_GRID_YZ, "transpose")?,
            1,
        ),
        block: (TRANSPOSE_TILE, TRANSPOSE_ROWS, 1),
        static_shared: match variant {
            Transpose::Naive => 0,
            Transpose::Tiled => TRANSPOSE_TILE * (TRANSPOSE_TILE + 1) * 4,
        },
    })
}

/// A hand-written SGEMM with C of `m × n` and inner dimension `k`. `None` for cuBLAS variants.
/// The register-blocked kernel has no edge handling: `m` and `n` must be multiples of 128 and
/// `k` of 16 ([`gemm_shape_ok`]).
pub fn gemm(variant: Gemm, m: u64, n: u64, k: u64) -> Result<Option<Launch>, String> {
    let launch = match variant {
        Gemm::Naive => Launch {
            grid: (
                blocks(n, NAIVE_X.into(), MAX_GRID_X, "sgemm")?,
                blocks(m, NAIVE_Y.into(), MAX_GRID_YZ, "sgemm")?,
                1,
            ),
            block: (NAIVE_X, NAIVE_Y, 1),
            static_shared: 0,
        },
        Gemm::Tiled => Launch {
            grid: (
                blocks(n, GEMM_TILE.into(), MAX_GRID_X, "sgemm")?,
                blocks(m, GEMM_TILE.into(), MAX_GRID_YZ, "sgemm")?,
                1,
            ),
            block: (GEMM_TILE, GEMM_TILE, 1),
            static_shared: 2 * GEMM_TILE * GEMM_TILE * 4,
        },
        Gemm::RegBlock => {
            gemm_shape_ok(variant, m, n, k)?;
            Launch {
                grid: (
                    blocks(n, REG_BN.into(), MAX_GRID_X, "sgemm")?,
                    blocks(m, REG_BM.into(), MAX_GRID_YZ, "sgemm")?,
                    1,
                ),
                block: ((REG_BM / REG_TM) * (REG_BN / REG_TN), 1, 1),
                static_shared: (REG_BK * REG_BM + REG_BK * REG_BN) * 4,
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(launch))
}

/// Whether a variant can multiply these shapes, with the fix when it cannot. Every variant takes
/// dimensions up to 2³¹−1 (cuBLAS and the kernels use 32-bit sizes); `regblock` needs `m` and
/// `n` multiples of 128 and `k` a multiple of 16.
pub fn gemm_shape_ok(variant: Gemm, m: u64, n: u64, k: u64) -> Result<(), String> {
    if m.max(n).max(k) > i32::MAX as u64 {
        return Err(format!(
            "matrix dimensions up to {} are supported; use a smaller size",
            i32::MAX
        ));
    }
    if variant == Gemm::RegBlock
        && !(m.is_multiple_of(u64::from(REG_BM))
            && n.is_multiple_of(u64::from(REG_BN))
            && k.is_multiple_of(u64::from(REG_BK)))
    {
        return Err(format!(
            "variant regblock needs matrix sides that are multiples of {REG_BM} (got m = {m}, n = {n}, k = {k}); use e.g. size = {}",
            n.div_ceil(u64::from(REG_BM)).max(1) * u64::from(REG_BM)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_covers_every_element_once_per_thread() {
        let l = elementwise(1_000_000).unwrap();
        assert_eq!(l.block, (256, 1, 1));
        assert_eq!(l.grid, (3907, 1, 1));
        assert!(l.total_threads() >= 1_000_000 && l.total_threads() < 1_000_000 + 256);
        assert_eq!(elementwise(0).unwrap().grid.0, 1);
        l.check().unwrap();
    }

    #[test]
    fn reductions_use_one_block_per_256_elements_or_a_fixed_grid() {
        for v in Reduce::ALL {
            let l = reduce(v, 1 << 26, 132).unwrap();
            l.check().unwrap();
            let want = if v == Reduce::GridStride {
                132 * 8
            } else {
                (1 << 26) / 256
            };
            assert_eq!(l.grid.0, want, "{v:?}");
        }
        // A small input never gets more blocks than it has elements' worth.
        assert_eq!(reduce(Reduce::GridStride, 1000, 132).unwrap().grid.0, 4);
        assert_eq!(reduce(Reduce::Shared, 1, 132).unwrap().static_shared, 2048);
    }

    #[test]
    fn transpose_has_one_block_per_tile() {
        let l = transpose(Transpose::Tiled, 1000, 2048).unwrap();
        assert_eq!(l.grid, (64, 32, 1));
        assert_eq!(l.block, (32, 8, 1));
        assert_eq!(l.static_shared, 32 * 33 * 4);
        l.check().unwrap();
        let err = transpose(Transpose::Naive, 32 * 70_000, 32).unwrap_err();
        assert!(err.contains("more than the 65535"), "{err}");
    }

    #[test]
    fn gemm_launches_cover_c_and_fit_the_limits() {
        let n = 4096;
        let naive = gemm(Gemm::Naive, n, n, n).unwrap().unwrap();
        assert_eq!((naive.grid, naive.block), ((128, 512, 1), (32, 8, 1)));
        let tiled = gemm(Gemm::Tiled, n, n, n).unwrap().unwrap();
        assert_eq!((tiled.grid, tiled.block), ((128, 128, 1), (32, 32, 1)));
        assert_eq!(tiled.static_shared, 8192);
        let reg = gemm(Gemm::RegBlock, n, n, n).unwrap().unwrap();
        assert_eq!((reg.grid, reg.block), ((32, 32, 1), (256, 1, 1)));
        assert_eq!(reg.static_shared, 16 * 1024);
        for l in [naive, tiled, reg] {
            l.check().unwrap();
        }
        // Each register-blocked thread owns TM x TN elements of C: the grid covers C exactly.
        assert_eq!(reg.total_threads() * 64, n * n);
        assert_eq!(gemm(Gemm::Cublas, n, n, n).unwrap(), None);
    }

    #[test]
    fn regblock_refuses_ragged_shapes_with_the_fix() {
        let err = gemm(Gemm::RegBlock, 1000, 1000, 1000).unwrap_err();
        assert_eq!(
            err,
            "variant regblock needs matrix sides that are multiples of 128 (got m = 1000, n = 1000, k = 1000); use e.g. size = 1024"
        );
        gemm(Gemm::Tiled, 1000, 1000, 1000).unwrap();
    }

    #[test]
    fn limits_are_checked() {
        let mut l = elementwise(10).unwrap();
        l.block.0 = 2048;
        assert_eq!(
            l.check().unwrap_err(),
            "2048 threads per block (limit 1024)"
        );
        l.block.0 = 256;
        l.static_shared = 64 * 1024;
        assert!(l.check().unwrap_err().contains("shared memory"));
    }
}

/// The element of C that thread `tid` of a register-blocked block writes as its `(i, j)`-th
/// accumulator, relative to the block's tile: the index arithmetic of `sgemm_regblock`, mirrored
/// so that a test can check that the threads cover the tile exactly once.
pub fn regblock_element(tid: u32, i: u32, j: u32) -> (u32, u32) {
    let (tcol, trow) = (tid % (REG_BN / REG_TN), tid / (REG_BN / REG_TN));
    let (hm, hn) = (REG_TM / 2, REG_TN / 2);
    (
        (i / hm) * (REG_BM / 2) + trow * hm + i % hm,
        (j / hn) * (REG_BN / 2) + tcol * hn + j % hn,
    )
}

#[cfg(test)]
mod coverage {
    use super::*;

    #[test]
    fn register_tiles_cover_the_block_tile_exactly_once() {
        let threads = (REG_BM / REG_TM) * (REG_BN / REG_TN);
        let mut hits = vec![0u8; (REG_BM * REG_BN) as usize];
        for tid in 0..threads {
            for i in 0..REG_TM {
                for j in 0..REG_TN {
                    let (r, c) = regblock_element(tid, i, j);
                    hits[(r * REG_BN + c) as usize] += 1;
                }
            }
        }
        assert!(hits.iter().all(|&h| h == 1));
        // The 16 threads of a half-warp that share a row read 16 consecutive float4 of B's tile.
        let cols: Vec<u32> = (0..16).map(|t| regblock_element(t, 0, 0).1).collect();
        assert_eq!(cols, (0..16).map(|t| 4 * t).collect::<Vec<_>>());
    }

    #[test]
    fn tile_loads_cover_the_staged_tiles_exactly_once() {
        let threads = (REG_BM / REG_TM) * (REG_BN / REG_TN);
        // A: BM × BK as float4 along k; B: BK × BN as float4 along n (as in sgemm.cu).
        let mut a = vec![0u8; (REG_BM * REG_BK) as usize];
        let mut b = vec![0u8; (REG_BK * REG_BN) as usize];
        for it in 0..REG_BM * REG_BK / 4 / threads {
            for tid in 0..threads {
                let v = tid + it * threads;
                let (r, p) = (v / (REG_BK / 4), (v % (REG_BK / 4)) * 4);
                for q in 0..4 {
                    a[(r * REG_BK + p + q) as usize] += 1;
                }
            }
        }
        for it in 0..REG_BK * REG_BN / 4 / threads {
            for tid in 0..threads {
                let v = tid + it * threads;
                let (p, c) = (v / (REG_BN / 4), (v % (REG_BN / 4)) * 4);
                for q in 0..4 {
                    b[(p * REG_BN + c + q) as usize] += 1;
                }
            }
        }
        assert!(a.iter().all(|&h| h == 1) && b.iter().all(|&h| h == 1));
    }
}
