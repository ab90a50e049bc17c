//! The `ddp` variants of `mpi.train` over MPI: the non-blocking bucket reducer [`MpiBuckets`]
//! (the `allreduce` axis: `tree`, `ring`, `mpi`; with `overlap = "on"` its buckets start during
//! backward) and the training loop and checks of those variants.
//!
//! Every bucket is a small state machine over non-blocking MPI calls: the tree posts
//! `MPI_Isend`/`MPI_Irecv` of the whole bucket for each recursive-doubling step, the ring posts one
//! chunk per step of its `2(R−1)` steps (`scalelab_ml::mlp::ddp::ring_steps`), and `mpi` posts one
//! `MPI_Iallreduce` (without overlap, `mpi` is one blocking `MPI_Allreduce` of the whole gradient,
//! [`LibraryAllreduce`]). [`BucketReducer::progress`] (called between two layers' backward) tests the
//! requests and, when a step has completed, adds what arrived and posts the next step, so a bucket
//! advances while the model computes; [`BucketReducer::finish`] waits for the rest. rsmpi's scoped
//! requests borrow their buffers for the whole scope, which a bucket that adds into its buffer
//! between steps cannot express; the raw calls here keep every buffer in its bucket's own heap
//! allocations, untouched while a request on it is pending.
//!
//! The order of the additions is that of `scalelab_ml::mlp::ddp::Allreduce`: the tree's and the
//! ring's are reproduced by the serial reference bit for bit; `mpi`'s is the library's.

use std::cell::RefCell;
use std::ops::Range;
use std::os::raw::{c_int, c_void};

use ::mpi::collective::{CommunicatorCollectives, SystemOperation};
use ::mpi::ffi;
use ::mpi::raw::AsRaw;
use ::mpi::topology::Communicator;
use scalelab_ml::mlp::ddp::{
    buckets, ring_chunks, ring_steps, Allreduce, Blocking, BucketReducer, Overlap, RingStep,
};
use scalelab_ml::mlp::{self, GradientReducer, Mlp, Schedule, Sgd, Trainer};

use crate::value::{Size, Value};
use crate::workload::{Comm, Params};

/// Tags of the buckets' messages start here (the blocking tree's `MPI_Sendrecv` uses tag 0).
const TAG_BASE: c_int = 1000;

/// One bucket on its way through the reduction.
struct Bucket {
    range: Range<usize>,
    /// The rank's values, then the partial and finally the whole sum.
    data: Vec<f64>,
    /// What a step receives (tree: a whole bucket; ring: one chunk; mpi: unused).
    recv: Vec<f64>,
    /// `mpi`: the rank's values handed to `MPI_Iallreduce` (its result goes to `data`).
    send: Vec<f64>,
    /// Index of the step in flight (or the next to post).
    step: usize,
    /// The requests of the step in flight (null when none).
    reqs: [ffi::MPI_Request; 2],
    in_flight: bool,
    done: bool,
    tag: c_int,
}

/// [`BucketReducer`] over an MPI communicator with non-blocking point-to-point messages (tree,
/// ring) or `MPI_Iallreduce` (mpi).
pub(super) struct MpiBuckets<'c> {
    comm: &'c Comm,
    allreduce: Allreduce,
    rank: usize,
    size: usize,
    ring: Vec<RingStep>,
    buckets: Vec<Bucket>,
    bytes: u64,
}

fn check(rc: c_int, what: &str) {
    // MPI's default error handler aborts first; this catches a handler that returns.
    assert_eq!(rc, 0, "{what} failed with MPI error code {rc}");
}

fn count(n: usize) -> c_int {
    c_int::try_from(n).expect("a bucket of more than 2³¹ gradients")
}

