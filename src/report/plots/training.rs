//! The loss-against-wall-time chart of training studies: for points that record a `loss_curve`
//! (`mpi.train`: the global batch's training loss after each optimizer step, with the wall time
//! of the repetition at that step), one line per point, so that each strategy and rank count is
//! its own line. The weights after every step are bitwise the serial reference's (the check of
//! every repetition), so every line passes through the same losses step for step: a line that
//! reaches a loss sooner shows the speedup in the terms a training run cares about.
//!
//! Federated runs (`strategy = "fedavg"`) record a `round_curve` instead (`round:loss:accuracy`
//! after each round's average, on the held-out rows): the rounds chart draws the accuracy against
//! the round, one line per point (local epochs, label skew, dropped clients, clients), and a
//! `time_curve` (`seconds:loss:accuracy`, the same models at the wall time the server had them):
//! the rounds-time chart draws the accuracy against wall time, where a server that waits for
//! stragglers falls behind one that does not (a deadline, or the asynchronous server).
//!
//! Pipeline studies (points recording `bubble`) get the bubble chart: the measured, simulated and
//! predicted bubble against the micro-batch count, one colour per setting.

use super::axis::{Axis, Scale};
use super::oob::parse_curve;
use super::render::{Chart, Line};
use super::Study;
use crate::resources::Resources;
use crate::results::PointRecord;
use crate::value::Value;

/// How a recorded curve is read back: its (x, y) points, `None` when any does not read.
type ParseCurve = fn(&str) -> Option<Vec<(f64, f64)>>;

/// One line per point of the study whose last repetition records the curve `detail` (read by
/// `parse`), and whether any of those points was disturbed. Each line is labelled by its series
/// and by `who` (its resources or client count); a `who` that every line shares is left out of
/// the labels of lines that have a series label and returned as the third value, for the
/// caption: a legend that repeats "clients=4" on every line says nothing about any one of them.
/// Such a line is its series, and takes the series' colour of the study's other charts.
fn point_lines(
    st: &mut Study<'_, '_>,
    detail: &str,
    parse: ParseCurve,
    who: fn(&PointRecord) -> String,
) -> (Vec<Line>, bool, Option<String>) {
    let mut found = Vec::new();
    let mut disturbed = false;
    for i in 0..st.series.len() {
        for p in &st.series[i].points {
            let Some(points) = p
                .record
                .repetitions
                .last()
                .and_then(|r| r.details.get(detail))
                .and_then(|text| parse(text))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let hollow = p.record.is_disturbed();
            disturbed |= hollow;
            found.push((i, who(p.record), hollow, points));
        }
    }
    let shared = match found.first() {
        Some((_, first, _, _)) if found.iter().all(|(_, w, _, _)| w == first) => {
            Some(first.clone())
        }
        _ => None,
    };
    let mut common = None;
    let lines = found
        .into_iter()
        .map(|(i, who, hollow, points)| {
            let key = if shared.is_some() {
                st.labels[i].clone()
            } else {
                format!("{}\u{1f}{who}", st.labels[i])
            };
            let label = if st.labels[i].is_empty() {
                who
            } else if shared.is_some() {
                common.clone_from(&shared);
                st.labels[i].clone()
            } else {
                format!("{}, {who}", st.labels[i])
            };
            Line {
                label,
                style: st.colors.of(&key),
                markers_only: false,
                hollow: vec![hollow; points.len()],
                points,
                band: Vec::new(),
            }
        })
        .collect();
    (lines, disturbed, common)
}

/// " Every line: {who}." for a caption, or nothing.
fn every_line(common: &Option<String>) -> String {
    common
        .as_ref()
        .map(|who| format!(" Every line: {who}."))
        .unwrap_or_default()
}

/// The x and y values of `lines`, for the axes (non-finite y left out).
pub(super) fn extent(lines: &[Line]) -> (Vec<f64>, Vec<f64>) {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let xs = points().map(|p| p.0).collect();
    let ys = points().map(|p| p.1).filter(|y| y.is_finite()).collect();
    (xs, ys)
}

