//! The variants of `ddp` that PyTorch's DistributedDataParallel offers, with the order of every
//! addition still fixed: which allreduce joins the ranks' gradients ([`Allreduce`]: the fixed
//! tree, a ring, or the MPI library's own), and whether that reduction waits for the end of
//! backward or runs bucket by bucket while backward is still going ([`Trainer::step_overlapped`]).
//!
//! **Overlap.** DDP registers a hook per parameter: when backward has produced a gradient, it is
//! copied into its bucket, and a full bucket starts its allreduce at once, without waiting, while
//! backward goes on with the earlier layers; the optimizer step waits for all buckets. Here the
//! hook is the end of a layer's backward (the last layer first): its weights' and biases'
//! gradients are final then (`Trainer::local_gradient` merges the micro-batches layer by layer).
//! [`buckets`] cuts the flat gradient from its end into buckets of at most `cap` elements (a layer
//! larger than a bucket fills several), in the order backward finishes them; each starts through
//! [`BucketReducer::start`] as soon as all its elements are final. Every element is still reduced
//! once, by the same additions in the same order, so the weights are the blocking variant's bits.
//!
//! **Order of the cross-rank sum.** [`Allreduce::Tree`] adds the ranks' partial sums along the
//! fixed halving tree (recursive doubling), exactly the serial reference's additions.
//! [`Allreduce::Ring`] (reduce-scatter, then allgather) adds chunk `c` of each bucket's `R` chunks
//! in the chain `g_c + g_{c+1} + … + g_{c−1}` (ranks mod `R`, starting at the chunk's own rank), a
//! different order per chunk: [`Allreduce::combine_serial`] does exactly those additions in one
//! process, so the serial reference of a ring run is bitwise reproducible too.
//! [`Allreduce::Mpi`] leaves the order to the MPI library: no serial reference can promise its
//! bits, and the check is a tolerance ([`MPI_TOLERANCE`]).

use std::ops::Range;
use std::time::Instant;

use super::{Sgd, Trainer};
use crate::data::Matrix;
use crate::mlp::Schedule;

/// How the ranks' gradient sums are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allreduce {
    /// Recursive doubling: at step `s` rank `r` and `r XOR 2ˢ` exchange and add: the fixed tree.
    Tree,
    /// Ring reduce-scatter then ring allgather (NCCL's and Horovod's algorithm): each rank sends
    /// `2(R−1)/R` of the gradient instead of `log₂R` whole copies.
    Ring,
    /// `MPI_Allreduce` / `MPI_Iallreduce`: the library chooses the algorithm and the order.
    Mpi,
}

/// Relative tolerance of the `mpi` variant's check: every weight and momentum value within
/// `MPI_TOLERANCE · (1 + |reference|)` of the tree reference's. Reordering the cross-rank sum
/// changes a gradient element by a few units in the last place (about 1e-16 relative); SGD then
/// carries such differences along, growing them by far less than 1e6 over the short runs here.
pub const MPI_TOLERANCE: f64 = 1e-10;

impl Allreduce {
    /// The names of the `allreduce` axis, in the order of the enum.
    pub const NAMES: &'static [&'static str] = &["tree", "ring", "mpi"];

    /// The variant named `name` (one of [`Allreduce::NAMES`]).
    pub fn parse(name: &str) -> Result<Allreduce, String> {
        match name {
            "tree" => Ok(Allreduce::Tree),
            "ring" => Ok(Allreduce::Ring),
            "mpi" => Ok(Allreduce::Mpi),
            _ => Err(format!(
                "allreduce = \"{name}\" is not an allreduce of ddp; choose tree (recursive \
                 doubling in the fixed tree's order), ring (reduce-scatter + allgather) or mpi \
                 (MPI_Allreduce)"
            )),
        }
    }

    /// Whether the serial reference reproduces this variant's bits at every rank count.
    pub fn bitwise(self) -> bool {
        self != Allreduce::Mpi
    }

    /// Join the ranks' partial sums `parts` (rank order) in this variant's order, in one
    /// process: the serial reference's side of the check. On return `parts[0]` holds the whole
    /// sum. `buckets` are the ranges reduced one by one (a ring chunks each bucket on its own).
    /// `Mpi` has no fixed order; the tree's stands in for it.
    pub fn combine_serial(self, parts: &mut [Vec<f64>], buckets: &[Range<usize>]) {
        match self {
            Allreduce::Tree | Allreduce::Mpi => tree_parts(parts),
            Allreduce::Ring => {
                let r = parts.len();
                let mut out = parts[0].clone();
                for bucket in buckets {
                    for (c, chunk) in ring_chunks(bucket.clone(), r).into_iter().enumerate() {
                        let acc = &mut out[chunk.clone()];
                        acc.copy_from_slice(&parts[c][chunk.clone()]);
                        for k in 1..r {
                            for (a, b) in acc.iter_mut().zip(&parts[(c + k) % r][chunk.clone()]) {
                                *a += *b;
                            }
                        }
                    }
                }
                parts[0] = out;
            }
        }
    }
}

