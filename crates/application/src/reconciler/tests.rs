//! The reconciler's steps against mocked ports: a store that keeps what
//! one step writes for the next.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ephemera_domain::{
    Deployment, DeploymentRecord, DeploymentStatus, Environment, EnvironmentId, EnvironmentRecord,
    EnvironmentStatus, PreviewUrlTemplate,
};

use super::{Reconciler, ReconcilerConfig, RunOutcome};
use crate::fixtures::{at, deployment_record, environment_record};
use crate::ports::{
    MockClock, MockProvisioner, MockWorkQueue, MockWorkTx, ProvisionFailure, Provisioned, Teardown,
    WorkTx,
};

pub(super) fn environment(status: EnvironmentStatus, work_attempts: u32) -> Environment {
    Environment::rehydrate(EnvironmentRecord {
        status,
        work_attempts,
        work_due_at: Some(at(0)),
        ..environment_record(9, "octo/web", 4)
    })
}

pub(super) fn deployment(status: DeploymentStatus) -> Deployment {
    Deployment::rehydrate(DeploymentRecord {
        status,
        ..deployment_record(5, EnvironmentId::new(9).unwrap(), 'c')
    })
}

pub(super) type Store = Arc<Mutex<(Environment, Deployment)>>;

/// A transaction over one environment and one deployment, kept in
/// `store` so that what one step writes the next step reads.
pub(super) fn tx(store: &Store) -> MockWorkTx {
    let mut tx = MockWorkTx::new();
    let s = store.clone();
    tx.expect_environment()
        .returning(move |_| Ok(Some(s.lock().unwrap().0.clone())));
    let s = store.clone();
    tx.expect_active_deployment().returning(move |_| {
        let d = s.lock().unwrap().1.clone();
        Ok((!d.status().is_finished()).then_some(d))
    });
    let s = store.clone();
    tx.expect_deployment()
        .returning(move |_| Ok(Some(s.lock().unwrap().1.clone())));
    tx.expect_newer_queued().returning(|_, _| Ok(false));
    tx.expect_holds_lease().returning(|_, _| Ok(true));
    tx.expect_cancel_active_deployments()
        .returning(|_, _, _| Ok(0));
    let s = store.clone();
    tx.expect_update_environment().returning(move |e| {
        s.lock().unwrap().0 = e.clone();
        Ok(())
    });
    let s = store.clone();
    tx.expect_update_deployment().returning(move |d| {
        s.lock().unwrap().1 = d.clone();
        Ok(())
    });
    tx.expect_cancel_queued_deployments()
        .returning(|_, _| Ok(0));
    tx.expect_wake_waiting().returning(|_, _| Ok(()));
    tx.expect_commit().returning(|| Ok(()));
    tx
}

fn reconciler(store: &Store, provisioner: MockProvisioner, max_attempts: u32) -> Reconciler {
    reconciler_with(store, provisioner, max_attempts, |_| {})
}

/// One claim of environment 9 over `store`, at `at(100)`; `more` adds
/// expectations to every transaction.
pub(super) fn reconciler_with(
    store: &Store,
    provisioner: MockProvisioner,
    max_attempts: u32,
    more: impl Fn(&mut MockWorkTx) + Send + Sync + 'static,
) -> Reconciler {
    let mut queue = MockWorkQueue::new();
    queue
        .expect_claim()
        .times(1)
        .returning(|_, _, _| Ok(Some(EnvironmentId::new(9).unwrap())));
    queue.expect_release().times(1).returning(|_, _| Ok(()));
    queue.expect_renew().returning(|_, _, _| Ok(true));
    let s = store.clone();
    queue.expect_begin().returning(move || {
        let mut tx = tx(&s);
        more(&mut tx);
        Ok(Box::new(tx) as Box<dyn WorkTx>)
    });
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(100));
    Reconciler::new(
        Arc::new(queue),
        Arc::new(provisioner),
        Arc::new(clock),
        config(max_attempts),
    )
}

pub(super) fn config(max_attempts: u32) -> ReconcilerConfig {
    ReconcilerConfig {
        worker_id: "test-worker".into(),
        lease: Duration::from_secs(30),
        max_attempts,
        retry_base: Duration::from_secs(10),
        retry_max: Duration::from_secs(60),
        poll: Duration::from_millis(10),
        preview_url: PreviewUrlTemplate::default(),
    }
}

fn provisioner(result: Result<Provisioned, ProvisionFailure>) -> MockProvisioner {
    let mut p = MockProvisioner::new();
    p.expect_name().return_const("mock");
    p.expect_provision().times(1).returning(move |req| {
        assert_eq!(
            req.preview_url,
            format!("http://{}.preview.localhost", req.namespace)
        );
        result.clone()
    });
    p
}

#[tokio::test]
async fn nothing_due_is_idle() {
    let mut queue = MockWorkQueue::new();
    queue.expect_claim().returning(|_, _, _| Ok(None));
    queue.expect_begin().never();
    let mut clock = MockClock::new();
    clock.expect_now().returning(|| at(0));
    let r = Reconciler::new(
        Arc::new(queue),
        Arc::new(MockProvisioner::new()),
        Arc::new(clock),
        config(1),
    );
    assert_eq!(r.run_once().await.unwrap(), RunOutcome::Idle);
}

