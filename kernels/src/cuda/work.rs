//! Analytic work of one repetition of each GPU kernel: floating point operations (an FMA counts
//! 2) and the bytes a kernel must move to and from device memory, counted as STREAM counts
//! (each input read once, each output written once, no write-allocate). Caches can only lower
//! the real traffic below this count for the naive kernels, which makes their GB/s an effective
//! figure rather than a hardware one.

use super::{Elementwise, Gemm};

/// FLOPs of an element-wise operation over `n` elements: SAXPY and triad 2 per element, scale
/// and add 1, the copies 0.
pub fn elementwise_flops(op: Elementwise, n: u64) -> f64 {
    let per = match op {
        Elementwise::Saxpy | Elementwise::Triad => 2.0,
        Elementwise::Scale | Elementwise::Add => 1.0,
        Elementwise::Copy | Elementwise::Memcpy => 0.0,
    };
    per * n as f64
}

/// Bytes of an element-wise operation: arrays × element size × `n` (SAXPY 12, copy and scale
/// 16, add and triad 24 bytes per element, the device copy 16).
pub fn elementwise_bytes(op: Elementwise, n: u64) -> f64 {
    (op.arrays() * op.element_bytes()) as f64 * n as f64
}

/// Additions of a reduction of `n` values (counted as operations: the inputs are integers).
pub fn reduce_ops(n: u64) -> f64 {
    n as f64
}

/// Bytes of a reduction of `n` 32-bit values: each read once.
pub fn reduce_bytes(n: u64) -> f64 {
    4.0 * n as f64
}

/// Bytes of an `n × n` f32 transpose: every element read once and written once.
pub fn transpose_bytes(n: u64) -> f64 {
    8.0 * (n as f64).powi(2)
}

/// FLOPs of an `n × n` matrix product: 2n³.
pub fn gemm_flops(n: u64) -> f64 {
    2.0 * (n as f64).powi(3)
}

/// Compulsory bytes of an `n × n` matrix product: A and B read once, C written once, at the
/// variant's element sizes (f32: 12n², f64: 24n², bf16 inputs with f32 output: 8n²).
pub fn gemm_bytes(variant: Gemm, n: u64) -> f64 {
    ((2 * variant.input_bytes() + variant.output_bytes()) as f64) * (n as f64).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elementwise_counts_match_stream() {
        let n = 1000;
        let got: Vec<(f64, f64)> = Elementwise::ALL
            .iter()
            .map(|&op| (elementwise_flops(op, n), elementwise_bytes(op, n)))
            .collect();
        assert_eq!(
            got,
            vec![
                (2000.0, 12_000.0), // saxpy
                (0.0, 16_000.0),    // copy
                (1000.0, 16_000.0), // scale
                (1000.0, 24_000.0), // add
                (2000.0, 24_000.0), // triad
                (0.0, 16_000.0),    // memcpy
            ]
        );
    }

    #[test]
    fn reduction_and_transpose_counts() {
        assert_eq!(reduce_ops(1 << 20), 1048576.0);
        assert_eq!(reduce_bytes(1 << 20), 4194304.0);
        assert_eq!(transpose_bytes(1024), 8388608.0);
    }

    #[test]
    fn gemm_counts_per_variant() {
        assert_eq!(gemm_flops(4096), 2.0 * 4096f64.powi(3));
        let n2 = 4096f64 * 4096.0;
        assert_eq!(gemm_bytes(Gemm::Naive, 4096), 12.0 * n2);
        assert_eq!(gemm_bytes(Gemm::Cublas, 4096), 12.0 * n2);
        assert_eq!(gemm_bytes(Gemm::TensorTf32, 4096), 12.0 * n2);
        assert_eq!(gemm_bytes(Gemm::CublasDgemm, 4096), 24.0 * n2);
        assert_eq!(gemm_bytes(Gemm::TensorBf16, 4096), 8.0 * n2);
    }
}
