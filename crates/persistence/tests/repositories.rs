//! The repository adapters against real databases: SQLite always,
//! PostgreSQL when TEST_DATABASE_URL is set (always in CI).

#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use ephemera_application::ports::{
    DeploymentRepository, EnvironmentFilter, EnvironmentRepository, InstalledRepositories,
    RepositoryError,
};
use ephemera_application::{Cursor, PageRequest};
use ephemera_domain::{
    CommitSha, DeploymentStatus, EnvironmentStatus, GithubUser, GithubUserId, InstallationId,
    InstallationStatus, InstalledRepository as Repo, NewDeployment, NewEnvironment, Owner,
    PrNumber, RepositoryFullName, StatusChange,
};
use ephemera_persistence::testing::TestDatabase;
use ephemera_persistence::{
    SqlDeploymentRepository, SqlEnvironmentRepository, SqlInstallationRepository,
    SqlUserRepository, backend_tests,
};
use sea_orm::{ConnectionTrait, Statement};

fn t0() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(1_750_000_000, 123_456_000).unwrap()
}

fn new_env(repo: &str, pr: i64) -> NewEnvironment {
    NewEnvironment {
        repository: RepositoryFullName::parse(repo).unwrap(),
        repository_id: None,
        pr_number: PrNumber::new(pr).unwrap(),
        pr_title: format!("Change #{pr}"),
        branch_name: format!("feature-{pr}"),
        base_ref: "main".into(),
        commit_sha: CommitSha::parse(&format!("{:040x}", pr)).unwrap(),
        installation_id: Some(InstallationId::new(77).unwrap()),
        owner: Some(Owner {
            github_id: GithubUserId::new(21031067).unwrap(),
            login: "Codertocat".into(),
        }),
        pr_updated_at: Some(t0()),
        is_fork: true,
        draft: false,
        labels: vec!["preview".into(), "Bug fix".into()],
    }
}

async fn inserted_environment_reads_back_identically(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let created = repo
        .insert(new_env("Codertocat/Hello-World", 2), t0())
        .await
        .unwrap();

    assert_eq!(created.status(), EnvironmentStatus::Pending);
    assert!(created.namespace.as_str().starts_with("pr-2-hello-world-"));
    assert_eq!(created.created_at, t0());
    assert_eq!(repo.get(created.id).await.unwrap(), Some(created.clone()));
    assert_eq!(
        repo.get_by_namespace(&created.namespace).await.unwrap(),
        Some(created)
    );
}

async fn a_second_environment_for_one_pr_is_a_conflict(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    repo.insert(new_env("octo/web", 5), t0()).await.unwrap();
    let err = repo.insert(new_env("octo/web", 5), t0()).await.unwrap_err();
    assert!(matches!(err, RepositoryError::Conflict(_)), "{err:?}");
    // Same repo name and PR under another owner is a different environment.
    let other = repo.insert(new_env("other/web", 5), t0()).await.unwrap();
    assert_eq!(other.pr_number.get(), 5);
}

async fn update_stores_lifecycle_changes(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let mut env = repo.insert(new_env("octo/web", 1), t0()).await.unwrap();
    let later = t0() + Duration::minutes(5);
    env.begin_deploy(later).unwrap();
    env.mark_ready("http://pr-1.preview.localhost".into(), later)
        .unwrap();
    repo.update(&env).await.unwrap();

    assert_eq!(repo.get(env.id).await.unwrap(), Some(env));
}

/// Each stored change of status is kept, newest first, with its reason;
/// an update that keeps the status adds nothing.
async fn status_changes_are_kept_as_history(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let mut env = repo.insert(new_env("octo/web", 1), t0()).await.unwrap();
    let at = |minutes| t0() + Duration::minutes(minutes);
    env.begin_deploy(at(1)).unwrap();
    repo.update(&env).await.unwrap();
    env.fail(
        "image not found\nmore".into(),
        "deployment failed after 3 attempts".into(),
        at(2),
    )
    .unwrap();
    repo.update(&env).await.unwrap();
    // Another field changes, the status does not.
    env.pr_title = "Renamed".into();
    repo.update(&env).await.unwrap();
    env.begin_destroy("PR closed", at(3)).unwrap();
    repo.update(&env).await.unwrap();

    let change = |status, reason: Option<&str>, minutes| StatusChange {
        status,
        reason: reason.map(str::to_owned),
        at: at(minutes),
    };
    assert_eq!(
        repo.status_history(env.id, 10).await.unwrap(),
        [
            change(EnvironmentStatus::Destroying, Some("PR closed"), 3),
            change(
                EnvironmentStatus::Failed,
                Some("deployment failed after 3 attempts: image not found\nmore"),
                2,
            ),
            change(EnvironmentStatus::Provisioning, None, 1),
            change(EnvironmentStatus::Pending, None, 0),
        ]
    );
    assert_eq!(repo.status_history(env.id, 2).await.unwrap().len(), 2);
    // Another environment's history is its own.
    let other = repo.insert(new_env("octo/web", 2), t0()).await.unwrap();
    assert_eq!(repo.status_history(other.id, 10).await.unwrap().len(), 1);
}

