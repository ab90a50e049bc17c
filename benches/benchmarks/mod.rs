pub mod kernels;
pub mod plan;