/// The fixed tree over whole vectors: `parts[lo..hi]` is `parts[lo..mid] + parts[mid..hi]`.
fn tree_parts(parts: &mut [Vec<f64>]) {
    let n = parts.len();
    if n > 1 {
        let (left, right) = parts.split_at_mut(n / 2);
        tree_parts(left);
        tree_parts(right);
        for (a, b) in left[0].iter_mut().zip(&right[0]) {
            *a += *b;
        }
    }
}

/// The `ranks` chunks of `range` a ring reduces: chunk `c` is `range.start + c·n/R ..
/// range.start + (c+1)·n/R`, `n = range.len()` (some empty when `n < R`).
pub fn ring_chunks(range: Range<usize>, ranks: usize) -> Vec<Range<usize>> {
    let n = range.len();
    (0..ranks)
        .map(|c| range.start + c * n / ranks..range.start + (c + 1) * n / ranks)
        .collect()
}

/// One step of a ring for one rank: send chunk `send` to the next rank (`r + 1 mod R`), receive
/// chunk `recv` from the previous one, then add it to the local chunk (reduce-scatter) or copy it
/// over (allgather).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingStep {
    pub send: usize,
    pub recv: usize,
    pub add: bool,
}

/// The `2(R−1)` steps of rank `rank` in a ring allreduce over `ranks` ranks. Reduce-scatter step
/// `k` sends chunk `r − k` and adds the received chunk `r − k − 1`, so chunk `c` starts at rank
/// `c` and gathers `g_c + g_{c+1} + …` around the ring, complete at rank `c − 1` after `R − 1`
/// steps; allgather step `k` passes the complete chunk `r + 1 − k` on and receives `r − k`.
pub fn ring_steps(rank: usize, ranks: usize) -> Vec<RingStep> {
    let m = |v: usize| v % ranks;
    let reduce = (0..ranks - 1).map(|k| RingStep {
        send: m(rank + ranks - k),
        recv: m(rank + 2 * ranks - k - 1),
        add: true,
    });
    let gather = (0..ranks - 1).map(|k| RingStep {
        send: m(rank + 1 + ranks - k),
        recv: m(rank + ranks - k),
        add: false,
    });
    reduce.chain(gather).collect()
}

/// A blocking [`GradientReducer`](super::GradientReducer) made of a [`BucketReducer`]: the whole
/// gradient as one bucket, started and waited for after backward (`ddp` without overlap).
pub struct Blocking<R: BucketReducer>(pub std::cell::RefCell<R>);

impl<R: BucketReducer> super::GradientReducer for Blocking<R> {
    fn combine(&self, grad: &mut [f64]) -> u64 {
        let mut r = self.0.borrow_mut();
        r.start(0..grad.len(), grad);
        r.finish(grad)
    }
}

/// The buckets of a gradient of `len` elements, `cap` elements each at most, in the order
/// backward completes them: from the end of the flat vector (the last layer) to its start.
pub fn buckets(len: usize, cap: usize) -> Vec<Range<usize>> {
    let cap = cap.max(1);
    let mut out = Vec::new();
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(cap);
        out.push(start..end);
        end = start;
    }
    out
}