impl<'c> MpiBuckets<'c> {
    pub(super) fn new(comm: &'c Comm, allreduce: Allreduce) -> MpiBuckets<'c> {
        let (rank, size) = (comm.rank() as usize, comm.size() as usize);
        MpiBuckets {
            comm,
            allreduce,
            rank,
            size,
            ring: ring_steps(rank, size),
            buckets: Vec::new(),
            bytes: 0,
        }
    }

    fn steps(&self) -> usize {
        match self.allreduce {
            Allreduce::Tree => self.size.trailing_zeros() as usize,
            Allreduce::Ring => self.ring.len(),
            Allreduce::Mpi => usize::from(self.size > 1),
        }
    }

    /// The bucket-relative range of ring chunk `c` of bucket `b`.
    fn chunk(&self, b: &Bucket, c: usize) -> Range<usize> {
        let r = &ring_chunks(b.range.clone(), self.size)[c];
        r.start - b.range.start..r.end - b.range.start
    }

    /// Post step `b.step` of bucket `i` (or mark it done after the last one).
    fn post(&mut self, i: usize) {
        let steps = self.steps();
        let comm = self.comm.as_raw();
        let (rank, size) = (self.rank as c_int, self.size);
        let b = &self.buckets[i];
        if b.step >= steps {
            self.buckets[i].done = true;
            return;
        }
        let mut reqs = [unsafe { ffi::RSMPI_REQUEST_NULL }; 2];
        let tag = b.tag;
        let sent = match self.allreduce {
            Allreduce::Tree => {
                let peer = rank ^ (1 << b.step);
                let n = b.data.len();
                let b = &mut self.buckets[i];
                // SAFETY: `data` and `recv` are this bucket's own allocations of n values; neither
                // is touched (nor resized) until both requests complete in `complete`.
                unsafe {
                    check(
                        ffi::MPI_Irecv(
                            b.recv.as_mut_ptr().cast::<c_void>(),
                            count(n),
                            ffi::RSMPI_DOUBLE,
                            peer,
                            tag,
                            comm,
                            &mut reqs[0],
                        ),
                        "MPI_Irecv",
                    );
                    check(
                        ffi::MPI_Isend(
                            b.data.as_ptr().cast::<c_void>(),
                            count(n),
                            ffi::RSMPI_DOUBLE,
                            peer,
                            tag,
                            comm,
                            &mut reqs[1],
                        ),
                        "MPI_Isend",
                    );
                }
                n
            }
            Allreduce::Ring => {
                let step = self.ring[b.step];
                let (send, recv) = (self.chunk(b, step.send), self.chunk(b, step.recv));
                let next = ((self.rank + 1) % size) as c_int;
                let prev = ((self.rank + size - 1) % size) as c_int;
                let b = &mut self.buckets[i];
                // SAFETY: as for the tree: `recv[..len]` and `data[send]` stay untouched until
                // both requests complete.
                unsafe {
                    check(
                        ffi::MPI_Irecv(
                            b.recv.as_mut_ptr().cast::<c_void>(),
                            count(recv.len()),
                            ffi::RSMPI_DOUBLE,
                            prev,
                            tag,
                            comm,
                            &mut reqs[0],
                        ),
                        "MPI_Irecv",
                    );
                    check(
                        ffi::MPI_Isend(
                            b.data[send.clone()].as_ptr().cast::<c_void>(),
                            count(send.len()),
                            ffi::RSMPI_DOUBLE,
                            next,
                            tag,
                            comm,
                            &mut reqs[1],
                        ),
                        "MPI_Isend",
                    );
                }
                send.len()
            }
            Allreduce::Mpi => {
                let b = &mut self.buckets[i];
                let n = b.data.len();
                // SAFETY: `send` and `data` are separate allocations of n values, untouched until
                // the request completes.
                unsafe {
                    check(
                        ffi::MPI_Iallreduce(
                            b.send.as_ptr().cast::<c_void>(),
                            b.data.as_mut_ptr().cast::<c_void>(),
                            count(n),
                            ffi::RSMPI_DOUBLE,
                            ffi::RSMPI_SUM,
                            comm,
                            &mut reqs[0],
                        ),
                        "MPI_Iallreduce",
                    );
                }
                // What a bandwidth-optimal allreduce sends; the library's own choice is unknown.
                2 * (size - 1) * n / size
            }
        };
        self.bytes += 8 * sent as u64;
        let b = &mut self.buckets[i];
        b.reqs = reqs;
        b.in_flight = true;
    }

    /// The step in flight of bucket `i` has completed: fold in what arrived, post the next.
    fn complete(&mut self, i: usize) {
        let b = &self.buckets[i];
        match self.allreduce {
            Allreduce::Tree => {
                let b = &mut self.buckets[i];
                for (a, r) in b.data.iter_mut().zip(&b.recv) {
                    *a += *r;
                }
            }
            Allreduce::Ring => {
                let step = self.ring[b.step];
                let recv = self.chunk(b, step.recv);
                let b = &mut self.buckets[i];
                let (dst, got) = (&mut b.data[recv.clone()], &b.recv[..recv.len()]);
                for (a, r) in dst.iter_mut().zip(got) {
                    *a = if step.add { *r + *a } else { *r };
                }
            }
            Allreduce::Mpi => {}
        }
        let b = &mut self.buckets[i];
        b.in_flight = false;
        b.step += 1;
        self.post(i);
    }

    /// Test (or, with `wait`, wait for) bucket `i`'s step in flight; advance while steps
    /// complete. Whether the bucket is done.
    fn drive(&mut self, i: usize, wait: bool) -> bool {
        while !self.buckets[i].done {
            let b = &mut self.buckets[i];
            let reqs = b.reqs.as_mut_ptr();
            // SAFETY: two request handles, null or pending, owned by this bucket.
            unsafe {
                if wait {
                    check(
                        ffi::MPI_Waitall(2, reqs, ffi::RSMPI_STATUSES_IGNORE),
                        "MPI_Waitall",
                    );
                } else {
                    let mut flag: c_int = 0;
                    check(
                        ffi::MPI_Testall(2, reqs, &mut flag, ffi::RSMPI_STATUSES_IGNORE),
                        "MPI_Testall",
                    );
                    if flag == 0 {
                        return false;
                    }
                }
            }
            self.complete(i);
        }
        true
    }
}

impl BucketReducer for MpiBuckets<'_> {
    fn start(&mut self, range: Range<usize>, data: &[f64]) {
        let n = data.len();
        let recv = match self.allreduce {
            Allreduce::Tree => n,
            Allreduce::Ring => n.div_ceil(self.size) + 1,
            Allreduce::Mpi => 0,
        };
        let tag = TAG_BASE + (self.buckets.len() % 30_000) as c_int;
        self.buckets.push(Bucket {
            range,
            data: data.to_vec(),
            recv: vec![0.0; recv],
            send: if self.allreduce == Allreduce::Mpi {
                data.to_vec()
            } else {
                Vec::new()
            },
            step: 0,
            reqs: [unsafe { ffi::RSMPI_REQUEST_NULL }; 2],
            in_flight: false,
            done: false,
            tag,
        });
        let i = self.buckets.len() - 1;
        self.post(i);
    }

