//! Adapters from the rayon kernels of `scalelab-kernels` to [`Workload`](super::Workload). (Being written.)
