//! `keel bench orchestrator`: durable no-op tasks per second with 1 and N workers, and the
//! per-step overhead (p50/p99) of a 20-step run that checkpoints every step — each under
//! `synchronous=FULL` and `NORMAL`, on a temporary database.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::scratch::Scratch;
use super::{Measurement, emit};
use crate::core::audit::Actor;
use crate::core::clock::SystemClock;
use crate::core::coordinator::builtin::BuiltinExecutor;
use crate::core::coordinator::{
    Coordinator, OrchestratorConfig, Outcome, RunError, StepContext, TaskExecutor,
};
use crate::core::queue::{NewTask, RoleCatalog};
use crate::core::store::{Durability, Store};

const STEPS: usize = 20;
const STEP_ROLE: &str = "bench.steps";

/// Runs the suite and prints its measurements.
pub fn run(json: bool) -> anyhow::Result<()> {
    let workers_n = std::thread::available_parallelism()
        .map_or(2, std::num::NonZero::get)
        .max(2);
    for (durability, label, tasks) in [
        (Durability::Full, "full", 400),
        (Durability::Normal, "normal", 3_000),
    ] {
        for workers in [1, workers_n] {
            let rate = noop_throughput(durability, workers, tasks)?;
            emit(
                &Measurement {
                    suite: "orchestrator",
                    metric: format!("noop_tasks_per_s.{label}.workers_{workers}"),
                    value: rate,
                    unit: "tasks/s",
                },
                json,
            );
        }
        let (p50, p99) = step_overhead(durability)?;
        for (name, value) in [("p50", p50), ("p99", p99)] {
            emit(
                &Measurement {
                    suite: "orchestrator",
                    metric: format!("step_overhead_{name}.{label}"),
                    value,
                    unit: "ms",
                },
                json,
            );
        }
    }
    Ok(())
}

fn config(workers: usize) -> OrchestratorConfig {
    OrchestratorConfig {
        workers,
        max_running: 64,
        default_role_limit: 64,
        poll_ms: 1,
        claim_batch: 16,
        ..OrchestratorConfig::default()
    }
}

fn submit_all(store: &mut Store, role: &str, n: usize) -> anyhow::Result<()> {
    let catalog = RoleCatalog::builtin().with_role(STEP_ROLE, None);
    store.write(|tx| {
        for _ in 0..n {
            let task = NewTask {
                role: role.into(),
                input: json!({}),
                ..NewTask::default()
            };
            crate::core::queue::submit(tx, 0, &Actor::Operator, &catalog, task)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn wait_done(store: &Store, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_mins(5);
    loop {
        let done: i64 = store.conn().query_row(
            "SELECT count(*) FROM tasks WHERE state = 'succeeded'",
            [],
            |r| r.get(0),
        )?;
        if usize::try_from(done).unwrap_or(0) >= n {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "benchmark tasks did not finish");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn noop_throughput(durability: Durability, workers: usize, tasks: usize) -> anyhow::Result<f64> {
    let dir = Scratch::new("orchestrator")?;
    let path = dir.path().join("bench.db");
    let mut store = Store::open(&path, durability)?;
    submit_all(&mut store, "noop", tasks)?;
    let coordinator = Arc::new(Coordinator::new(
        path,
        durability,
        Arc::new(SystemClock),
        RoleCatalog::builtin(),
        config(workers),
        Arc::new(BuiltinExecutor::default()),
    ));
    let started = Instant::now();
    let running = coordinator.start()?;
    wait_done(&store, tasks)?;
    let elapsed = started.elapsed().as_secs_f64();
    running.stop();
    #[allow(clippy::cast_precision_loss)] // task counts stay far below 2^52
    Ok(tasks as f64 / elapsed)
}

/// Times each of 20 checkpointed steps inside real runs.
struct StepTimer(Arc<Mutex<Vec<f64>>>);

impl TaskExecutor for StepTimer {
    fn handles(&self, role: &str) -> bool {
        role == STEP_ROLE
    }
    fn execute(&self, ctx: &mut StepContext<'_>) -> Result<Outcome, RunError> {
        let mut samples = Vec::with_capacity(STEPS);
        for i in 0..STEPS {
            let t = Instant::now();
            let _: usize = ctx.step(&format!("step-{i}"), || Ok(i))?;
            samples.push(t.elapsed().as_secs_f64() * 1_000.0);
        }
        self.0
            .lock()
            .map_err(|_| RunError::Permanent("poisoned".into()))?
            .extend(samples);
        Ok(Outcome::Succeeded(json!({})))
    }
}

fn step_overhead(durability: Durability) -> anyhow::Result<(f64, f64)> {
    let dir = Scratch::new("orchestrator")?;
    let path = dir.path().join("bench.db");
    let mut store = Store::open(&path, durability)?;
    let runs = 25;
    submit_all(&mut store, STEP_ROLE, runs)?;
    let samples = Arc::new(Mutex::new(Vec::new()));
    let coordinator = Coordinator::new(
        path,
        durability,
        Arc::new(SystemClock),
        RoleCatalog::builtin().with_role(STEP_ROLE, None),
        config(1),
        Arc::new(StepTimer(Arc::clone(&samples))),
    );
    coordinator.run_pending(&mut store)?;
    let mut samples = samples
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .clone();
    anyhow::ensure!(
        samples.len() == runs * STEPS,
        "expected {} steps, timed {}",
        runs * STEPS,
        samples.len()
    );
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| {
        // q is in 0..=1, so the index is in 0..samples.len().
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let i = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[i]
    };
    Ok((at(0.50), at(0.99)))
}