async fn list_filters_and_pages_newest_first(t: TestDatabase) {
    let repo = SqlEnvironmentRepository::new(t.db.clone());
    let mut ids = Vec::new();
    for pr in 1..=7 {
        let name = if pr % 2 == 0 { "octo/api" } else { "octo/web" };
        let mut env = repo.insert(new_env(name, pr), t0()).await.unwrap();
        if pr == 3 {
            env.begin_destroy("PR closed", t0()).unwrap();
            env.mark_destroyed(t0()).unwrap();
            repo.update(&env).await.unwrap();
        }
        ids.push(env.id.get());
    }
    let all = EnvironmentFilter::default();
    let list = |filter: EnvironmentFilter, page: PageRequest| {
        let repo = repo.clone();
        async move {
            repo.list(&filter, page)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.pr_number.get())
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(
        list(all.clone(), PageRequest::default()).await,
        vec![7, 6, 5, 4, 3, 2, 1]
    );
    // limit 3 fetches 4 rows: one more tells whether there is a next page.
    let first = PageRequest::parse(Some(3), None).unwrap();
    assert_eq!(list(all.clone(), first).await, vec![7, 6, 5, 4]);
    let after_five = PageRequest {
        limit: 3,
        after: Some(Cursor { before_id: ids[4] }),
    };
    assert_eq!(list(all.clone(), after_five).await, vec![4, 3, 2, 1]);

    let web = EnvironmentFilter {
        repository: Some(RepositoryFullName::parse("octo/web").unwrap()),
        ..Default::default()
    };
    assert_eq!(list(web, PageRequest::default()).await, vec![7, 5, 3, 1]);
    let active = EnvironmentFilter {
        active_only: true,
        ..Default::default()
    };
    assert_eq!(
        list(active, PageRequest::default()).await,
        vec![7, 6, 5, 4, 2, 1]
    );
    let destroyed = EnvironmentFilter {
        status: Some(EnvironmentStatus::Destroyed),
        ..Default::default()
    };
    assert_eq!(list(destroyed, PageRequest::default()).await, vec![3]);
    let pr_four = EnvironmentFilter {
        pr_number: Some(PrNumber::new(4).unwrap()),
        ..Default::default()
    };
    assert_eq!(list(pr_four, PageRequest::default()).await, vec![4]);
}

async fn deployments_are_history_of_their_environment(t: TestDatabase) {
    let envs = SqlEnvironmentRepository::new(t.db.clone());
    let deployments = SqlDeploymentRepository::new(t.db.clone());
    let web = envs.insert(new_env("octo/web", 1), t0()).await.unwrap();
    let api = envs.insert(new_env("octo/api", 1), t0()).await.unwrap();
    let mut made = Vec::new();
    for i in 0..3 {
        let d = deployments
            .insert(
                NewDeployment {
                    delivery_id: None,
                    environment_id: web.id,
                    commit_sha: CommitSha::parse(&format!("{i:040x}")).unwrap(),
                    commit_message: Some(format!("commit {i}")),
                },
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(d.status(), DeploymentStatus::Queued);
        made.push(d);
    }
    deployments
        .insert(
            NewDeployment {
                delivery_id: None,
                environment_id: api.id,
                commit_sha: CommitSha::parse(&"f".repeat(40)).unwrap(),
                commit_message: None,
            },
            t0(),
        )
        .await
        .unwrap();

    let history = deployments
        .list_for_environment(web.id, PageRequest::default())
        .await
        .unwrap();
    let messages: Vec<_> = history
        .iter()
        .map(|d| d.commit_message.clone().unwrap())
        .collect();
    assert_eq!(messages, vec!["commit 2", "commit 1", "commit 0"]);

    let mut running = made[2].clone();
    running.start(t0()).unwrap();
    running.append_log("applied 3 manifests");
    running
        .succeed(
            "http://pr-1.preview.localhost",
            t0() + Duration::seconds(30),
        )
        .unwrap();
    deployments.update(&running).await.unwrap();
    assert_eq!(deployments.get(running.id).await.unwrap(), Some(running));
}

async fn deleting_an_environment_removes_its_deployments(t: TestDatabase) {
    let envs = SqlEnvironmentRepository::new(t.db.clone());
    let deployments = SqlDeploymentRepository::new(t.db.clone());
    let env = envs.insert(new_env("octo/web", 1), t0()).await.unwrap();
    let d = deployments
        .insert(
            NewDeployment {
                delivery_id: None,
                environment_id: env.id,
                commit_sha: env.commit_sha.clone(),
                commit_message: None,
            },
            t0(),
        )
        .await
        .unwrap();
    t.db.execute_raw(Statement::from_string(
        t.db.get_database_backend(),
        format!("DELETE FROM environments WHERE id = {}", env.id),
    ))
    .await
    .unwrap();
    assert_eq!(deployments.get(d.id).await.unwrap(), None);
}

async fn corrupt_rows_are_errors_not_panics(t: TestDatabase) {
    let envs = SqlEnvironmentRepository::new(t.db.clone());
    let env = envs.insert(new_env("octo/web", 1), t0()).await.unwrap();
    t.db.execute_raw(Statement::from_string(
        t.db.get_database_backend(),
        format!(
            "UPDATE environments SET status = 'exploded' WHERE id = {}",
            env.id
        ),
    ))
    .await
    .unwrap();
    let err = envs.get(env.id).await.unwrap_err();
    assert!(
        err.to_string().contains("corrupt row") && err.to_string().contains("exploded"),
        "{err}"
    );
}

async fn users_are_upserted_by_github_id(t: TestDatabase) {
    let users = SqlUserRepository::new(t.db.clone());
    let id = GithubUserId::new(21031067).unwrap();
    let first = users
        .upsert(
            GithubUser {
                github_id: id,
                login: "Codertocat".into(),
                email: Some("octocat@github.com".into()),
                avatar_url: Some("https://avatars.example/u/1".into()),
            },
            t0(),
        )
        .await
        .unwrap();
    let renamed = users
        .upsert(
            GithubUser {
                github_id: id,
                login: "Codertocat2".into(),
                email: None,
                avatar_url: None,
            },
            t0() + Duration::hours(1),
        )
        .await
        .unwrap();

    assert_eq!(renamed.id, first.id);
    assert_eq!(renamed.login, "Codertocat2");
    assert_eq!(
        renamed.email.as_deref(),
        Some("octocat@github.com"),
        "email kept"
    );
    assert_eq!(renamed.created_at, t0());
    assert_eq!(renamed.updated_at, t0() + Duration::hours(1));
    assert!(renamed.is_active);

    // The same user said again (a burst of one sender's deliveries): no
    // write, so no transaction waits on the row.
    let again = users
        .upsert(
            GithubUser {
                github_id: id,
                login: "Codertocat2".into(),
                email: None,
                avatar_url: Some("https://avatars.example/u/1".into()),
            },
            t0() + Duration::hours(2),
        )
        .await
        .unwrap();
    assert_eq!(again, renamed, "nothing rewritten");
}

async fn installations_keep_their_repositories(t: TestDatabase) {
    let installations = SqlInstallationRepository::new(t.db.clone());
    let id = InstallationId::new(2).unwrap();
    let repo = |github_id, name: &str| Repo {
        github_id,
        full_name: RepositoryFullName::parse(name).unwrap(),
    };
    installations
        .upsert(id, "octocat".into(), InstallationStatus::Active, t0())
        .await
        .unwrap();
    installations
        .add_repositories(id, vec![repo(1, "octocat/a"), repo(2, "octocat/b")])
        .await
        .unwrap();
    installations
        .add_repositories(id, vec![repo(2, "octocat/b-renamed")])
        .await
        .unwrap();
    installations
        .remove_repositories(id, vec![1])
        .await
        .unwrap();
    // Found as GitHub finds it, whatever the case.
    let find = |name: &str| {
        let name = RepositoryFullName::parse(name).unwrap();
        let installations = installations.clone();
        async move { installations.installation_of(&name).await.unwrap() }
    };
    assert_eq!(find("OctoCat/B-Renamed").await, Some(id));
    assert_eq!(find("octocat/a").await, None, "removed");
    installations
        .upsert(id, "octocat".into(), InstallationStatus::Suspended, t0())
        .await
        .unwrap();
    assert_eq!(find("octocat/b-renamed").await, None, "suspended");

    let got = installations.get(id).await.unwrap().unwrap();
    assert_eq!(got.status, InstallationStatus::Suspended);
    assert_eq!(got.repositories, vec![repo(2, "octocat/b-renamed")]);
    assert_eq!(
        installations
            .get(InstallationId::new(3).unwrap())
            .await
            .unwrap(),
        None
    );
}

backend_tests!(
    status_changes_are_kept_as_history,
    inserted_environment_reads_back_identically,
    a_second_environment_for_one_pr_is_a_conflict,
    update_stores_lifecycle_changes,
    list_filters_and_pages_newest_first,
    deployments_are_history_of_their_environment,
    deleting_an_environment_removes_its_deployments,
    corrupt_rows_are_errors_not_panics,
    users_are_upserted_by_github_id,
    installations_keep_their_repositories,
);
