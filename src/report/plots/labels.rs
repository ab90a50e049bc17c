//! The words on a plot: which parameters a legend entry shows, what goes into the subtitle, what
//! the x axis is called, and how a size is written.
//!
//! A legend entry shows only what varies between the lines of its chart; what every line shares
//! (the workload, fixed parameters, the one size) is said once, in the subtitle. Sizes are written
//! as the manifest wrote them (`64MiB`, `20M`, `n=1024`), not as element counts. Parameters that do
//! not apply to a point are left out: the synthetic-data settings (`size`, `features`, `classes`)
//! of an ML point that reads a built-in dataset or a CSV file. The x axis names the resource the
//! study sweeps ("threads", "MPI ranks", "ranks × threads", "GPUs"), with the fixed ones as
//! factors ("p = MPI ranks × 2 threads") so that the numbers on it stay the worker count p.

use crate::plan::Resources;
use crate::results::PointRecord;

pub(super) use crate::report::scaling::size_value;

/// `n=1024` for workloads whose size unit is a short name, else `size=64MiB`
/// ([`crate::report::scaling::size_label`]), or `None` when the size does not apply.
pub(super) fn size_text(rec: &PointRecord) -> Option<String> {
    crate::report::scaling::size_label(rec)
}

/// The parameters of `rec` that apply to it, size and resources left out: `variant=…` first
/// ([`crate::report::scaling::fixed_params`]).
pub(super) fn params(rec: &PointRecord) -> Vec<String> {
    crate::report::scaling::fixed_params(rec)
}

/// Split the parts of each line into what every line shares (returned first, in the first
/// line's order) and what is left of each line.
pub(super) fn split_shared(lines: &[Vec<String>]) -> (Vec<String>, Vec<Vec<String>>) {
    let Some(first) = lines.first() else {
        return (Vec::new(), Vec::new());
    };
    let shared: Vec<String> = first
        .iter()
        .filter(|p| lines.iter().all(|l| l.contains(p)))
        .cloned()
        .collect();
    let own = lines
        .iter()
        .map(|l| l.iter().filter(|p| !shared.contains(p)).cloned().collect())
        .collect();
    (shared, own)
}

/// The subtitle: the workload, then the shared parts.
pub(super) fn subtitle(workload: &str, shared: &[String]) -> String {
    let mut parts = vec![workload.to_string()];
    parts.extend(shared.iter().cloned());
    parts.join(" · ")
}