#[tokio::test]
async fn a_pending_environment_is_provisioned_and_ready() {
    let store: Store = Arc::new(Mutex::new((
        environment(EnvironmentStatus::Pending, 0),
        deployment(DeploymentStatus::Queued),
    )));
    let p = provisioner(Ok(Provisioned {
        url: "https://x.example".into(),
        logs: "created".into(),
    }));

    let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

    assert_eq!(outcome, RunOutcome::Ready(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Ready);
    assert_eq!(env.environment_url(), Some("https://x.example"));
    assert_eq!(
        (env.work_due_at(), env.last_deployed_at()),
        (None, Some(at(100)))
    );
    assert_eq!(dep.status(), DeploymentStatus::Success);
    assert!(
        dep.logs()
            .contains("attempt 1 by test-worker: mock deploying ccccccc"),
        "{}",
        dep.logs()
    );
    assert!(dep.logs().contains("created\n"));
}

#[tokio::test]
async fn a_failed_attempt_is_retried_later() {
    let store: Store = Arc::new(Mutex::new((
        environment(EnvironmentStatus::Pending, 0),
        deployment(DeploymentStatus::Queued),
    )));
    let p = provisioner(Err(ProvisionFailure {
        message: "quota exceeded".into(),
        logs: "trying".into(),
    }));

    let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

    let RunOutcome::Retrying { attempt, after, .. } = outcome else {
        panic!("expected a retry, got {outcome:?}");
    };
    assert_eq!(attempt, 1);
    assert!(
        after >= Duration::from_secs(8) && after <= Duration::from_secs(12),
        "{after:?}"
    );
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(
        env.status(),
        EnvironmentStatus::Provisioning,
        "still on its way"
    );
    assert_eq!(env.work_attempts(), 1);
    assert_eq!(env.error_message(), Some("quota exceeded"));
    assert!(env.work_due_at().unwrap() > at(100));
    assert_eq!(dep.status(), DeploymentStatus::InProgress);
}

#[tokio::test]
async fn the_last_attempt_fails_the_environment_and_keeps_the_logs() {
    let env = environment(EnvironmentStatus::Provisioning, 2);
    let dep = deployment(DeploymentStatus::InProgress);
    let store: Store = Arc::new(Mutex::new((env, dep)));
    let p = provisioner(Err(ProvisionFailure {
        message: "image not found".into(),
        logs: "pulling".into(),
    }));

    let outcome = reconciler(&store, p, 3).run_once().await.unwrap();

    assert_eq!(outcome, RunOutcome::Failed(EnvironmentId::new(9).unwrap()));
    let (env, dep) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Failed);
    assert_eq!(env.work_due_at(), None);
    assert_eq!(dep.status(), DeploymentStatus::Failed);
    assert_eq!(dep.error_message(), Some("image not found"));
    assert!(
        dep.logs().contains("pulling") && dep.logs().contains("giving up"),
        "{}",
        dep.logs()
    );
}

#[tokio::test]
async fn a_destroy_under_way_is_rechecked_without_using_up_attempts() {
    let env = environment(EnvironmentStatus::Destroying, 2);
    let dep = deployment(DeploymentStatus::Success);
    let store: Store = Arc::new(Mutex::new((env, dep)));
    let destroyer = |teardown: Teardown| {
        let mut p = MockProvisioner::new();
        p.expect_name().return_const("mock");
        p.expect_destroy()
            .times(1)
            .returning(move |_| Ok(teardown.clone()));
        p
    };
    let id = EnvironmentId::new(9).unwrap();
    let recheck = Duration::from_secs(5);

    // More checks than attempts are left: none of them counts.
    for _ in 0..3 {
        let terminating = destroyer(Teardown::InProgress {
            logs: "namespace terminating".into(),
            recheck,
        });
        let outcome = reconciler(&store, terminating, 3).run_once().await.unwrap();
        assert_eq!(outcome, RunOutcome::DestroyInProgress { id, recheck });
        let (env, _) = store.lock().unwrap().clone();
        assert_eq!(env.status(), EnvironmentStatus::Destroying);
        assert_eq!(env.work_attempts(), 2, "no attempt used up");
        assert_eq!(env.work_due_at(), Some(at(105)));
    }

    let gone = destroyer(Teardown::Gone {
        logs: "namespace gone".into(),
    });
    let outcome = reconciler(&store, gone, 3).run_once().await.unwrap();
    assert_eq!(outcome, RunOutcome::Destroyed(id));
    let (env, _) = store.lock().unwrap().clone();
    assert_eq!(env.status(), EnvironmentStatus::Destroyed);
    assert_eq!((env.work_due_at(), env.work_attempts()), (None, 0));
}

#[test]
fn backoff_doubles_with_jitter_and_is_capped() {
    let r = Reconciler::new(
        Arc::new(MockWorkQueue::new()),
        Arc::new(MockProvisioner::new()),
        Arc::new(MockClock::new()),
        config(9),
    );
    let id = EnvironmentId::new(9).unwrap();
    for (attempt, base) in [(1, 10.0), (2, 20.0), (3, 40.0), (4, 60.0), (8, 60.0)] {
        let after = r.backoff(id, attempt).as_secs_f64();
        assert!(
            after >= base * 0.8 && after <= base * 1.2,
            "attempt {attempt}: {after}"
        );
    }
    let spread: std::collections::HashSet<_> = (1..50)
        .map(|n| r.backoff(EnvironmentId::new(n).unwrap(), 1).as_millis())
        .collect();
    assert!(spread.len() > 10, "environments do not retry in lockstep");
}
