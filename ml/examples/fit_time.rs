//! Fit time of one estimator on a synthetic classification, at given thread counts, with the
//! accuracy on a held-out quarter.
//!
//! `cargo run --release -p scalelab-ml --example fit_time -- [estimator] [samples] [features] [threads,..] [key=value ..]`
//! e.g. `... --example fit_time -- random_forest 20000 20 1,2 n_estimators=100`.
//! The data: `make_classification` with 10 informative and 5 redundant features, 2 classes, seed 0,
//! `samples` rows to fit and a quarter as many more to score; or, with `FIT_TIME_CSV=file.csv`, that
//! file (target column `y`), fitted on its first `samples` rows and scored on the rest.

use std::time::Instant;

use scalelab_ml::data::{load_csv, make_classification, Synthetic, Task};
use scalelab_ml::estimator::{FitOptions, Hp, HyperParams, Prediction};
use scalelab_ml::estimators::build;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("random_forest", String::as_str);
    let samples: usize = args
        .get(1)
        .map_or(Ok(20_000), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let features: usize = args
        .get(2)
        .map_or(Ok(20), |s| s.parse())
        .map_err(|e| format!("{e}"))?;
    let threads: Vec<usize> = args
        .get(3)
        .map_or("1,2", String::as_str)
        .split(',')
        .map(|t| t.parse().map_err(|e| format!("threads: {e}")))
        .collect::<Result<_, _>>()?;
    let mut params = HyperParams::new();
    for kv in args.iter().skip(4) {
        let (k, v) = kv
            .split_once('=')
            .ok_or(format!("`{kv}` is not key=value"))?;
        let hp = if let Ok(i) = v.parse::<i64>() {
            Hp::Int(i)
        } else if let Ok(f) = v.parse::<f64>() {
            Hp::Float(f)
        } else if let Ok(b) = v.parse::<bool>() {
            Hp::Bool(b)
        } else {
            Hp::Text(v.to_string())
        };
        params.insert(k.to_string(), hp);
    }
    let data = match std::env::var("FIT_TIME_CSV") {
        Ok(path) => load_csv(std::path::Path::new(&path), "y", Task::Classification)?,
        Err(_) => make_classification(&Synthetic {
            samples: samples + samples / 4,
            features,
            informative: 10.min(features),
            redundant: 5.min(features.saturating_sub(10)),
            seed: 0,
            ..Synthetic::default()
        })?,
    };
    let estimator = build(name, &params)?;
    let cut = samples.min(data.rows());
    let train: Vec<usize> = (0..cut).collect();
    let test: Vec<usize> = (cut..data.rows()).collect();
    let labels = data.y.labels().expect("classes");
    for &t in &threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(t)
            .build()
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        let model =
            pool.install(|| estimator.fit(&data, &train, None, 42, FitOptions::default()))?;
        let secs = start.elapsed().as_secs_f64();
        let Prediction::Classes(pred) = model.predict(&data.x, &test) else {
            return Err("expected classes".into());
        };
        let acc = pred
            .iter()
            .zip(&test)
            .filter(|(p, &r)| **p == labels[r])
            .count() as f64
            / test.len() as f64;
        println!(
            "{name} {}x{} train {cut} threads {t}: fit {secs:.3} s, holdout accuracy {acc:.4}",
            data.rows(),
            data.features()
        );
    }
    Ok(())
}