    fn progress(&mut self) -> bool {
        let mut all = true;
        for i in 0..self.buckets.len() {
            all &= self.drive(i, false);
        }
        all
    }

    fn finish(&mut self, grad: &mut [f64]) -> u64 {
        for i in 0..self.buckets.len() {
            self.drive(i, true);
        }
        for b in self.buckets.drain(..) {
            grad[b.range].copy_from_slice(&b.data);
        }
        std::mem::take(&mut self.bytes)
    }
}

/// A point's `ddp` variant: `allreduce`, `overlap` and `bucket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Variant {
    pub(super) allreduce: Allreduce,
    pub(super) overlap: bool,
    /// Gradients (f64) per bucket.
    pub(super) bucket: usize,
}

impl Variant {
    /// Whether `strategy` with this variant trains on any rank count: `ddp` and `accumulate`
    /// over a ring or `MPI_Allreduce`, whose serial reference joins the ranks' shares in the
    /// variant's own order (`Allreduce::combine_serial`). The fixed tree (recursive doubling)
    /// and `sharded`'s reduce-scatter in the tree's order need a power of two.
    pub(super) fn any_rank_count(&self, strategy: &str) -> bool {
        matches!(strategy, "ddp" | "accumulate") && self.allreduce != Allreduce::Tree
    }

    /// Read and check the variant of a point (`name` prefixes the refusals).
    pub(super) fn from_params(name: &str, params: &Params) -> Result<Variant, String> {
        let allreduce = Allreduce::parse(super::text(params, "allreduce")?)
            .map_err(|e| format!("{name}: {e}"))?;
        let overlap = match super::text(params, "overlap")? {
            "on" => true,
            "off" => false,
            other => {
                return Err(format!(
                    "{name}: overlap = \"{other}\": write \"on\" (bucketed allreduce during \
                     backward) or \"off\" (one allreduce after backward)"
                ))
            }
        };
        let bucket = match params.get("bucket") {
            // Not `Size::count`, which rounds a few bytes up to one item.
            Some(Value::Size(Size::Bytes(b))) => b / 8,
            Some(Value::Size(Size::Count(n))) => *n,
            Some(Value::Int(i)) => *i,
            other => {
                return Err(format!(
                    "parameter `bucket` must be a size like 4096 or \"64KiB\" (found {other:?})"
                ))
            }
        };
        if bucket == 0 {
            return Err(format!(
                "{name}: bucket = {}: a bucket must hold at least one gradient (8 bytes); give \
                 its capacity as a count of gradients or in bytes, e.g. bucket = \"64KiB\" (what \
                 PyTorch calls bucket_cap_mb)",
                match params.get("bucket") {
                    Some(Value::Size(s)) => s.to_string(),
                    Some(v) => format!("{v:?}"),
                    None => "?".to_string(),
                }
            ));
        }
        Ok(Variant {
            allreduce,
            overlap,
            bucket: crate::workload::to_usize(bucket, "bucket")?,
        })
    }

    /// The variant `mpi.train` had before there were variants: the tree after backward, run by
    /// the blocking `TreeAllreduce`.
    pub(super) fn is_plain(&self) -> bool {
        self.allreduce == Allreduce::Tree && !self.overlap
    }

