// Sum of n unsigned 32-bit values into one 64-bit total, in the steps of the classic lecture on
// parallel reduction. Integer sums are exact in any order, so every variant must produce exactly
// the serial total. Every variant adds into *total, which the host zeroes before each launch.
//
//   reduce_atomic      one atomicAdd per element: all threads contend for one address
//   reduce_shared      one element per thread, a shared-memory tree (sequential addressing,
//                      no divergent warps), one atomicAdd per block
//   reduce_shuffle     one element per thread, warp shuffles (__shfl_down_sync) inside each
//                      warp, shared memory only for the per-warp sums, one atomicAdd per block
//   reduce_gridstride  a fixed grid of a few blocks per SM; each thread sums many elements in
//                      a register (grid-stride, coalesced), then shuffles, one atomicAdd per block
//
// Block size: REDUCE_BLOCK threads (a power of two, at most 1024; the host launches with it).

typedef unsigned long long u64;

#define REDUCE_BLOCK 256
#define WARP 32

extern "C" __global__ void reduce_atomic(u64* total, const unsigned int* __restrict__ x, u64 n) {
    for (u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (u64)gridDim.x * blockDim.x) {
        atomicAdd(total, (u64)x[i]);
    }
}

extern "C" __global__ void reduce_shared(u64* total, const unsigned int* __restrict__ x, u64 n) {
    __shared__ u64 partial[REDUCE_BLOCK];
    const unsigned int t = threadIdx.x;
    const u64 i = (u64)blockIdx.x * REDUCE_BLOCK + t;
    partial[t] = i < n ? (u64)x[i] : 0ull;
    __syncthreads();
    for (unsigned int s = REDUCE_BLOCK / 2; s > 0; s >>= 1) {
        if (t < s) {
            partial[t] += partial[t + s];
        }
        __syncthreads();
    }
    if (t == 0) {
        atomicAdd(total, partial[0]);
    }
}

__device__ __forceinline__ u64 warp_sum(u64 v) {
    for (int offset = WARP / 2; offset > 0; offset >>= 1) {
        v += __shfl_down_sync(0xffffffffu, v, offset);
    }
    return v;
}

// The sum of v over the block, valid in thread 0.
__device__ __forceinline__ u64 block_sum(u64 v) {
    __shared__ u64 warp_sums[REDUCE_BLOCK / WARP];
    const unsigned int lane = threadIdx.x % WARP;
    const unsigned int warp = threadIdx.x / WARP;
    v = warp_sum(v);
    if (lane == 0) {
        warp_sums[warp] = v;
    }
    __syncthreads();
    if (warp == 0) {
        v = lane < REDUCE_BLOCK / WARP ? warp_sums[lane] : 0ull;
        v = warp_sum(v);
    }
    return v;
}

extern "C" __global__ void reduce_shuffle(u64* total, const unsigned int* __restrict__ x, u64 n) {
    const u64 i = (u64)blockIdx.x * REDUCE_BLOCK + threadIdx.x;
    const u64 v = block_sum(i < n ? (u64)x[i] : 0ull);
    if (threadIdx.x == 0) {
        atomicAdd(total, v);
    }
}

extern "C" __global__ void reduce_gridstride(u64* total, const unsigned int* __restrict__ x,
                                             u64 n) {
    u64 v = 0;
    for (u64 i = (u64)blockIdx.x * REDUCE_BLOCK + threadIdx.x; i < n;
         i += (u64)gridDim.x * REDUCE_BLOCK) {
        v += x[i];
    }
    v = block_sum(v);
    if (threadIdx.x == 0) {
        atomicAdd(total, v);
    }
}