/// The workers the lines compare: the rank count of an MPI workload (threads and nodes where
/// they are more than one), the thread count of one that trains in one process (`mlp.train`; its
/// ranks where it ran replicated over several).
fn workers_label(workload: &str, r: &Resources) -> String {
    let mpi = crate::workload::describe(workload)
        .is_none_or(|d| d.backend == crate::workload::Backend::Mpi);
    let mut parts = Vec::new();
    if mpi || r.ranks > 1 {
        parts.push(format!("ranks={}", r.ranks));
    }
    if r.threads > 1 || !mpi {
        parts.push(format!("threads={}", r.threads));
    }
    if r.nodes > 1 {
        parts.push(format!("nodes={}", r.nodes));
    }
    parts.join(" ")
}

pub(super) fn loss_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let (lines, disturbed, common) = point_lines(st, "loss_curve", parse_curve, |r| {
        workers_label(&r.point.workload, &r.point.resources)
    });
    if lines.is_empty() {
        return None;
    }
    let (mut xs, ys) = extent(&lines);
    xs.push(0.0);
    // Mixed precision: each format and loss scale has its own reference (the same weights at
    // every rank count of that setting), and emulated formats run slower here than on a GPU.
    let formats: std::collections::BTreeSet<String> = st
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| {
            let params = &p.record.point.params;
            let format = params.get("precision")?;
            Some(format!("{format:?} {:?}", params.get("loss_scale")))
        })
        .collect();
    let same = if formats.len() > 1 {
        "The weights after every step are bitwise the serial reference's at the same precision \
         and loss scale: lines of one setting pass through the same losses, and the settings \
         differ by what their rounding did to the training. Reduced precision is emulated on the CPU, so its \
         wall time measures the emulation, not the format's speed."
    } else {
        "The weights after every step are the serial reference's bit for bit, so every line \
         passes through the same losses: the line that gets there sooner trains faster."
    };
    // A loss that falls by more than two decades is drawn on a log scale, where its tail shows.
    let positive = ys.iter().all(|y| *y > 0.0);
    let (lo, hi) = ys.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(*y), hi.max(*y))
    });
    let scale = if positive && hi > 100.0 * lo {
        Scale::Log10
    } else {
        Scale::Linear
    };
    let t = st.chart(
        format!("{}: training loss against wall time", st.name),
        format!(
            "The training loss of each step's global batch (before its update), against the wall \
             time at which the step ended (the last repetition of each point).{} {same}{}",
            every_line(&common),
            if disturbed {
                " Hollow markers: disturbed points (other work used their cores)."
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        ("wall time (s)".into(), Axis::fit(xs, Scale::Linear, true)),
        ("training loss".into(), Axis::fit(ys, scale, false)),
        lines,
        Vec::new(),
    ))
}

/// A recorded `round_curve`: `round:loss:accuracy` triples joined by `; `, as (round, accuracy);
/// `None` when any triple does not read.
fn parse_rounds(text: &str) -> Option<Vec<(f64, f64)>> {
    text.split("; ")
        .map(|t| {
            let mut it = t.split(':');
            let round: f64 = it.next()?.trim().parse().ok()?;
            let _loss: f64 = it.next()?.trim().parse().ok()?;
            let accuracy: f64 = it.next()?.trim().parse().ok()?;
            it.next().is_none().then_some((round, accuracy))
        })
        .collect()
}

/// Whether a federated point runs an asynchronous server (`aggregation = "async"` or
/// `"buffered"`): a rank of its own, and an order of arrival that changes from run to run.
fn asynchronous(r: &PointRecord) -> bool {
    matches!(
        r.point.params.get("aggregation"),
        Some(Value::Text(a)) if a == "async" || a == "buffered"
    )
}

