// Element-wise bandwidth kernels: SAXPY (f32) and the four STREAM kernels (f64).
//
// One element per thread with a grid-stride loop, so any grid size covers any n. Each kernel
// reads its inputs once and writes its output once (no write-allocate counted), as STREAM counts:
//   saxpy  z = a*x + y   12 B/element (f32), 2 flops
//   copy   c = a         16 B/element
//   scale  b = q*c       16 B/element, 1 flop
//   add    c = a + b     24 B/element, 1 flop
//   triad  a = b + q*c   24 B/element, 2 flops
// SAXPY writes a third array rather than y in place, so every repetition computes the same
// values and can be checked exactly.

typedef unsigned long long u64;

#define GRID_STRIDE_LOOP(i, n)                                                   \
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < (n);            \
         i += (u64)gridDim.x * blockDim.x)

extern "C" __global__ void saxpy(float* __restrict__ z, const float* __restrict__ x,
                                 const float* __restrict__ y, float a, u64 n) {
    GRID_STRIDE_LOOP(i, n) { z[i] = a * x[i] + y[i]; }
}

extern "C" __global__ void stream_copy(double* __restrict__ c, const double* __restrict__ a,
                                       u64 n) {
    GRID_STRIDE_LOOP(i, n) { c[i] = a[i]; }
}

extern "C" __global__ void stream_scale(double* __restrict__ b, const double* __restrict__ c,
                                        double q, u64 n) {
    GRID_STRIDE_LOOP(i, n) { b[i] = q * c[i]; }
}

extern "C" __global__ void stream_add(double* __restrict__ c, const double* __restrict__ a,
                                      const double* __restrict__ b, u64 n) {
    GRID_STRIDE_LOOP(i, n) { c[i] = a[i] + b[i]; }
}

extern "C" __global__ void stream_triad(double* __restrict__ a, const double* __restrict__ b,
                                        const double* __restrict__ c, double q, u64 n) {
    GRID_STRIDE_LOOP(i, n) { a[i] = b[i] + q * c[i]; }
}
