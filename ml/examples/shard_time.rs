//! A data-parallel histogram gradient boosting fit with the shards as threads (shared memory in
//! place of MPI), against the one-process fit of the same rows, alternated over repetitions:
//! each thread codes, histograms and updates its own rows, sorts its share of the features for
//! the bin edges, and the histograms are summed through a lock and barriers. Every shard's model
//! is checked against the one-process model bit for bit. With no MPI library in the way, the
//! ratio shows what the method gains on `size` cores (quote it with the load average: busy cores
//! make a shard wait at every barrier for its partner to be scheduled).
//!
//! `cargo run -p scalelab-ml --example shard_time -- [samples] [size] [repetitions]`
//! (defaults 100 000, 2, 3): `make_classification` with 20 features (10 informative, 5
//! redundant), seed 0, 3/4 of the rows trained on, 40 iterations, no early stopping, 1 thread
//! per shard.

use std::sync::{Barrier, Mutex};
use std::time::Instant;

use scalelab_ml::data::{make_classification, Synthetic};
use scalelab_ml::dataparallel::{HistogramReducer, LocalReducer, Shard};
use scalelab_ml::estimator::{FitOptions, Hp, HyperParams, Model, Prediction};
use scalelab_ml::estimators::GradientBoosting;

/// What the shards exchange: the accumulator of the current sum or maximum, the gathered parts.
struct Shared {
    barrier: Barrier,
    acc: Mutex<Option<Vec<f64>>>,
    parts: Mutex<Vec<Vec<f64>>>,
}

/// One shard's end of [`Shared`].
struct ThreadShard<'a> {
    shared: &'a Shared,
    rank: usize,
}

impl ThreadShard<'_> {
    /// Combine `values` over the shards (every shard calls it with the same length).
    fn combine(&self, values: &mut [f64], op: fn(f64, f64) -> f64) {
        let sh = self.shared;
        if sh.barrier.wait().is_leader() {
            *sh.acc.lock().unwrap() = None;
        }
        sh.barrier.wait();
        {
            let mut acc = sh.acc.lock().unwrap();
            match acc.as_mut() {
                None => *acc = Some(values.to_vec()),
                Some(a) => a
                    .iter_mut()
                    .zip(values.iter())
                    .for_each(|(a, v)| *a = op(*a, *v)),
            }
        }
        sh.barrier.wait();
        values.copy_from_slice(sh.acc.lock().unwrap().as_ref().unwrap());
    }
}

impl HistogramReducer for ThreadShard<'_> {
    fn sum(&self, stats: &mut [f64], counts: &mut [u32]) {
        let mut all = stats.to_vec();
        all.extend(counts.iter().map(|&c| f64::from(c)));
        self.combine(&mut all, |a, b| a + b);
        stats.copy_from_slice(&all[..stats.len()]);
        for (c, v) in counts.iter_mut().zip(&all[stats.len()..]) {
            *c = *v as u32;
        }
    }
    fn max(&self, values: &mut [f64]) {
        self.combine(values, f64::max);
    }
    fn gather(&self, part: &[f64]) -> Vec<f64> {
        let sh = self.shared;
        sh.barrier.wait();
        sh.parts.lock().unwrap()[self.rank] = part.to_vec();
        sh.barrier.wait();
        let all = sh.parts.lock().unwrap().concat();
        sh.barrier.wait();
        all
    }
}

/// Every prediction and probability of `model` on `rows`, as bits.
fn fingerprint(model: &dyn Model, data: &scalelab_ml::data::Dataset, rows: &[usize]) -> Vec<u64> {
    let mut out: Vec<u64> = match model.predict(&data.x, rows) {
        Prediction::Classes(c) => c.iter().map(|&c| u64::from(c)).collect(),
        Prediction::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
    };
    if let Some(p) = model.predict_proba(&data.x, rows) {
        out.extend(p.as_slice().iter().map(|v| v.to_bits()));
    }
    out
}

fn main() -> Result<(), String> {
    let arg = |i: usize, default: usize| -> Result<usize, String> {
        std::env::args().nth(i).map_or(Ok(default), |s| {
            s.parse().map_err(|e| format!("argument {i}: {e}"))
        })
    };
    let (samples, size, reps) = (arg(1, 100_000)?, arg(2, 2)?.max(1), arg(3, 3)?);
    let data = make_classification(&Synthetic {
        samples,
        features: 20,
        informative: 10,
        redundant: 5,
        seed: 0,
        ..Synthetic::default()
    })?;
    let rows: Vec<usize> = (0..samples * 3 / 4).collect();
    let test: Vec<usize> = (samples * 3 / 4..samples).collect();
    let mut params = HyperParams::new();
    params.insert("max_iter".into(), Hp::Int(40));
    params.insert("early_stopping".into(), Hp::Bool(false));
    let hgb = GradientBoosting::hist(&params)?;
    let serial = FitOptions { parallel: false };
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    for _ in 0..reps {
        let start = Instant::now();
        let one = hgb.fit_sharded(&data, &rows, None, 7, serial, Shard::WHOLE, &LocalReducer)?;
        let t1 = start.elapsed().as_secs_f64();
        let want = fingerprint(one.as_ref(), &data, &test);
        let shared = Shared {
            barrier: Barrier::new(size),
            acc: Mutex::new(None),
            parts: Mutex::new(vec![Vec::new(); size]),
        };
        let start = Instant::now();
        let models: Vec<Result<Box<dyn Model>, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..size)
                .map(|rank| {
                    let (hgb, data, rows, shared) = (&hgb, &data, &rows, &shared);
                    s.spawn(move || {
                        let reducer = ThreadShard { shared, rank };
                        let shard = Shard { rank, size };
                        hgb.fit_sharded(data, rows, None, 7, serial, shard, &reducer)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let tp = start.elapsed().as_secs_f64();
        for (rank, m) in models.into_iter().enumerate() {
            if fingerprint(m?.as_ref(), &data, &test) != want {
                return Err(format!(
                    "shard {rank} of {size}: the model differs from one process"
                ));
            }
        }
        println!(
            "1 process {t1:.3} s, {size} shards {tp:.3} s: ratio {:.2} (same model; load {})",
            t1 / tp,
            load().split(' ').next().unwrap_or("?")
        );
    }
    Ok(())
}
