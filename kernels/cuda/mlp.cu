// The elementwise parts of a multilayer perceptron's forward and backward passes around the cuBLAS
// GEMMs (scalelab_kernels::cuda::mlp), in fp64 (the names below) and fp32 (the same names with
// the suffix _f32; one template each). Every matrix is row-major, one sample per row,
// as the CPU trainer (scalelab_ml::mlp) stores it; each thread does one element, or one row where
// the row is a sequential sum, so every value is computed in one fixed order whatever the grid.
//
//   mlp_bias_rows     z[r][c] = b[c]: the layer's output starts from its bias, the GEMM adds A.W
//   mlp_relu          z = max(z, 0) on a hidden layer's output
//   mlp_softmax_xent  per sample: delta = scale * (softmax(z) - onehot(label)), the gradient of
//                     the sample's cross-entropy with respect to its logits (times the loss scale),
//                     and its loss log(sum exp z) - z[label]
//   mlp_relu_mask     delta = 0 where the forward activation was not positive (ReLU')
//   mlp_bias_grad     per grain g and output c: the sum over the grain's rows of delta, in row
//                     order from 0 (the CPU trainer's order), into grain g's gradient vector
//
// Block size: MLP_BLOCK threads (the host launches with it).

typedef unsigned long long u64;

#define MLP_BLOCK 256

__device__ inline double mlp_exp(double x) { return exp(x); }
__device__ inline float mlp_exp(float x) { return expf(x); }
__device__ inline double mlp_log(double x) { return log(x); }
__device__ inline float mlp_log(float x) { return logf(x); }
__device__ inline double mlp_max(double a, double b) { return fmax(a, b); }
__device__ inline float mlp_max(float a, float b) { return fmaxf(a, b); }
__device__ inline double mlp_neg_inf(double) { return __longlong_as_double(0xfff0000000000000LL); }
__device__ inline float mlp_neg_inf(float) { return __int_as_float(0xff800000); }

template <typename T>
__device__ void bias_rows(T* __restrict__ z, const T* __restrict__ b, u64 rows, u64 cols) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) {
        z[i] = b[i % cols];
    }
}

template <typename T>
__device__ void relu(T* __restrict__ z, u64 n) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        z[i] = mlp_max(z[i], (T)0);
    }
}

template <typename T>
__device__ void softmax_xent(T* __restrict__ delta, T* __restrict__ loss,
                             const T* __restrict__ logits, const unsigned int* __restrict__ labels,
                             u64 rows, u64 classes, T scale) {
    const u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) {
        return;
    }
    const T* z = logits + r * classes;
    T* d = delta + r * classes;
    T m = mlp_neg_inf((T)0);
    for (u64 c = 0; c < classes; c++) {
        m = mlp_max(m, z[c]);
    }
    T s = 0;
    for (u64 c = 0; c < classes; c++) {
        d[c] = mlp_exp(z[c] - m);
        s += d[c];
    }
    const unsigned int y = labels[r];
    for (u64 c = 0; c < classes; c++) {
        d[c] /= s;
    }
    d[y] -= (T)1;
    for (u64 c = 0; c < classes; c++) {
        d[c] *= scale;
    }
    loss[r] = m + mlp_log(s) - z[y];
}

template <typename T>
__device__ void relu_mask(T* __restrict__ delta, const T* __restrict__ act, u64 n) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && act[i] <= (T)0) {
        delta[i] = 0;
    }
}

template <typename T>
__device__ void bias_grad(T* __restrict__ leaves, const T* __restrict__ delta, u64 grains,
                          u64 grain, u64 cols, u64 leaf_len, u64 offset) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= grains * cols) {
        return;
    }
    const u64 g = i / cols, c = i % cols;
    T acc = 0;
    for (u64 s = 0; s < grain; s++) {
        acc += delta[(g * grain + s) * cols + c];
    }
    leaves[g * leaf_len + offset + c] = acc;
}

// fp64
extern "C" __global__ void mlp_bias_rows(double* z, const double* b, u64 rows, u64 cols) {
    bias_rows(z, b, rows, cols);
}
extern "C" __global__ void mlp_relu(double* z, u64 n) { relu(z, n); }
extern "C" __global__ void mlp_softmax_xent(double* delta, double* loss, const double* logits,
                                            const unsigned int* labels, u64 rows, u64 classes,
                                            double scale) {
    softmax_xent(delta, loss, logits, labels, rows, classes, scale);
}
extern "C" __global__ void mlp_relu_mask(double* delta, const double* act, u64 n) {
    relu_mask(delta, act, n);
}
extern "C" __global__ void mlp_bias_grad(double* leaves, const double* delta, u64 grains,
                                         u64 grain, u64 cols, u64 leaf_len, u64 offset) {
    bias_grad(leaves, delta, grains, grain, cols, leaf_len, offset);
}

// fp32
extern "C" __global__ void mlp_bias_rows_f32(float* z, const float* b, u64 rows, u64 cols) {
    bias_rows(z, b, rows, cols);
}
extern "C" __global__ void mlp_relu_f32(float* z, u64 n) { relu(z, n); }
extern "C" __global__ void mlp_softmax_xent_f32(float* delta, float* loss, const float* logits,
                                                const unsigned int* labels, u64 rows,
                                                u64 classes, float scale) {
    softmax_xent(delta, loss, logits, labels, rows, classes, scale);
}
extern "C" __global__ void mlp_relu_mask_f32(float* delta, const float* act, u64 n) {
    relu_mask(delta, act, n);
}
extern "C" __global__ void mlp_bias_grad_f32(float* leaves, const float* delta, u64 grains,
                                             u64 grain, u64 cols, u64 leaf_len, u64 offset) {
    bias_grad(leaves, delta, grains, grain, cols, leaf_len, offset);
}
