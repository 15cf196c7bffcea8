//! What every background worker shares: the loop that runs its step until
//! the process stops, and the record of workers that stopped on their own,
//! which readiness reads.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

/// What a worker's step asks of its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// More work may be waiting: step again at once.
    Now,
    /// Wait this long, or until woken, before the next step.
    After(Duration),
}

/// Runs `step` until `stop` turns true or its sender is gone: again at once
/// when it answers [`Next::Now`], otherwise after its pause, cut short by
/// `wake` (when given) or by `stop`. A step under way is never interrupted;
/// keep each step's `run_once` public so tests drive it instead.
pub async fn run_until_stopped<F, Fut>(
    wake: Option<&Notify>,
    mut stop: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Next>,
{
    // A dropped sender can never say stop; waiting on it would spin.
    while !*stop.borrow_and_update() && stop.has_changed().is_ok() {
        let Next::After(pause) = step().await else {
            // A step that finished without waiting on anything would
            // otherwise never let another task (or the stop) in.
            tokio::task::yield_now().await;
            continue;
        };
        let woken = async {
            match wake {
                Some(wake) => wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = woken => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// The background workers of this process that stopped while it was meant
/// to be running (a panic, or a loop that ended): readiness answers 503
/// once any has. Clones share one record.
#[derive(Debug, Clone, Default)]
pub struct WorkerHealth {
    stopped: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

impl WorkerHealth {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the worker `name` stopped; the caller logs why.
    pub fn record_stop(&self, name: &str) {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(name.to_owned());
        self.changed.notify_waiters();
    }

    /// The names of the workers that stopped, in order; empty while all run.
    pub fn stopped(&self) -> Vec<String> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until a worker has stopped and returns its name.
    pub async fn first_stop(&self) -> String {
        loop {
            let changed = self.changed.notified();
            if let Some(name) = self.stopped().into_iter().next() {
                return name;
            }
            changed.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::mpsc;
    use tokio::time::timeout;

    use super::*;

    /// Long enough that only a wake-up or a stop can end a pause within
    /// the test's deadline.
    const FOREVER: Duration = Duration::from_secs(3600);
    const DEADLINE: Duration = Duration::from_secs(10);

    /// A loop whose step reports each run on a channel and answers what
    /// `answer` says for the nth step.
    fn spawn_loop(
        wake: Option<Arc<Notify>>,
        stop: watch::Receiver<bool>,
        answer: impl Fn(usize) -> Next + Send + Sync + 'static,
    ) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<usize>) {
        let (steps, ran) = mpsc::unbounded_channel();
        let count = AtomicUsize::new(0);
        let handle = tokio::spawn(async move {
            run_until_stopped(wake.as_deref(), stop, || {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let _ = steps.send(n);
                let next = answer(n);
                async move { next }
            })
            .await;
        });
        (handle, ran)
    }

    async fn next_step(ran: &mut mpsc::UnboundedReceiver<usize>) -> Option<usize> {
        timeout(DEADLINE, ran.recv()).await.ok().flatten()
    }

    #[tokio::test]
    async fn a_step_that_answers_now_runs_again_without_a_pause() {
        let (_stop_tx, stop) = watch::channel(false);
        let (_handle, mut ran) = spawn_loop(None, stop, |n| {
            if n < 3 {
                Next::Now
            } else {
                Next::After(FOREVER)
            }
        });
        for n in 0..4 {
            assert_eq!(next_step(&mut ran).await, Some(n));
        }
    }

    #[tokio::test]
    async fn a_pause_ends_early_when_woken() {
        let wake = Arc::new(Notify::new());
        let (_stop_tx, stop) = watch::channel(false);
        let (_handle, mut ran) = spawn_loop(Some(wake.clone()), stop, |_| Next::After(FOREVER));
        assert_eq!(next_step(&mut ran).await, Some(0));
        // notify_one keeps a permit, so the wake-up counts even if the loop
        // has not reached its pause yet.
        wake.notify_one();
        assert_eq!(next_step(&mut ran).await, Some(1), "woken out of its pause");
    }

    #[tokio::test]
    async fn stop_ends_the_loop_during_its_pause() {
        let (stop_tx, stop) = watch::channel(false);
        let (handle, mut ran) = spawn_loop(None, stop, |_| Next::After(FOREVER));
        assert_eq!(next_step(&mut ran).await, Some(0));
        stop_tx.send(true).unwrap();
        timeout(DEADLINE, handle).await.unwrap().unwrap();
        assert_eq!(ran.recv().await, None, "no step after stop");
    }

    #[tokio::test]
    async fn stop_is_seen_between_steps_that_answer_now() {
        let (stop_tx, stop) = watch::channel(false);
        let (handle, mut ran) = spawn_loop(None, stop, |_| Next::Now);
        assert!(next_step(&mut ran).await.is_some());
        stop_tx.send(true).unwrap();
        timeout(DEADLINE, handle).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_dropped_stop_sender_ends_the_loop() {
        let (stop_tx, stop) = watch::channel(false);
        let (handle, mut ran) = spawn_loop(None, stop, |_| Next::After(FOREVER));
        assert_eq!(next_step(&mut ran).await, Some(0));
        drop(stop_tx);
        timeout(DEADLINE, handle).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_loop_asked_to_stop_before_it_starts_runs_no_step() {
        let (stop_tx, stop) = watch::channel(false);
        stop_tx.send(true).unwrap();
        let (handle, mut ran) = spawn_loop(None, stop, |_| Next::Now);
        timeout(DEADLINE, handle).await.unwrap().unwrap();
        assert_eq!(ran.recv().await, None);
    }

    #[tokio::test]
    async fn worker_health_records_stops_in_order_and_wakes_a_waiter() {
        let health = WorkerHealth::new();
        assert!(health.stopped().is_empty());
        let waiter = tokio::spawn({
            let health = health.clone();
            async move { health.first_stop().await }
        });
        tokio::task::yield_now().await;
        health.record_stop("reconciler-1");
        health.record_stop("retention");
        assert_eq!(health.stopped(), ["reconciler-1", "retention"]);
        assert_eq!(
            timeout(DEADLINE, waiter).await.unwrap().unwrap(),
            "reconciler-1"
        );
    }
}