/// The x-axis title for points with these resources (see the module documentation).
pub(super) fn resource_axis<'a>(resources: impl IntoIterator<Item = &'a Resources>) -> String {
    let rs: Vec<&Resources> = resources.into_iter().collect();
    let distinct = |f: &dyn Fn(&Resources) -> u32| {
        let mut v: Vec<u32> = rs.iter().map(|r| f(r)).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // A node-count sweep with one single-threaded rank per node: p is the node count.
    let one_per_node = rs
        .iter()
        .all(|r| r.ranks == r.nodes && r.threads == 1 && r.gpus == 0);
    if one_per_node && distinct(&|r| r.nodes).len() > 1 {
        return "nodes (one rank per node: p = nodes)".into();
    }
    let axes: [(&str, &str, Vec<u32>); 3] = [
        ("MPI ranks", "ranks", distinct(&|r| r.ranks)),
        ("threads", "threads", distinct(&|r| r.threads)),
        ("GPUs", "GPUs", distinct(&|r| r.gpus)),
    ];
    let varying: Vec<&(&str, &str, Vec<u32>)> = axes.iter().filter(|a| a.2.len() > 1).collect();
    let fixed: Vec<String> = axes
        .iter()
        .filter(|a| a.2.len() == 1 && a.2[0] > 1)
        .map(|a| {
            let per = if a.1 != "ranks" && axes[0].2 != [1] {
                "/rank"
            } else {
                ""
            };
            format!("{} {}{per}", a.2[0], a.1)
        })
        .collect();
    let mut name = match varying.as_slice() {
        [] => "workers p".to_string(),
        [one] => one.0.to_string(),
        many => many.iter().map(|a| a.1).collect::<Vec<_>>().join(" × "),
    };
    if !fixed.is_empty() && !varying.is_empty() {
        name = format!("p = {name} × {}", fixed.join(" × "));
    }
    let nodes = distinct(&|r| r.nodes);
    if nodes.len() > 1 {
        name.push_str(&format!(
            " (on {}–{} nodes)",
            nodes[0],
            nodes[nodes.len() - 1]
        ));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scaling;
    use crate::report::test_support::record;
    use crate::value::{Size, Value};

    fn res(ranks: u32, threads: u32, gpus: u32) -> Resources {
        Resources {
            ranks,
            threads,
            gpus,
            ..Resources::default()
        }
    }

    #[test]
    fn axis_titles_name_the_swept_resource() {
        let t = |rs: &[Resources]| resource_axis(rs.iter());
        assert_eq!(t(&[res(1, 1, 0), res(1, 2, 0)]), "threads");
        assert_eq!(t(&[res(1, 1, 0), res(4, 1, 0)]), "MPI ranks");
        assert_eq!(
            t(&[res(1, 1, 0), res(2, 1, 0), res(2, 2, 0)]),
            "ranks × threads"
        );
        assert_eq!(t(&[res(1, 1, 1), res(1, 1, 2)]), "GPUs");
        assert_eq!(
            t(&[res(1, 2, 0), res(4, 2, 0)]),
            "p = MPI ranks × 2 threads/rank"
        );
        let mut far = res(4, 1, 0);
        far.nodes = 2;
        assert_eq!(t(&[res(2, 1, 0), far]), "MPI ranks (on 1–2 nodes)");
        // One rank per node, one thread each: the axis is the node count.
        let (mut one, mut two) = (res(1, 1, 0), res(2, 1, 0));
        (one.nodes, two.nodes) = (1, 2);
        assert_eq!(t(&[one, two]), "nodes (one rank per node: p = nodes)");
    }

    #[test]
    fn sizes_as_the_manifest_wrote_them() {
        let mut r = record(0, "stream.triad", Scaling::Strong, 1, 8 << 20, &[1.0]);
        r.point
            .params
            .0
            .insert("size".into(), Value::Size(Size::Bytes(64 << 20)));
        assert_eq!(size_text(&r).as_deref(), Some("size=64MiB"));
        let g = record(0, "gemm", Scaling::Strong, 1, 1024, &[1.0]);
        assert_eq!(size_text(&g).as_deref(), Some("n=1024"));
        let mut pi = record(0, "pi.montecarlo", Scaling::Strong, 1, 20_000_000, &[1.0]);
        pi.size_unit = "samples".into();
        assert_eq!(size_text(&pi).as_deref(), Some("size=20M"));
    }

    #[test]
    fn synthetic_settings_left_out_of_other_datasets() {
        let mut r = record(0, "forest.fit", Scaling::Strong, 1, 2000, &[1.0]);
        r.point.params.0.remove("variant");
        for (k, v) in [("dataset", "iris"), ("estimator", "random_forest")] {
            r.point.params.0.insert(k.into(), Value::Text(v.into()));
        }
        for (k, v) in [("classes", 2), ("features", 20)] {
            r.point.params.0.insert(k.into(), Value::Int(v));
        }
        assert_eq!(params(&r), ["dataset=iris", "estimator=random_forest"]);
        assert_eq!(size_text(&r), None);
        r.point
            .params
            .0
            .insert("dataset".into(), Value::Text("synthetic".into()));
        assert_eq!(
            params(&r),
            [
                "classes=2",
                "dataset=synthetic",
                "estimator=random_forest",
                "features=20"
            ]
        );
        assert_eq!(size_text(&r).as_deref(), Some("n=2000"));

        // A grid search of a single tree on a built-in dataset: no n_iter, trees or target.
        let mut cv = record(0, "cv.nested", Scaling::Strong, 1, 2000, &[1.0]);
        cv.point.params.0.remove("variant");
        for (k, v) in [
            ("dataset", "digits"),
            ("estimator", "decision_tree"),
            ("search", "grid"),
            ("target", "target"),
            ("hyper", ""),
        ] {
            cv.point.params.0.insert(k.into(), Value::Text(v.into()));
        }
        for (k, v) in [("n_iter", 10), ("trees", 100), ("outer", 5)] {
            cv.point.params.0.insert(k.into(), Value::Int(v));
        }
        assert_eq!(
            params(&cv),
            [
                "dataset=digits",
                "estimator=decision_tree",
                "outer=5",
                "search=grid"
            ]
        );
        for (k, v) in [
            ("estimator", "random_forest"),
            ("search", "random"),
            ("dataset", "data/my.csv"),
        ] {
            cv.point.params.0.insert(k.into(), Value::Text(v.into()));
        }
        assert_eq!(
            params(&cv),
            [
                "dataset=data/my.csv",
                "estimator=random_forest",
                "n_iter=10",
                "outer=5",
                "search=random",
                "target=target",
                "trees=100"
            ]
        );
    }

    #[test]
    fn shared_parts_go_to_the_subtitle() {
        let lines = vec![
            vec!["variant=faer".to_string(), "n=512".into()],
            vec!["variant=tuned".to_string(), "n=512".into()],
        ];
        let (shared, own) = split_shared(&lines);
        assert_eq!(shared, ["n=512"]);
        assert_eq!(own, [vec!["variant=faer"], vec!["variant=tuned"]]);
        assert_eq!(subtitle("gemm", &shared), "gemm · n=512");
    }
}
