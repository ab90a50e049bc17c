//! Portable micro-kernel: a 4 × 8 tile of C in a local array, written so the compiler can keep it in
//! registers and vectorise it for the baseline target (SSE2 on x86-64, NEON on AArch64). No FMA:
//! without hardware FMA a fused multiply-add would be a slow library call.

use super::{Blocking, MicroKernel};

const MR: usize = 4;
const NR: usize = 8;

/// Blocking for this kernel: KC × NR of B̃ (256 × 8 × 8 B = 16 KiB) in L1, MC × KC of Ã
/// (128 × 256 × 8 B = 256 KiB) in L2.
pub const BLOCKING: Blocking = Blocking {
    mc: 128,
    kc: 256,
    nc: 4096,
};

/// The portable micro-kernel.
pub struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = NR;

    #[inline]
    unsafe fn tile(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
    ) {
        // SAFETY: the caller guarantees `a` holds kc·MR and `b` kc·NR values.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, kc * MR),
                std::slice::from_raw_parts(b, kc * NR),
            )
        };
        let mut acc = [[0.0f64; NR]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for (row, &av) in acc.iter_mut().zip(ap) {
                for (x, &bv) in row.iter_mut().zip(bp) {
                    *x += av * bv;
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            // SAFETY: the caller guarantees C rows 0..MR at stride ldc hold NR values.
            let dst = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), NR) };
            if accumulate {
                dst.iter_mut().zip(row).for_each(|(d, s)| *d += s);
            } else {
                dst.copy_from_slice(row);
            }
        }
    }
}