/// A cross-rank reduction that runs in the background, one bucket at a time. Every rank starts
/// the same buckets in the same order, so a collective implementation cannot deadlock.
pub trait BucketReducer {
    /// Start reducing `range` of the gradient, whose rank-local values are `data` (final: they
    /// will not change). Must not wait for other ranks.
    fn start(&mut self, range: Range<usize>, data: &[f64]);
    /// Let started reductions move on (the hook between two layers' backward); whether all of
    /// them have completed.
    fn progress(&mut self) -> bool;
    /// Wait for every started bucket and write the reduced values into `grad` (each bucket's
    /// range); the bytes this rank sent since the last `finish`.
    fn finish(&mut self, grad: &mut [f64]) -> u64;
}

/// Seconds of communication in an overlapped step, beside [`super::StepTiming`]'s exposed
/// `comm_s`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Overlap {
    /// Computation done while at least one bucket was in flight: communication it hid.
    pub hidden_s: f64,
}

impl Trainer {
    /// One optimizer step like [`Trainer::step`], the cross-rank reduction overlapped with the
    /// backward pass: `buckets` (from [`buckets`]) start on `reducer` as soon as backward has made
    /// all their elements final, and the update waits for them all. The step's `comm_s` is the
    /// time spent inside `reducer` (exposed communication); computation done while a bucket was in
    /// flight is added to `hidden`.
    #[allow(clippy::too_many_arguments)]
    pub fn step_overlapped(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        rank: usize,
        sgd: Sgd,
        buckets: &[Range<usize>],
        reducer: &mut dyn BucketReducer,
        hidden: &mut Overlap,
    ) {
        let start = Instant::now();
        let mut comm = 0.0;
        let mut next = 0;
        // Since when a bucket has been in flight, and no completion seen yet.
        let mut flying: Option<Instant> = None;
        let mut grad =
            self.local_gradient(x, labels, batch, schedule, rank, &mut |range, whole| {
                let t = Instant::now();
                // The layers finish from the end of the vector down: a bucket is final once the
                // finished layer begins at or before it.
                while next < buckets.len() && buckets[next].start >= range.start {
                    let b = buckets[next].clone();
                    reducer.start(b.clone(), &whole[b]);
                    next += 1;
                }
                let done = reducer.progress();
                let now = Instant::now();
                if let Some(since) = flying.take() {
                    hidden.hidden_s += (t - since).as_secs_f64();
                }
                if !done {
                    flying = Some(now);
                }
                comm += (now - t).as_secs_f64();
            });
        let t = Instant::now();
        if let Some(since) = flying {
            hidden.hidden_s += (t - since).as_secs_f64();
        }
        let bytes = reducer.finish(&mut grad);
        comm += t.elapsed().as_secs_f64();
        self.apply(&grad, schedule.batch, sgd);
        self.timing.comm_s += comm;
        self.timing.compute_s += start.elapsed().as_secs_f64() - comm;
        self.timing.bytes_sent += bytes;
        self.timing.steps += 1;
    }

    /// One optimizer step of the serial reference for a run over `schedule.ranks` ranks joined by
    /// `allreduce` in `buckets`: every rank's share computed here in turn, then the shares joined
    /// in the variant's order ([`Allreduce::combine_serial`]). For the tree this is bitwise
    /// [`Trainer::step`] on one rank (the module docs of `mlp`); for a ring it is what the ring
    /// computes at that rank count.
    #[allow(clippy::too_many_arguments)]
    pub fn step_reference(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        sgd: Sgd,
        allreduce: Allreduce,
        buckets: &[Range<usize>],
    ) {
        let start = Instant::now();
        let mut parts: Vec<Vec<f64>> = (0..schedule.ranks)
            .map(|r| self.local_gradient(x, labels, batch, schedule, r, &mut |_, _| {}))
            .collect();
        allreduce.combine_serial(&mut parts, buckets);
        self.apply(&parts[0], schedule.batch, sgd);
        self.timing.compute_s += start.elapsed().as_secs_f64();
        self.timing.steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};

    use super::*;
    use crate::data::{self, Dataset};
    use crate::mlp::{global_batch, LocalReducer, Mlp};

    /// Ranks as threads: a mailbox per rank and a barrier, enough to run the tree and the ring
    /// bucket by bucket the way the MPI reducer does.
    struct Shared {
        barrier: Barrier,
        mail: Vec<Mutex<Vec<f64>>>,
    }