    /// The buckets a gradient of `len` values is reduced in: one after backward, or buckets of
    /// `bucket` values from the last layer down with overlap.
    pub(super) fn buckets(&self, len: usize) -> Vec<Range<usize>> {
        if self.overlap {
            buckets(len, self.bucket)
        } else {
            std::iter::once(0..len).collect()
        }
    }
}

/// Train `steps` steps of the variant `variant` as rank `rank` of `comm`, calling `step_done`
/// with the trainer after each; the computation done while buckets were in flight.
#[allow(clippy::too_many_arguments)]
pub(super) fn train(
    trainer: &mut Trainer,
    comm: &Comm,
    variant: Variant,
    schedule: &Schedule,
    sgd: Sgd,
    steps: usize,
    data: &super::Data,
    rank: usize,
    step_done: &mut dyn FnMut(&Trainer),
) -> Overlap {
    let mut reducer = MpiBuckets::new(comm, variant.allreduce);
    let mut hidden = Overlap::default();
    let buckets = variant.buckets(trainer.mlp.layout.len());
    for step in 0..steps {
        let batch = mlp::global_batch(&data.train, schedule.batch, step);
        if variant.overlap {
            trainer.step_overlapped(
                &data.x,
                &data.labels,
                &batch,
                schedule,
                rank,
                sgd,
                &buckets,
                &mut reducer,
                &mut hidden,
            );
        } else if variant.allreduce == Allreduce::Mpi {
            let blocking = LibraryAllreduce {
                comm,
                send: RefCell::new(Vec::new()),
            };
            trainer.step(
                &data.x,
                &data.labels,
                &batch,
                schedule,
                rank,
                sgd,
                &blocking,
            );
        } else {
            let blocking = Blocking(RefCell::new(&mut reducer));
            trainer.step(
                &data.x,
                &data.labels,
                &batch,
                schedule,
                rank,
                sgd,
                &blocking,
            );
        }
        step_done(trainer);
    }
    hidden
}

/// `allreduce = "mpi"` without overlap: one blocking `MPI_Allreduce` of the whole gradient.
struct LibraryAllreduce<'c> {
    comm: &'c Comm,
    send: RefCell<Vec<f64>>,
}

impl GradientReducer for LibraryAllreduce<'_> {
    fn combine(&self, grad: &mut [f64]) -> u64 {
        let size = self.comm.size() as usize;
        if size == 1 {
            return 0;
        }
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(grad);
        self.comm
            .all_reduce_into(&send[..], grad, SystemOperation::sum());
        // What a bandwidth-optimal allreduce sends; the library's own choice is unknown.
        8 * (2 * (size - 1) * grad.len() / size) as u64
    }
}

impl BucketReducer for &mut MpiBuckets<'_> {
    fn start(&mut self, range: Range<usize>, data: &[f64]) {
        (**self).start(range, data);
    }
    fn progress(&mut self) -> bool {
        (**self).progress()
    }
    fn finish(&mut self, grad: &mut [f64]) -> u64 {
        (**self).finish(grad)
    }
}

/// The serial reference of a ring run over `schedule.ranks` ranks: every rank's share computed
/// here, joined in the ring's order per bucket chunk (`Allreduce::combine_serial`).
pub(super) fn ring_reference(
    initial: Mlp,
    mp: mlp::MixedPrecision,
    variant: Variant,
    schedule: &Schedule,
    sgd: Sgd,
    steps: usize,
    data: &super::Data,
) -> Mlp {
    let mut t = Trainer::new(initial).with_precision(mp);
    let buckets = variant.buckets(t.mlp.layout.len());
    for step in 0..steps {
        let batch = mlp::global_batch(&data.train, schedule.batch, step);
        t.step_reference(
            &data.x,
            &data.labels,
            &batch,
            schedule,
            sgd,
            variant.allreduce,
            &buckets,
        );
    }
    t.mlp
}

/// How far `got` is from `reference`: the largest `|got − ref| / (1 + |ref|)` over the weights and
/// the momentum (0 when bitwise equal).
pub(super) fn distance(got: &Mlp, reference: &Mlp) -> f64 {
    let pairs = got
        .params
        .iter()
        .zip(&reference.params)
        .chain(got.velocity.iter().zip(&reference.velocity));
    pairs.fold(0.0, |m: f64, (a, b)| {
        let d = (a - b).abs() / (1.0 + b.abs());
        // A NaN (a poisoned or diverged weight) is as far as it gets.
        if d.is_nan() {
            f64::INFINITY
        } else {
            m.max(d)
        }
    })
}
