// Single-precision matrix product C = A * B, row-major: A is m x k, B is k x n, C is m x n.
// 2 m n k flops. Three steps of the usual optimisation lecture:
//
//   sgemm_naive     one thread per element of C, k-loop over global memory. Threads of a warp
//                   share a row of C, so B and C are read/written coalesced and A is broadcast.
//                   Block NAIVE_X x NAIVE_Y.
//   sgemm_tiled     TILE x TILE blocks stage TILE x TILE tiles of A and B in shared memory: each
//                   element loaded from global memory is used TILE times. Block TILE x TILE.
//   sgemm_regblock  2-D register blocking: a block computes a BM x BN tile of C with
//                   REG_THREADS threads, each a TM x TN sub-tile held in registers; per step of
//                   BK along k the block stages A (transposed, so the inner loop reads it as
//                   vectors) and B in shared memory with float4 loads. Each thread does TM*TN
//                   FMAs per TM + TN shared-memory reads. A thread's rows and columns are two
//                   groups of TM/2 (TN/2), half a tile apart, so that the 16 threads sharing a
//                   row of the warp read 16 consecutive float4 of B's tile (no bank conflicts).
//                   Needs m, n multiples of BM = BN and k a multiple of BK (the host checks).

#define NAIVE_X 32
#define NAIVE_Y 8

extern "C" __global__ void sgemm_naive(int m, int n, int k, const float* __restrict__ A,
                                       const float* __restrict__ B, float* __restrict__ C) {
    const int col = blockIdx.x * NAIVE_X + threadIdx.x;
    const int row = blockIdx.y * NAIVE_Y + threadIdx.y;
    if (row >= m || col >= n) {
        return;
    }
    float sum = 0.0f;
    for (int p = 0; p < k; ++p) {
        sum += A[(size_t)row * k + p] * B[(size_t)p * n + col];
    }
    C[(size_t)row * n + col] = sum;
}

#define TILE 32

extern "C" __global__ void sgemm_tiled(int m, int n, int k, const float* __restrict__ A,
                                       const float* __restrict__ B, float* __restrict__ C) {
    __shared__ float As[TILE][TILE];
    __shared__ float Bs[TILE][TILE];
    const int tx = threadIdx.x;
    const int ty = threadIdx.y;
    const int row = blockIdx.y * TILE + ty;
    const int col = blockIdx.x * TILE + tx;
    float sum = 0.0f;
    for (int p0 = 0; p0 < k; p0 += TILE) {
        As[ty][tx] = (row < m && p0 + tx < k) ? A[(size_t)row * k + p0 + tx] : 0.0f;
        Bs[ty][tx] = (p0 + ty < k && col < n) ? B[(size_t)(p0 + ty) * n + col] : 0.0f;
        __syncthreads();
#pragma unroll
        for (int p = 0; p < TILE; ++p) {
            sum += As[ty][p] * Bs[p][tx];
        }
        __syncthreads();
    }
    if (row < m && col < n) {
        C[(size_t)row * n + col] = sum;
    }
}

#define BM 128
#define BN 128
#define BK 16
#define TM 8
#define TN 8
#define REG_THREADS ((BM / TM) * (BN / TN))

extern "C" __global__ void __launch_bounds__(REG_THREADS)
    sgemm_regblock(int m, int n, int k, const float* __restrict__ A,
                   const float* __restrict__ B, float* __restrict__ C) {
    // float4 accesses need 16-byte alignment.
    __shared__ __align__(16) float As[BK][BM];  // As[p][r] = A[row0 + r][p0 + p]
    __shared__ __align__(16) float Bs[BK][BN];  // Bs[p][c] = B[p0 + p][col0 + c]
    const int tid = threadIdx.x;
    const int tcol = tid % (BN / TN);  // columns tcol*TN/2 + [0, TN/2) and BN/2 + the same
    const int trow = tid / (BN / TN);  // rows trow*TM/2 + [0, TM/2) and BM/2 + the same
    const int row0 = blockIdx.y * BM;
    const int col0 = blockIdx.x * BN;
    (void)m;

    float acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; ++i) {
#pragma unroll
        for (int j = 0; j < TN; ++j) {
            acc[i][j] = 0.0f;
        }
    }
    float a_frag[TM];
    float b_frag[TN];

    for (int p0 = 0; p0 < k; p0 += BK) {
        // A tile: BM x BK floats as float4 along k; BM * BK / 4 vectors over REG_THREADS threads.
#pragma unroll
        for (int it = 0; it < BM * BK / 4 / REG_THREADS; ++it) {
            const int v = tid + it * REG_THREADS;
            const int r = v / (BK / 4);
            const int p = (v % (BK / 4)) * 4;
            const float4 a = *reinterpret_cast<const float4*>(&A[(size_t)(row0 + r) * k + p0 + p]);
            As[p + 0][r] = a.x;
            As[p + 1][r] = a.y;
            As[p + 2][r] = a.z;
            As[p + 3][r] = a.w;
        }
        // B tile: BK x BN floats as float4 along n.
#pragma unroll
        for (int it = 0; it < BK * BN / 4 / REG_THREADS; ++it) {
            const int v = tid + it * REG_THREADS;
            const int p = v / (BN / 4);
            const int c = (v % (BN / 4)) * 4;
            *reinterpret_cast<float4*>(&Bs[p][c]) =
                *reinterpret_cast<const float4*>(&B[(size_t)(p0 + p) * n + col0 + c]);
        }
        __syncthreads();
#pragma unroll
        for (int p = 0; p < BK; ++p) {
#pragma unroll
            for (int i = 0; i < TM; ++i) {
                a_frag[i] = As[p][(i / (TM / 2)) * (BM / 2) + trow * (TM / 2) + i % (TM / 2)];
            }
#pragma unroll
            for (int j = 0; j < TN; ++j) {
                b_frag[j] = Bs[p][(j / (TN / 2)) * (BN / 2) + tcol * (TN / 2) + j % (TN / 2)];
            }
#pragma unroll
            for (int i = 0; i < TM; ++i) {
#pragma unroll
                for (int j = 0; j < TN; ++j) {
                    acc[i][j] += a_frag[i] * b_frag[j];
                }
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int r = row0 + (i / (TM / 2)) * (BM / 2) + trow * (TM / 2) + i % (TM / 2);
#pragma unroll
        for (int j = 0; j < TN; j += 4) {
            const int c = col0 + (j / (TN / 2)) * (BN / 2) + tcol * (TN / 2) + j % (TN / 2);
            *reinterpret_cast<float4*>(&C[(size_t)r * n + c]) =
                make_float4(acc[i][j], acc[i][j + 1], acc[i][j + 2], acc[i][j + 3]);
        }
    }
}
