//! What every background worker shares: the loop that runs its step until
//! the process stops, the doorbell that cuts its pause short when work is
//! committed, and the record of workers that stopped on their own, which
//! readiness reads.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::ports::WorkAnnouncer;

/// Rung when work is committed; workers waiting for work listen to it.
/// Clones ring the same bell. A ring is never lost: a worker busy with a
/// step when it rang looks again as soon as the step ends, instead of
/// pausing until its next poll.
#[derive(Clone)]
pub struct Doorbell {
    rung: Arc<watch::Sender<u64>>,
    others: Option<Arc<dyn WorkAnnouncer>>,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("rung", &*self.rung.borrow())
            .field("announces", &self.others.is_some())
            .finish()
    }
}

impl Default for Doorbell {
    fn default() -> Self {
        Self::new()
    }
}

impl Doorbell {
    /// A bell heard in this process only.
    pub fn new() -> Self {
        Self {
            rung: Arc::new(watch::channel(0).0),
            others: None,
        }
    }

    /// Rings also tell the other processes on the database, through
    /// `announcer`.
    pub fn announcing(mut self, announcer: Arc<dyn WorkAnnouncer>) -> Self {
        self.others = Some(announcer);
        self
    }

    /// Work was committed that any process's workers may take.
    pub fn ring(&self) {
        self.ring_here();
        if let Some(others) = &self.others {
            others.announce();
        }
    }

    /// Work was committed for this process's workers (or another process
    /// announced some).
    pub fn ring_here(&self) {
        self.rung.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A listener that has heard every ring so far.
    pub fn listen(&self) -> Listener {
        Listener(self.rung.subscribe())
    }
}

/// One worker's ear on a [`Doorbell`].
#[derive(Debug)]
pub struct Listener(watch::Receiver<u64>);

impl Listener {
    /// Counts every ring so far as heard.
    fn hear_all(&mut self) {
        self.0.borrow_and_update();
    }

    /// Waits for a ring not heard yet (at once if one came meanwhile).
    /// Never returns if the bell is gone.
    async fn rung(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

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
/// a ring of `wake` (when given; one that came during the step counts) or
/// by `stop`. A step under way is never interrupted; keep each step's
/// `run_once` public so tests drive it instead.
pub async fn run_until_stopped<F, Fut>(
    mut wake: Option<Listener>,
    mut stop: watch::Receiver<bool>,
    mut step: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Next>,
{
    // A dropped sender can never say stop; waiting on it would spin.
    while !*stop.borrow_and_update() && stop.has_changed().is_ok() {
        // What rang before this step, the step sees for itself.
        if let Some(wake) = wake.as_mut() {
            wake.hear_all();
        }
        let Next::After(pause) = step().await else {
            // A step that finished without waiting on anything would
            // otherwise never let another task (or the stop) in.
            tokio::task::yield_now().await;
            continue;
        };
        let woken = async {
            match wake.as_mut() {
                Some(wake) => wake.rung().await,
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
        wake: Option<&Doorbell>,
        stop: watch::Receiver<bool>,
        answer: impl Fn(usize) -> Next + Send + Sync + 'static,
    ) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<usize>) {
        spawn_slow_loop(wake, stop, answer, None)
    }

    /// [`spawn_loop`] whose steps each wait for a message on `gate`, when
    /// given, before they answer.
    fn spawn_slow_loop(
        wake: Option<&Doorbell>,
        stop: watch::Receiver<bool>,
        answer: impl Fn(usize) -> Next + Send + Sync + 'static,
        gate: Option<mpsc::UnboundedReceiver<()>>,
    ) -> (tokio::task::JoinHandle<()>, mpsc::UnboundedReceiver<usize>) {
        let (steps, ran) = mpsc::unbounded_channel();
        let count = AtomicUsize::new(0);
        let gate = Arc::new(tokio::sync::Mutex::new(gate));
        let listener = wake.map(Doorbell::listen);
        let handle = tokio::spawn(async move {
            run_until_stopped(listener, stop, || {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let _ = steps.send(n);
                let next = answer(n);
                let gate = gate.clone();
                async move {
                    if let Some(gate) = gate.lock().await.as_mut() {
                        gate.recv().await;
                    }
                    next
                }
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
        let bell = Doorbell::new();
        let (_stop_tx, stop) = watch::channel(false);
        let (_handle, mut ran) = spawn_loop(Some(&bell), stop, |_| Next::After(FOREVER));
        assert_eq!(next_step(&mut ran).await, Some(0));
        bell.ring();
        assert_eq!(next_step(&mut ran).await, Some(1), "woken out of its pause");
        bell.ring_here();
        assert_eq!(next_step(&mut ran).await, Some(2), "and again");
    }

    /// Work committed while a worker is busy with a step that found none
    /// must not wait for the next poll.
    #[tokio::test]
    async fn a_ring_during_a_step_ends_the_pause_after_it() {
        let bell = Doorbell::new();
        let (_stop_tx, stop) = watch::channel(false);
        let (open, gate) = mpsc::unbounded_channel();
        let (_handle, mut ran) =
            spawn_slow_loop(Some(&bell), stop, |_| Next::After(FOREVER), Some(gate));
        assert_eq!(next_step(&mut ran).await, Some(0));
        // The step is under way (held at its gate) when the bell rings.
        bell.ring();
        open.send(()).unwrap();
        assert_eq!(next_step(&mut ran).await, Some(1), "not lost");
        // A ring before a step is for that step: it pauses after it.
        open.send(()).unwrap();
        assert_eq!(
            timeout(Duration::from_millis(200), ran.recv()).await.ok(),
            None,
            "no ring since step 1 began: it pauses"
        );
    }

    /// Rings reach the other processes through the announcer.
    #[test]
    fn a_ring_is_announced_and_a_ring_here_is_not() {
        #[derive(Default)]
        struct Count(AtomicUsize);
        impl WorkAnnouncer for Count {
            fn announce(&self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count::default());
        let bell = Doorbell::new().announcing(count.clone());
        bell.ring();
        bell.ring_here();
        bell.clone().ring();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
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
