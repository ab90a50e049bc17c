pub mod kernels;
pub mod ml;
pub mod plan;
pub mod point;
