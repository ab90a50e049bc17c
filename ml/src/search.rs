//! Model selection: grid and random search, nested cross-validation, and the task lists that run
//! them in parallel over threads and MPI ranks.
