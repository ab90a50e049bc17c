//! Runs every MPI kernel of `scalelab_kernels::mpi` on small problems and asserts its result, on any
//! number of ranks (like rsmpi's examples); with `pingpong SIZE ITERATIONS` it prints the
//! ping-pong latency and bandwidth instead.
//!
//! ```text
//! cargo build -p scalelab-kernels --features mpi --example mpi_kernels
//! mpirun --allow-run-as-root --oversubscribe -n 4 target/debug/examples/mpi_kernels
//! mpirun --allow-run-as-root -n 2 target/release/examples/mpi_kernels pingpong 8 10000
//! ```

#[cfg(feature = "mpi")]
fn main() {
    use mpi::traits::*;
    use scalelab_kernels::mpi::{collective, hpl, pi, pingpong, stencil, summa, Comm};

    let (universe, _) =
        mpi::initialize_with_threading(mpi::Threading::Serialized).expect("MPI initialises once");
    let world: Comm = universe.world();
    let (me, p) = (world.rank(), world.size());
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pingpong") {
        let size: usize = args.get(1).map_or(8, |s| s.parse().expect("SIZE in bytes"));
        let iterations: usize = args.get(2).map_or(1000, |s| s.parse().expect("ITERATIONS"));
        let mut pp = pingpong::PingPong::new(&world, size, iterations).expect("2 ranks");
        pp.run(); // warm-up
        pp.check().expect("ping-pong verifies");
        for _ in 0..3 {
            world.barrier();
            pp.run();
            pp.check().expect("ping-pong verifies");
            if me == 0 {
                let lat = pp.latency_us();
                println!(
                    "pingpong size {size} B: {lat:.3} µs one-way, {:.3} GB/s",
                    size as f64 / (lat * 1e-6) / 1e9
                );
            }
        }
        return;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    /// The communicator, moved to the pool's worker thread that makes every MPI call.
    struct OnWorker(Comm);
    // SAFETY: MPI is initialised with `Threading::Serialized` and only the one worker thread running
    // the `install` closure calls MPI while the main thread waits for it.
    unsafe impl Send for OnWorker {}
    let on_worker = OnWorker(world);
    let world = pool
        .install(move || {
            let on_worker = on_worker;
            let world = &on_worker.0;
            if p >= 2 {
                for size in [1usize, 8, 1000, 70_000] {
                    let mut pp = pingpong::PingPong::new(world, size, 5).unwrap();
                    pp.run();
                    pp.check().unwrap();
                    assert!(pp.check().is_err() || me >= 2, "poisoned after a check");
                }
            } else {
                assert!(pingpong::PingPong::new(world, 8, 5).is_err());
            }
            for op in [
                collective::Op::Allreduce,
                collective::Op::Bcast,
                collective::Op::Allgather,
            ] {
                for n in [1usize, 100, 5000] {
                    let mut c = collective::Collective::new(op, world, n, 3);
                    c.run();
                    c.check().unwrap_or_else(|e| panic!("{e}"));
                    let root_of_bcast = op == collective::Op::Bcast && me == 0;
                    assert!(
                        c.check().is_err() || root_of_bcast,
                        "poisoned after a check"
                    );
                }
            }
            for (n, it) in [(3usize, 1usize), (17, 4), (40, 7), (64, 0)] {
                if n < 3 || n < p as usize {
                    continue;
                }
                let mut s = stencil::HaloJacobi::new(world, n, it).unwrap();
                for _ in 0..2 {
                    s.run();
                    s.check().unwrap_or_else(|e| panic!("n={n}: {e}"));
                }
                assert!(it == 0 || s.check().is_err(), "a check needs a new run");
            }
            for n in [1usize, 7, 37, 100] {
                let mut g = summa::Summa::new(world, n).unwrap();
                for _ in 0..2 {
                    g.run();
                    g.check().unwrap_or_else(|e| panic!("n={n}: {e}"));
                }
                assert!(g.check().is_err(), "poisoned C fails");
            }
            // HPL: every block/grid edge (n below, at and across nb; n mod nb = 0), the same x as
            // the serial reference on every rank, and a broken factorisation refused.
            for (n, nb) in [
                (1usize, 1usize),
                (5, 2),
                (16, 4),
                (37, 8),
                (64, 16),
                (150, 32),
                (97, 40),
            ] {
                let want = scalelab_kernels::hpl::solve_serial(n, 11);
                let mut h = hpl::Hpl::new(world, n, nb, 11).unwrap();
                for rep in 0..2 {
                    h.run();
                    for (i, (g, w)) in h.solution().iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                            "hpl n={n} nb={nb} rep={rep} rank {me}: x[{i}] = {g}, serial {w}"
                        );
                    }
                    h.check().unwrap_or_else(|e| panic!("rank {me}: {e}"));
                }
                if n >= 4 {
                    h.run();
                    h.break_factorization();
                    let err = h.check().unwrap_err();
                    assert!(err.contains("is not below 16"), "{err}");
                }
                assert!(h.check().is_err(), "a check needs a new run");
            }
            for samples in [1u64, 70_000, 1_000_003] {
                let got = pi::hits(world, samples, 42);
                if me == 0 {
                    assert_eq!(got, Some(scalelab_kernels::pi::hits_serial(samples, 42)));
                }
            }
            on_worker
        })
        .0;
    world.barrier();
    if me == 0 {
        println!("mpi_kernels: all kernels verified on {p} ranks");
    }
}

#[cfg(not(feature = "mpi"))]
fn main() {
    eprintln!("mpi_kernels needs the `mpi` feature: cargo run -p scalelab-kernels --features mpi --example mpi_kernels");
}
