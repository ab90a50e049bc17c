// Out-of-place transpose of a rows x cols f32 matrix (row-major): out[c][r] = in[r][c].
//
// Both kernels use TILE x TILE tiles and blocks of TILE x ROWS threads, each thread moving
// TILE / ROWS elements. Bytes: 2 * 4 * rows * cols (one read, one write per element).
//   transpose_naive  reads rows of `in` coalesced but writes `out` with a stride of `rows`
//                    floats between neighbouring threads: one memory transaction per element
//   transpose_tiled  stages the tile in shared memory so that both the read and the write are
//                    coalesced; the tile has TILE + 1 columns so that reading a column of it
//                    hits 32 different banks (no bank conflicts)

#define TILE 32
#define ROWS 8

extern "C" __global__ void transpose_naive(float* __restrict__ out, const float* __restrict__ in,
                                           int rows, int cols) {
    const int c = blockIdx.x * TILE + threadIdx.x;
    const int r0 = blockIdx.y * TILE + threadIdx.y;
    if (c >= cols) {
        return;
    }
    for (int j = 0; j < TILE; j += ROWS) {
        const int r = r0 + j;
        if (r < rows) {
            out[(size_t)c * rows + r] = in[(size_t)r * cols + c];
        }
    }
}

extern "C" __global__ void transpose_tiled(float* __restrict__ out, const float* __restrict__ in,
                                           int rows, int cols) {
    __shared__ float tile[TILE][TILE + 1];
    int c = blockIdx.x * TILE + threadIdx.x;
    int r = blockIdx.y * TILE + threadIdx.y;
    for (int j = 0; j < TILE; j += ROWS) {
        if (c < cols && r + j < rows) {
            tile[threadIdx.y + j][threadIdx.x] = in[(size_t)(r + j) * cols + c];
        }
    }
    __syncthreads();
    // The block now writes the transposed tile: its x runs along the rows of `in`.
    c = blockIdx.y * TILE + threadIdx.x;
    r = blockIdx.x * TILE + threadIdx.y;
    for (int j = 0; j < TILE; j += ROWS) {
        if (c < rows && r + j < cols) {
            out[(size_t)(r + j) * rows + c] = tile[threadIdx.x][threadIdx.y + j];
        }
    }
}