/// "clients=K": one per rank, less the asynchronous server's.
fn clients_label(r: &PointRecord) -> String {
    let ranks = r.point.resources.ranks;
    let clients = if asynchronous(r) {
        ranks.saturating_sub(1)
    } else {
        ranks
    };
    format!("clients={clients}")
}

/// Whether any point of the study runs the asynchronous server.
fn any_asynchronous(st: &Study<'_, '_>) -> bool {
    st.series
        .iter()
        .any(|s| s.points.iter().any(|p| asynchronous(p.record)))
}

pub(super) fn rounds_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let (lines, _, common) = point_lines(st, "round_curve", parse_rounds, clients_label);
    if lines.is_empty() {
        return None;
    }
    let (xs, ys) = extent(&lines);
    let t = st.chart(
        format!("{}: held-out accuracy after each federated round", st.name),
        format!(
            "FedAvg: after each round the server averages the reporting clients' weights \
             (weighted by their rows); the accuracy of that average on the held-out rows, per \
             round.{} The curve is the serial simulation's bit for bit (the check of every \
             repetition), so it does not depend on the load.{}",
            every_line(&common),
            if any_asynchronous(st) {
                " Asynchronous points (aggregation=async or buffered): a point per round's worth \
                 of applied updates (one per client); each curve is the serial replay of the server's \
                 logged order of arrival bit for bit, and that order depends on timing, so it \
                 differs from run to run."
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        ("round".into(), Axis::fit(xs, Scale::Linear, true)),
        (
            "held-out accuracy".into(),
            Axis::fit(ys, Scale::Linear, false),
        ),
        lines,
        Vec::new(),
    ))
}

/// The accuracy of a federated run against wall time (`time_curve`, read as `parse_rounds`
/// reads `round_curve`: the first field is the seconds).
pub(super) fn rounds_time_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let (lines, disturbed, common) = point_lines(st, "time_curve", parse_rounds, clients_label);
    if lines.is_empty() {
        return None;
    }
    let (xs, ys) = extent(&lines);
    let t = st.chart(
        format!("{}: held-out accuracy against wall time", st.name),
        format!(
            "The models of the rounds chart at the wall time the server had them (last \
             repetition): a server that waits for its slowest client each round reaches an \
             accuracy later than one that does not.{} The times depend on the load{}{}.",
            every_line(&common),
            if any_asynchronous(st) {
                ", and so do the asynchronous points' accuracies (their order of arrival)"
            } else {
                "; the accuracies do not"
            },
            if disturbed {
                " (hollow markers: a disturbed point)"
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        ("wall time (s)".into(), Axis::fit(xs, Scale::Linear, true)),
        (
            "held-out accuracy".into(),
            Axis::fit(ys, Scale::Linear, false),
        ),
        lines,
        Vec::new(),
    ))
}

/// One setting of a pipeline study's points drawn against the micro-batch count: (micro,
/// measured bubble, predicted, simulated, disturbed) per point.
type BubblePoints = Vec<(f64, f64, Option<f64>, Option<f64>, bool)>;

