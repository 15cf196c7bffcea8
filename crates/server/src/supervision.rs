//! Background workers are meant to run until the process stops. One that
//! panics or returns early must not vanish silently: it is logged at error
//! level and recorded in [`WorkerHealth`], so readiness answers 503 and
//! `ephemera worker` exits.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

use ephemera_application::worker::WorkerHealth;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A named background task.
pub struct Task {
    name: String,
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Task {
    pub fn new(name: impl Into<String>, future: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name: name.into(),
            future: Box::pin(future),
        }
    }
}

impl std::fmt::Debug for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Spawns every task. One that panics, or ends before `stop` turns true, is
/// logged at error level with its name and recorded in `health`; the
/// others run on. The handles end when their task does.
pub fn supervise(
    tasks: Vec<Task>,
    stop: &watch::Receiver<bool>,
    health: &WorkerHealth,
) -> Vec<JoinHandle<()>> {
    tasks
        .into_iter()
        .map(|Task { name, future }| {
            let (stop, health) = (stop.clone(), health.clone());
            let task = tokio::spawn(future);
            tokio::spawn(async move {
                let reason = match task.await {
                    Ok(()) if *stop.borrow() => return,
                    Ok(()) => "ended while the process is running".to_owned(),
                    Err(err) if err.is_panic() => {
                        format!("panicked: {}", panic_message(err.into_panic().as_ref()))
                    }
                    Err(err) => format!("was cancelled: {err}"),
                };
                tracing::error!(
                    worker = %name,
                    "background worker {name} {reason}; this process now answers not ready (503) and needs a restart"
                );
                health.record_stop(&name);
            })
        })
        .collect()
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    /// Collects what the tasks log, to check what an operator would read.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    async fn finished(handles: Vec<JoinHandle<()>>) {
        for handle in handles {
            tokio::time::timeout(Duration::from_secs(10), handle)
                .await
                .expect("the supervisor ends with its task")
                .unwrap();
        }
    }

    /// Current-thread runtime: the spawned tasks log through this thread's
    /// subscriber.
    #[tokio::test]
    async fn a_worker_that_panics_or_returns_is_logged_as_an_error_and_recorded() {
        let logs = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer({
                let logs = logs.clone();
                move || logs.clone()
            })
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let (stop_tx, stop) = watch::channel(false);
        let health = WorkerHealth::new();
        let (keep_running, mut told_to_stop) = (stop.clone(), stop.clone());
        let handles = supervise(
            vec![
                Task::new("reconciler-0", async {
                    panic!("provisioner state is corrupt");
                }),
                Task::new("retention", async {}),
                Task::new("reports", async move {
                    while !*keep_running.borrow() {
                        told_to_stop.changed().await.unwrap();
                    }
                }),
            ],
            &stop,
            &health,
        );
        let mut handles = handles.into_iter();
        let failing: Vec<_> = handles.by_ref().take(2).collect();
        finished(failing).await;

        let mut stopped = health.stopped();
        stopped.sort();
        assert_eq!(stopped, ["reconciler-0", "retention"]);
        let text = logs.text();
        let errors: Vec<_> = text.lines().filter(|l| l.contains("ERROR")).collect();
        assert_eq!(errors.len(), 2, "{text}");
        for expected in [
            "background worker reconciler-0 panicked: provisioner state is corrupt",
            "background worker retention ended while the process is running",
        ] {
            assert!(
                errors.iter().any(|l| l.contains(expected)),
                "{expected}: {text}"
            );
        }

        // Asked to stop, a worker that ends is no failure.
        stop_tx.send(true).unwrap();
        finished(handles.collect()).await;
        assert_eq!(health.stopped().len(), 2, "{:?}", health.stopped());
        assert_eq!(
            logs.text().lines().filter(|l| l.contains("ERROR")).count(),
            2
        );
    }
}
