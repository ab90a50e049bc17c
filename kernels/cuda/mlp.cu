// The elementwise parts of a multilayer perceptron's forward and backward passes in fp64, around
// the cuBLAS DGEMMs (scalelab_kernels::cuda::mlp). Every matrix is row-major, one sample per row,
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

extern "C" __global__ void mlp_bias_rows(double* __restrict__ z, const double* __restrict__ b,
                                         u64 rows, u64 cols) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows * cols) {
        z[i] = b[i % cols];
    }
}

extern "C" __global__ void mlp_relu(double* __restrict__ z, u64 n) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        z[i] = fmax(z[i], 0.0);
    }
}

extern "C" __global__ void mlp_softmax_xent(double* __restrict__ delta, double* __restrict__ loss,
                                            const double* __restrict__ logits,
                                            const unsigned int* __restrict__ labels, u64 rows,
                                            u64 classes, double scale) {
    const u64 r = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= rows) {
        return;
    }
    const double* z = logits + r * classes;
    double* d = delta + r * classes;
    double m = __longlong_as_double(0xfff0000000000000LL);  // -infinity
    for (u64 c = 0; c < classes; c++) {
        m = fmax(m, z[c]);
    }
    double s = 0.0;
    for (u64 c = 0; c < classes; c++) {
        d[c] = exp(z[c] - m);
        s += d[c];
    }
    const unsigned int y = labels[r];
    for (u64 c = 0; c < classes; c++) {
        d[c] /= s;
    }
    d[y] -= 1.0;
    for (u64 c = 0; c < classes; c++) {
        d[c] *= scale;
    }
    loss[r] = m + log(s) - z[y];
}

extern "C" __global__ void mlp_relu_mask(double* __restrict__ delta,
                                         const double* __restrict__ act, u64 n) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n && act[i] <= 0.0) {
        delta[i] = 0.0;
    }
}

extern "C" __global__ void mlp_bias_grad(double* __restrict__ leaves,
                                         const double* __restrict__ delta, u64 grains, u64 grain,
                                         u64 cols, u64 leaf_len, u64 offset) {
    const u64 i = (u64)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= grains * cols) {
        return;
    }
    const u64 g = i / cols, c = i % cols;
    double acc = 0.0;
    for (u64 s = 0; s < grain; s++) {
        acc += delta[(g * grain + s) * cols + c];
    }
    leaves[g * leaf_len + offset + c] = acc;
}