/// The pipeline's bubble against the micro-batch count `m` (GPipe's figure): the study's points
/// that record `bubble` grouped by everything but `micro` (stages, schedule, virtual chunks, ...),
/// each group's measured bubble (median over the repetitions of `wait_s` / step time, the
/// largest over the stages) as a line, the schedule on a clock of the chunks' FLOPs
/// (`bubble_simulated`) as markers of the same colour, and the prediction `(S − 1)/(v·m + S − 1)`
/// (`bubble_predicted`) as a dashed line of that colour. `None` unless some group has two or more
/// micro-batch counts. Points on one stage are left out: nothing to wait for.
pub(super) fn bubble_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    use std::collections::{BTreeMap, BTreeSet};

    use crate::report::csv::metric_median;

    let points: Vec<&PointRecord> = st
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.record))
        // One stage has nothing to wait for: its bubble is 0 by construction.
        .filter(|r| r.point.resources.ranks > 1 && metric_median(r, "bubble").is_some())
        .collect();
    // What tells the groups apart: the stage count and every parameter but `micro` that differs
    // between the points (what all share is the subtitle's).
    let setting = |r: &PointRecord, key: &str| -> String {
        if key == "stages" {
            r.point.resources.ranks.to_string()
        } else {
            r.point
                .params
                .get(key)
                .map(Value::to_string)
                .unwrap_or_default()
        }
    };
    let keys: Vec<String> = std::iter::once("stages".to_string())
        .chain(points.iter().flat_map(|r| r.point.params.0.keys().cloned()))
        .filter(|k| k != "micro" && k != "size")
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| {
            let values: BTreeSet<String> = points.iter().map(|r| setting(r, k)).collect();
            values.len() > 1
        })
        .collect();
    let mut groups: BTreeMap<String, BubblePoints> = BTreeMap::new();
    for r in &points {
        let Some(Value::Int(m)) = r.point.params.get("micro") else {
            continue;
        };
        let label: Vec<String> = keys
            .iter()
            .map(|k| format!("{k}={}", setting(r, k)))
            .collect();
        groups.entry(label.join(", ")).or_default().push((
            *m as f64,
            metric_median(r, "bubble")?,
            metric_median(r, "bubble_predicted"),
            metric_median(r, "bubble_simulated"),
            r.is_disturbed(),
        ));
    }
    let distinct = |g: &BubblePoints| g.iter().map(|p| p.0 as u64).collect::<BTreeSet<_>>().len();
    if !groups.values().any(|g| distinct(g) > 1) {
        return None;
    }
    let colours = super::PALETTE.len();
    let (mut lines, mut refs) = (Vec::new(), Vec::new());
    let (mut xs, mut ys) = (Vec::new(), vec![0.0]);
    let mut disturbed = false;
    for (i, (label, mut pts)) in groups.into_iter().enumerate() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let name = if label.is_empty() {
            String::new()
        } else {
            format!(" ({label})")
        };
        xs.extend(pts.iter().map(|p| p.0));
        ys.extend(pts.iter().map(|p| p.1));
        disturbed |= pts.iter().any(|p| p.4);
        lines.push(Line {
            label: format!("measured{name}"),
            style: i % colours,
            markers_only: false,
            points: pts.iter().map(|p| (p.0, p.1)).collect(),
            band: Vec::new(),
            hollow: pts.iter().map(|p| p.4).collect(),
        });
        let simulated: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, p.3?))).collect();
        if !simulated.is_empty() {
            ys.extend(simulated.iter().map(|p| p.1));
            lines.push(Line {
                label: format!("simulated{name}"),
                style: i % colours + colours,
                markers_only: true,
                points: simulated,
                band: Vec::new(),
                hollow: Vec::new(),
            });
        }
        let predicted: Vec<(f64, f64)> = pts.iter().filter_map(|p| Some((p.0, p.2?))).collect();
        if !predicted.is_empty() {
            ys.extend(predicted.iter().map(|p| p.1));
            refs.push(super::render::Reference {
                label: format!("predicted{name}"),
                points: predicted,
                color: super::PALETTE[i % colours],
            });
        }
    }
    let t = st.chart(
        format!("{}: pipeline bubble against micro-batches", st.name),
        format!(
            "The share of a step a stage sits idle waiting for a neighbour: measured (median of \
             wait_s / step time, the largest over the stages; lines), the schedule run on a clock \
             of each chunk's FLOPs with free messages (squares: what the split and schedule cost, \
             whatever the machine), and GPipe's prediction (S − 1)/(v·m + S − 1) for S stages, v \
             chunks per stage and m micro-batches (dashed). More micro-batches shrink the \
             bubble; a measured bubble above the prediction is the machine's: messages, and \
             waits for a core. Points on one stage (no bubble) are left out.{}",
            if disturbed {
                " Hollow markers: disturbed points (other work used their cores)."
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        (
            "micro-batches per step (m)".into(),
            Axis::measured(xs, Scale::Log2),
        ),
        (
            "bubble (share of the step)".into(),
            Axis::fit(ys, Scale::Linear, true),
        ),
        lines,
        refs,
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_rounds;
    use crate::machine::Machine;
    use crate::report::plots::study_plots;
    use crate::report::scaling::{self, Series};
    use crate::report::test_support::{mpi_record, with_param};

    /// The loss chart's legend and caption text of `mpi.train` points at these (precision,
    /// ranks), with spaces normalised.
    fn loss_chart_text(points: &[(&str, u32)]) -> String {
        let recs: Vec<_> = points
            .iter()
            .enumerate()
            .map(|(i, &(precision, ranks))| {
                let mut r = mpi_record(0, "mpi.train", ranks, 1, 256, 1, &[0.1]);
                r = with_param(with_param(r, "strategy", "ddp"), "precision", precision);
                r.point.id = format!("p{i}");
                r.repetitions[0]
                    .details
                    .insert("loss_curve".into(), "0.01:0.7; 0.02:0.5; 0.03:0.4".into());
                r
            })
            .collect();
        let series = scaling::series(&recs);
        let refs: Vec<&Series<'_>> = series.iter().collect();
        let dir = tempfile::tempdir().unwrap();
        let plots = study_plots(dir.path(), 0, "train", &refs, &Machine::default()).unwrap();
        let loss = plots.iter().find(|p| p.stem.ends_with("-loss")).unwrap();
        let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", loss.stem))).unwrap();
        let text: String = svg
            .split('<')
            .filter_map(|tag| tag.split_once('>').map(|(_, t)| t))
            .collect::<Vec<_>>()
            .join(" ");
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn the_asynchronous_server_is_not_counted_as_a_client() {
        let r = mpi_record(0, "mpi.train", 5, 1, 256, 1, &[0.1]);
        let label =
            |aggregation| super::clients_label(&with_param(r.clone(), "aggregation", aggregation));
        assert_eq!(label("async"), "clients=4");
        assert_eq!(label("buffered"), "clients=4");
        assert_eq!(label("sync"), "clients=5");
    }

    /// Two series at one rank count: each loss line is its series and keeps the colour the
    /// series has in the study's other charts.
    #[test]
    fn a_loss_line_that_is_its_series_keeps_the_series_colour() {
        let recs: Vec<_> = ["ddp", "accumulate"]
            .iter()
            .enumerate()
            .map(|(i, strategy)| {
                let mut r = mpi_record(0, "mpi.train", 2, 1, 256, 1, &[0.1]);
                r = with_param(r, "strategy", strategy);
                r.point.id = format!("p{i}");
                r.repetitions[0]
                    .details
                    .insert("loss_curve".into(), "0.01:0.7; 0.02:0.5".into());
                r
            })
            .collect();
        let series = scaling::series(&recs);
        let refs: Vec<&Series<'_>> = series.iter().collect();
        let dir = tempfile::tempdir().unwrap();
        let plots = study_plots(dir.path(), 0, "train", &refs, &Machine::default()).unwrap();
        let svg = |kind: &str| {
            let p = plots.iter().find(|p| p.stem.ends_with(kind)).unwrap();
            std::fs::read_to_string(dir.path().join(format!("{}.svg", p.stem))).unwrap()
        };
        let (loss, throughput) = (svg("-loss"), svg("-throughput"));
        for colour in ["#0072B2", "#D55E00"] {
            assert!(
                loss.contains(colour) && throughput.contains(colour),
                "{colour}"
            );
        }
        assert!(!loss.contains("#009E73"), "no third colour for two series");
    }

    #[test]
    fn lines_of_a_one_process_workload_are_told_apart_by_threads_not_ranks() {
        use super::{workers_label, Resources};
        let res = |ranks, threads| Resources {
            ranks,
            threads,
            ..Resources::default()
        };
        assert_eq!(workers_label("mlp.train", &res(1, 1)), "threads=1");
        assert_eq!(workers_label("mlp.train", &res(1, 2)), "threads=2");
        assert_eq!(workers_label("mpi.train", &res(1, 1)), "ranks=1");
        assert_eq!(workers_label("mpi.train", &res(2, 2)), "ranks=2 threads=2");
    }

    #[test]
    fn a_rank_count_every_line_shares_is_said_once_in_the_caption() {
        let shared = loss_chart_text(&[("fp64", 2), ("bf16", 2)]);
        assert!(shared.contains("precision=bf16"), "{shared}");
        assert!(!shared.contains("precision=bf16, ranks=2"), "{shared}");
        assert_eq!(shared.matches("ranks=2").count(), 1, "{shared}");
        assert!(shared.contains("Every line: ranks=2."), "{shared}");
        // Rank counts that differ stay on their lines.
        let mixed = loss_chart_text(&[("fp64", 1), ("fp64", 2)]);
        assert!(mixed.contains("ranks=1"), "{mixed}");
        assert!(mixed.contains("ranks=2"), "{mixed}");
        assert!(!mixed.contains("Every line"), "{mixed}");
    }

    #[test]
    fn the_bubble_is_drawn_against_micro_batches_beside_its_prediction_per_schedule() {
        use crate::report::test_support::with_metric;
        use crate::value::Value;
        // Two schedules at 2 stages, m = 1, 2, 4: predicted (S−1)/(m+S−1) = 1/(m+1).
        let mut recs = Vec::new();
        for schedule in ["gpipe", "1f1b"] {
            for m in [1u64, 2, 4] {
                let predicted = 1.0 / (m as f64 + 1.0);
                let mut r = mpi_record(0, "mpi.train", 2, 1, 256, 1, &[0.1, 0.1]);
                r = with_param(with_param(r, "strategy", "pipeline"), "schedule", schedule);
                r.point.params.0.insert("micro".into(), Value::Int(m));
                r.point.id = format!("{schedule}-{m}");
                r = with_metric(r, "bubble", &[predicted + 0.1; 2]);
                r = with_metric(r, "bubble_predicted", &[predicted; 2]);
                recs.push(with_metric(r, "bubble_simulated", &[predicted; 2]));
            }
        }
        let series = scaling::series(&recs);
        let refs: Vec<&Series<'_>> = series.iter().collect();
        let dir = tempfile::tempdir().unwrap();
        let plots = study_plots(dir.path(), 0, "pipe", &refs, &Machine::default()).unwrap();
        let bubble = plots
            .iter()
            .find(|p| p.stem.ends_with("-bubble"))
            .unwrap_or_else(|| {
                panic!(
                    "no bubble chart: {:?}",
                    plots.iter().map(|p| &p.stem).collect::<Vec<_>>()
                )
            });
        let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", bubble.stem))).unwrap();
        for want in [
            ">\nmeasured (schedule=gpipe)\n<",
            ">\npredicted (schedule=1f1b)\n<",
            ">\nsimulated (schedule=gpipe)\n<",
            ">\nmicro-batches per step (m)\n<",
        ] {
            assert!(svg.contains(want), "{want}: {svg}");
        }
        // One micro-batch count: no line against m to draw.
        let one: Vec<_> = recs
            .into_iter()
            .filter(|r| r.point.id.ends_with("-2"))
            .collect();
        let series = scaling::series(&one);
        let refs: Vec<&Series<'_>> = series.iter().collect();
        let plots = study_plots(dir.path(), 1, "pipe", &refs, &Machine::default()).unwrap();
        assert!(!plots.iter().any(|p| p.stem.ends_with("-bubble")));
    }

    #[test]
    fn a_recorded_round_curve_reads_back() {
        assert_eq!(
            parse_rounds("1:2.0:0.25; 2:1.5:0.5"),
            Some(vec![(1.0, 0.25), (2.0, 0.5)])
        );
        assert_eq!(parse_rounds("1:2.0"), None);
        assert_eq!(parse_rounds("1:2.0:0.5:9"), None);
    }
}