    struct Threads<'s> {
        shared: &'s Shared,
        rank: usize,
        allreduce: Allreduce,
        started: Vec<(Range<usize>, Vec<f64>)>,
        bytes: u64,
        /// Per `start`: the bucket and how many `progress` calls (layer hooks) came before it
        /// in this step.
        log: Vec<(Range<usize>, usize)>,
        progressed: usize,
    }

    impl Threads<'_> {
        fn ranks(&self) -> usize {
            self.shared.mail.len()
        }

        /// Send `data` to `to`, then receive what the previous sender left for this rank.
        fn exchange(&self, to: usize, data: &[f64]) -> Vec<f64> {
            *self.shared.mail[to].lock().unwrap() = data.to_vec();
            self.shared.barrier.wait();
            let got = self.shared.mail[self.rank].lock().unwrap().clone();
            self.shared.barrier.wait();
            got
        }

        fn reduce(&mut self, range: Range<usize>, v: &mut [f64]) {
            let (r, n) = (self.rank, self.ranks());
            match self.allreduce {
                Allreduce::Tree | Allreduce::Mpi => {
                    let mut d = 1;
                    while d < n {
                        // Pairwise exchange as two rounds of a one-slot mailbox.
                        let mut got = Vec::new();
                        for sender in [r & !d, r | d] {
                            if sender == r {
                                *self.shared.mail[r ^ d].lock().unwrap() = v.to_vec();
                            }
                            self.shared.barrier.wait();
                            if sender != r {
                                got = self.shared.mail[r].lock().unwrap().clone();
                            }
                            self.shared.barrier.wait();
                        }
                        for (a, b) in v.iter_mut().zip(&got) {
                            *a += *b;
                        }
                        self.bytes += 8 * v.len() as u64;
                        d <<= 1;
                    }
                }
                Allreduce::Ring => {
                    let chunks = ring_chunks(range.clone(), n);
                    let local =
                        |c: usize| chunks[c].start - range.start..chunks[c].end - range.start;
                    for step in ring_steps(r, n) {
                        let got = self.exchange((r + 1) % n, &v[local(step.send)]);
                        self.bytes += 8 * local(step.send).len() as u64;
                        let dst = &mut v[local(step.recv)];
                        for (a, b) in dst.iter_mut().zip(&got) {
                            *a = if step.add { *b + *a } else { *b };
                        }
                    }
                }
            }
        }
    }

    impl BucketReducer for Threads<'_> {
        fn start(&mut self, range: Range<usize>, data: &[f64]) {
            self.log.push((range.clone(), self.progressed));
            self.started.push((range, data.to_vec()));
        }
        fn progress(&mut self) -> bool {
            self.progressed += 1;
            false
        }
        fn finish(&mut self, grad: &mut [f64]) -> u64 {
            let mut covered = 0;
            for (range, mut v) in std::mem::take(&mut self.started) {
                self.reduce(range.clone(), &mut v);
                covered += range.len();
                grad[range].copy_from_slice(&v);
            }
            assert_eq!(
                covered,
                grad.len(),
                "the buckets must cover the gradient once"
            );
            self.progressed = 0;
            std::mem::take(&mut self.bytes)
        }
    }

    fn labels(d: &Dataset) -> Vec<u32> {
        d.y.labels().unwrap().to_vec()
    }

    const SGD: Sgd = Sgd {
        lr: 0.05,
        momentum: 0.9,
    };
    const STEPS: usize = 12;

    fn widths(data: &Dataset) -> [usize; 4] {
        [data.features(), 8, 5, data.y.n_classes()]
    }

    fn schedule(ranks: usize, micro: usize) -> Schedule {
        Schedule {
            batch: 48,
            grain: 3,
            ranks,
            micro,
        }
    }

    fn bits(t: &Trainer) -> Vec<u64> {
        let m = &t.mlp;
        m.params
            .iter()
            .chain(&m.velocity)
            .map(|v| v.to_bits())
            .collect()
    }

    /// The one-process reference of `mlp`: ranks = 1, one micro-batch.
    fn serial(data: &Dataset) -> Vec<u64> {
        let y = labels(data);
        let order: Vec<usize> = (0..data.rows()).rev().collect();
        let mut t = Trainer::new(Mlp::new(&widths(data), 7).unwrap());
        for step in 0..STEPS {
            let batch = global_batch(&order, 48, step);
            t.step(&data.x, &y, &batch, &schedule(1, 1), 0, SGD, &LocalReducer);
        }
        bits(&t)
    }

    /// The reference of a run over `ranks` ranks joined by `allreduce` in buckets of `cap`.
    fn reference(data: &Dataset, s: Schedule, allreduce: Allreduce, cap: usize) -> Vec<u64> {
        let y = labels(data);
        let order: Vec<usize> = (0..data.rows()).rev().collect();
        let mut t = Trainer::new(Mlp::new(&widths(data), 7).unwrap());
        let b = buckets(t.mlp.layout.len(), cap);
        for step in 0..STEPS {
            let batch = global_batch(&order, s.batch, step);
            t.step_reference(&data.x, &y, &batch, &s, SGD, allreduce, &b);
        }
        bits(&t)
    }

    /// Train on threads as ranks; `cap = None` is the blocking variant (one bucket after
    /// backward), `Some(cap)` the overlapped one. Every rank must end with the same bits.
    fn train(data: &Dataset, s: Schedule, allreduce: Allreduce, cap: Option<usize>) -> Vec<u64> {
        let y = labels(data);
        let order: Vec<usize> = (0..data.rows()).rev().collect();
        let shared = Shared {
            barrier: Barrier::new(s.ranks),
            mail: (0..s.ranks).map(|_| Mutex::new(Vec::new())).collect(),
        };
        let results: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..s.ranks)
                .map(|rank| {
                    let (shared, y, order) = (&shared, &y, &order);
                    scope.spawn(move || {
                        let mut t = Trainer::new(Mlp::new(&widths(data), 7).unwrap());
                        let reducer = Threads {
                            shared,
                            rank,
                            allreduce,
                            started: Vec::new(),
                            bytes: 0,
                            log: Vec::new(),
                            progressed: 0,
                        };
                        let b = buckets(t.mlp.layout.len(), cap.unwrap_or(usize::MAX));
                        let blocking = Blocking(std::cell::RefCell::new(reducer));
                        let mut hidden = Overlap::default();
                        for step in 0..STEPS {
                            let batch = global_batch(order, s.batch, step);
                            if cap.is_some() {
                                let mut r = blocking.0.borrow_mut();
                                t.step_overlapped(
                                    &data.x,
                                    y,
                                    &batch,
                                    &s,
                                    rank,
                                    SGD,
                                    &b,
                                    &mut *r,
                                    &mut hidden,
                                );
                            } else {
                                t.step(&data.x, y, &batch, &s, rank, SGD, &blocking);
                            }
                        }
                        bits(&t)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r, &results[0], "ranks disagree");
        }
        results.into_iter().next().unwrap()
    }

    #[test]
    fn overlapped_buckets_give_the_serial_weights_bitwise() {
        let iris = data::load("iris").unwrap();
        let want = serial(&iris);
        // 4-8-5-3: 83 parameters; a cap of 1 sends every element alone, 7 cuts layers, 1000
        // is one bucket for the whole model.
        for (ranks, micro) in [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2), (1, 4)] {
            for cap in [1, 7, 40, 1000] {
                let got = train(&iris, schedule(ranks, micro), Allreduce::Tree, Some(cap));
                assert!(
                    got == want,
                    "ranks = {ranks}, micro = {micro}, bucket = {cap}: weights differ from the \
                     serial reference"
                );
            }
        }
    }

    #[test]
    fn buckets_start_as_their_layers_finish_not_after_backward() {
        // 4-8-5-3: layers 0..40, 40..85 and 85..103 of the flat gradient; buckets of 18 from
        // the end.
        let layout = super::super::Layout::new(&[4, 8, 5, 3]).unwrap();
        let layers: Vec<Range<usize>> = (0..3)
            .map(|l| {
                let (w, b) = layout.layer(l);
                w.start..b.end
            })
            .collect();
        assert_eq!(layers, vec![0..40, 40..85, 85..103]);
        let iris = data::load("iris").unwrap();
        let y = labels(&iris);
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let shared = Shared {
            barrier: Barrier::new(1),
            mail: vec![Mutex::new(Vec::new())],
        };
        let mut reducer = Threads {
            shared: &shared,
            rank: 0,
            allreduce: Allreduce::Tree,
            started: Vec::new(),
            bytes: 0,
            log: Vec::new(),
            progressed: 0,
        };
        let mut t = Trainer::new(Mlp::new(&widths(&iris), 7).unwrap());
        let b = buckets(layout.len(), 18);
        let batch = global_batch(&order, 48, 0);
        let mut hidden = Overlap::default();
        t.step_overlapped(
            &iris.x,
            &y,
            &batch,
            &schedule(1, 2),
            0,
            SGD,
            &b,
            &mut reducer,
            &mut hidden,
        );
        // With two micro-batches, during the second one's backward: the last layer's bucket
        // starts before any other layer is done (no hook has run yet), the buckets inside
        // layer 1 after one hook, those reaching into layer 0 after two (a bucket waits for
        // all its gradients). Starting them all after backward would log 3 everywhere.
        assert_eq!(
            reducer.log,
            vec![
                (85..103, 0),
                (67..85, 1),
                (49..67, 1),
                (31..49, 2),
                (13..31, 2),
                (0..13, 2)
            ]
        );
    }

    #[test]
    fn the_tree_reference_over_ranks_is_the_one_process_step() {
        let iris = data::load("iris").unwrap();
        let want = serial(&iris);
        for ranks in [1, 2, 4, 8] {
            for micro in [1, 2] {
                assert!(
                    reference(&iris, schedule(ranks, micro), Allreduce::Tree, 7) == want,
                    "ranks = {ranks}, micro = {micro}"
                );
            }
        }
    }

    #[test]
    fn a_ring_gives_the_bits_of_its_own_serial_reference_and_not_the_trees() {
        let iris = data::load("iris").unwrap();
        let tree = serial(&iris);
        for (ranks, micro) in [(1, 1), (2, 1), (4, 1), (2, 2), (4, 2)] {
            for cap in [None, Some(7), Some(30)] {
                let s = schedule(ranks, micro);
                let want = reference(&iris, s, Allreduce::Ring, cap.unwrap_or(usize::MAX));
                let got = train(&iris, s, Allreduce::Ring, cap);
                assert!(
                    got == want,
                    "ranks = {ranks}, micro = {micro}, bucket = {cap:?}: ring ≠ its reference"
                );
                // Two partial sums have one order whichever way they are added; four do not.
                assert_eq!(got == tree, ranks <= 2, "ranks = {ranks}, bucket = {cap:?}");
            }
        }
        // Any rank count: three ranks' shares of a batch of 12 grains, in 1 or 2 micro-batches.
        for micro in [1, 2] {
            for cap in [None, Some(7)] {
                let s = Schedule {
                    batch: 36,
                    ..schedule(3, micro)
                };
                assert_eq!(s.check_shares("t"), Ok(()));
                let want = reference(&iris, s, Allreduce::Ring, cap.unwrap_or(usize::MAX));
                let got = train(&iris, s, Allreduce::Ring, cap);
                assert!(got == want, "3 ranks, micro = {micro}, bucket = {cap:?}");
            }
        }
    }

    #[test]
    fn ring_steps_pass_every_chunk_once_around() {
        assert_eq!(ring_steps(0, 1), vec![]);
        let s = ring_steps(1, 4);
        let pairs: Vec<(usize, usize, bool)> = s.iter().map(|s| (s.send, s.recv, s.add)).collect();
        assert_eq!(
            pairs,
            vec![
                (1, 0, true),
                (0, 3, true),
                (3, 2, true),
                (2, 1, false),
                (1, 0, false),
                (0, 3, false)
            ]
        );
        assert_eq!(ring_chunks(10..20, 4), vec![10..12, 12..15, 15..17, 17..20]);
        assert_eq!(buckets(10, 4), vec![6..10, 2..6, 0..2]);
        assert_eq!(buckets(3, 8), vec![0..3]);
    }

    #[test]
    fn unknown_allreduce_is_refused_with_the_choices() {
        assert_eq!(
            Allreduce::parse("butterfly").unwrap_err(),
            "allreduce = \"butterfly\" is not an allreduce of ddp; choose tree (recursive \
             doubling in the fixed tree's order), ring (reduce-scatter + allgather) or mpi \
             (MPI_Allreduce)"
        );
        for (i, name) in Allreduce::NAMES.iter().enumerate() {
            let a = Allreduce::parse(name).unwrap();
            assert_eq!(a.bitwise(), i < 2);
        }
    }
}
