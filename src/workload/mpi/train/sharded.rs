//! `strategy = "sharded"` of `mpi.train`: ZeRO stage 3 / FSDP over MPI ranks
//! (`scalelab_ml::mlp::sharded`). Each rank keeps its chunk of the parameters and of the momentum;
//! a step gathers the parameters with `MPI_Allgather`, computes its share of the batch, and
//! reduce-scatters the gradient by recursive halving over `MPI_Sendrecv` in the fixed tree's order
//! ([`halving_reduce_scatter`]), so every chunk ends bitwise the serial reference's.
//!
//! Verification after every repetition: the parameters gathered after the last step (outside the
//! timed steps, as a full state dict is gathered to save a checkpoint) must equal the serial
//! reference's bit for bit, and so must each rank's momentum chunk.
//!
//! Metrics beside `ddp`'s: `mem_per_rank_bytes` (parameters, gradient and momentum kept between
//! steps, ZeRO's count: a chunk of each) and `mem_peak_bytes` (within a step: the gathered
//! parameters and the full local gradient beside the momentum chunk); `bytes_per_step` is the
//! allgather's plus the reduce-scatter's `(R − 1)` chunks each; `wait_s` and `comm_s` split the
//! seconds inside the collectives as `ddp`'s do (`super::waiting`).

use std::time::Instant;

use ::mpi::collective::CommunicatorCollectives;
use ::mpi::point_to_point::send_receive_into;
use ::mpi::topology::Communicator;
use scalelab_ml::mlp::sharded::{
    halving_reduce_scatter, model_state_bytes, peak_state_bytes, ShardCollective, ShardedTrainer,
    Shards,
};
use scalelab_ml::mlp::{Mlp, StepLog, StepTiming, Trainer};

use super::{waiting, Data, LossCurve, Setup};
use crate::workload::{Comm, Instance};

/// [`ShardCollective`] over an MPI communicator.
struct MpiShards<'c, C: Communicator> {
    comm: &'c C,
}

impl<C: Communicator> ShardCollective for MpiShards<'_, C> {
    fn reduce_scatter(&self, grad: &mut [f64], shards: &Shards) -> u64 {
        let rank = self.comm.rank() as usize;
        halving_reduce_scatter(grad, rank, shards, |peer, send, recv| {
            let peer = self.comm.process_at_rank(peer as i32);
            send_receive_into(send, &peer, recv, &peer);
        })
    }
    fn allgather(&self, full: &mut [f64], shards: &Shards) -> u64 {
        let mine = full[shards.range(self.comm.rank() as usize)].to_vec();
        self.comm.all_gather_into(&mine[..], full);
        // What a ring or recursive-doubling allgather sends per rank.
        8 * (shards.chunk() * (shards.ranks - 1)) as u64
    }
}

/// One rank of a sharded training run.
pub(super) struct ShardedInstance {
    curve: LossCurve,
    rank: usize,
    comm: Comm,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    trainer: Option<ShardedTrainer>,
    /// The parameters gathered after the last step of the last run.
    gathered: Vec<f64>,
    wall_s: f64,
    timing: StepTiming,
    /// Each step's compute and collective seconds of the last repetition.
    steps: StepLog,
    /// `timing.comm_s` split into waiting for the slowest rank and moving data.
    wait_s: f64,
    comm_s: f64,
    loss: f64,
    accuracy: f64,
}

impl ShardedInstance {
    pub(super) fn new(
        comm: &Comm,
        setup: Setup,
        data: Data,
        initial: Mlp,
        reference: Mlp,
        curve: LossCurve,
    ) -> ShardedInstance {
        ShardedInstance {
            curve,
            rank: comm.rank() as usize,
            comm: comm.duplicate(),
            setup,
            data,
            initial,
            reference,
            trainer: None,
            gathered: Vec::new(),
            wall_s: 0.0,
            timing: StepTiming::default(),
            steps: StepLog::default(),
            wait_s: 0.0,
            comm_s: 0.0,
            loss: f64::NAN,
            accuracy: f64::NAN,
        }
    }

    fn shards(&self) -> Shards {
        Shards {
            len: self.initial.params.len(),
            ranks: self.setup.schedule.ranks,
        }
    }
}

impl Instance for ShardedInstance {
    fn reset(&mut self) {
        self.trainer = Some(ShardedTrainer::new(
            &self.initial,
            self.rank,
            self.setup.schedule.ranks,
        ));
    }
    fn run(&mut self) {
        let (initial, rank, ranks) = (&self.initial, self.rank, self.setup.schedule.ranks);
        let trainer = self
            .trainer
            .get_or_insert_with(|| ShardedTrainer::new(initial, rank, ranks));
        let coll = MpiShards { comm: &self.comm };
        let start = Instant::now();
        self.curve.restart();
        self.steps.restart();
        for step in 0..self.setup.steps {
            let batch =
                scalelab_ml::mlp::global_batch(&self.data.train, self.setup.schedule.batch, step);
            trainer.step(
                &self.data.x,
                &self.data.labels,
                &batch,
                &self.setup.schedule,
                self.setup.sgd,
                &coll,
            );
            self.curve.step_done(start);
            self.steps.record(trainer.timing());
        }
        self.wall_s = start.elapsed().as_secs_f64();
        self.timing = trainer.take_timing();
        (self.wait_s, self.comm_s) = waiting(&self.comm, &self.steps);
        self.gathered = trainer.gather(&coll).0;
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        let Some(trainer) = self.trainer.take() else {
            return Err(format!("{name}: no training to check: run did not finish"));
        };
        let shards = self.shards();
        let mut velocity = self.reference.velocity.clone();
        velocity.resize(shards.padded(), 0.0);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        if bits(&self.gathered) != bits(&self.reference.params)
            || bits(&trainer.velocity) != bits(&velocity[shards.range(self.rank)])
        {
            let differ = self
                .gathered
                .iter()
                .zip(&self.reference.params)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            return Err(format!(
                "{name}: rank {} of {}, strategy sharded: after {} steps {differ} of {} gathered \
                 weights (or the rank's momentum chunk) differ from the serial reference's bits",
                self.rank,
                shards.ranks,
                self.setup.steps,
                self.reference.params.len()
            ));
        }
        let mut model = Trainer::new(Mlp {
            layout: self.initial.layout.clone(),
            params: std::mem::take(&mut self.gathered),
            velocity: Vec::new(),
        });
        (self.loss, self.accuracy) =
            model.evaluate(&self.data.x, &self.data.labels, &self.data.test);
        // The next repetition starts from fresh chunks and must gather its own result.
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let steps = self.timing.steps.max(1) as f64;
        let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
        let (len, ranks) = (self.initial.params.len(), self.setup.schedule.ranks);
        vec![
            (
                "samples_per_s",
                samples / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", self.timing.compute_s),
            ("comm_s", self.comm_s),
            ("wait_s", self.wait_s),
            ("step_s", self.wall_s / steps),
            ("bytes_per_step", self.timing.bytes_sent as f64 / steps),
            ("param_bytes", 8.0 * len as f64),
            (
                "mem_per_rank_bytes",
                model_state_bytes(len, ranks, true) as f64,
            ),
            ("mem_peak_bytes", peak_state_bytes(len, ranks, true) as f64),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
            ("steps", self.timing.steps as f64),
        ]
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.curve.detail().into_iter().collect()
    }
}
