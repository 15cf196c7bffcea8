//! The command provisioner with real shell scripts.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use ephemera_application::ports::{ProvisionFailure, ProvisionRequest, Provisioned, Provisioner};
use ephemera_provisioner::{
    CommandConfig, CommandProvisioner, PassEnv, PreviewUrlPattern, SleepCommands,
};

/// The shared request, for a command provisioner with no installation and
/// a templated preview URL.
fn request() -> ProvisionRequest {
    ProvisionRequest {
        branch: "feature/x".into(),
        installation_id: None,
        preview_url: "http://templated.example".into(),
        ..support::request()
    }
}

fn config(provision: &str, destroy: &str, timeout: Duration) -> CommandConfig {
    CommandConfig {
        provision: provision.into(),
        destroy: destroy.into(),
        sleep: None,
        timeout,
        max_log_bytes: 64 * 1024,
        pass_env: PassEnv::default(),
        url_pattern: None,
    }
}

/// What provisioning the shared request with `script` comes to within ten
/// seconds.
async fn provision(script: &str) -> Result<Provisioned, ProvisionFailure> {
    provisioner(script, "true", Duration::from_secs(10))
        .provision(&request())
        .await
}

fn provisioner(provision: &str, destroy: &str, timeout: Duration) -> CommandProvisioner {
    CommandProvisioner::new(config(provision, destroy, timeout))
}

#[tokio::test]
async fn success_passes_the_facts_and_captures_both_streams() {
    let p = provisioner(
        "echo \"ns=$EPHEMERA_NAMESPACE repo=$EPHEMERA_REPOSITORY pr=$EPHEMERA_PR_NUMBER\"; \
         echo \"sha=$EPHEMERA_COMMIT_SHA branch=$EPHEMERA_BRANCH url=$EPHEMERA_ENVIRONMENT_URL\"; \
         echo warming up >&2",
        "true",
        Duration::from_secs(10),
    );
    let req = request();
    let done = p.provision(&req).await.unwrap();
    assert_eq!(done.url, "http://templated.example");
    assert!(
        done.logs
            .contains(&format!("ns={} repo=octo/web pr=7", req.namespace)),
        "{}",
        done.logs
    );
    assert!(done.logs.contains(&format!(
        "sha={} branch=feature/x url=http://templated.example",
        "ab".repeat(20)
    )));
    assert!(done.logs.contains("stderr: warming up"), "{}", done.logs);
}

#[tokio::test]
async fn the_url_comes_from_the_output_file() {
    let done = provision(
        "echo deploying; echo 'url=http://templated.example/app' >> \"$EPHEMERA_OUTPUT\"",
    )
    .await
    .unwrap();
    assert_eq!(done.url, "http://templated.example/app");
}

#[tokio::test]
async fn a_url_line_on_stdout_is_not_trusted() {
    // The PR's own build output can print this line.
    let done = provision("echo EPHEMERA_URL=https://evil.example")
        .await
        .unwrap();
    assert_eq!(done.url, "http://templated.example");
    assert!(
        done.logs
            .contains("ignored an `EPHEMERA_URL=` line on stdout"),
        "{}",
        done.logs
    );
}

#[tokio::test]
async fn a_url_outside_the_preview_hosts_fails_the_deployment() {
    let failure = provision("echo 'url=https://evil.example/login' > \"$EPHEMERA_OUTPUT\"")
        .await
        .unwrap_err();
    assert_eq!(
        failure.message,
        "the provision command reported a preview URL that is not allowed (see the deployment log)"
    );
    assert!(
        !failure.message.contains("evil"),
        "the PR comment shows the message"
    );
    assert!(
        failure.logs.contains(
            "refused the preview URL `https://evil.example/login` from $EPHEMERA_OUTPUT: \
             its host is not `templated.example`"
        ),
        "{}",
        failure.logs
    );
}

#[tokio::test]
async fn a_url_matching_the_operators_pattern_is_accepted() {
    let mut config = config(
        "echo 'url=https://pr-7.preview.example.com/' > \"$EPHEMERA_OUTPUT\"",
        "true",
        Duration::from_secs(10),
    );
    config.url_pattern = Some(PreviewUrlPattern::parse("https://*.preview.example.com/*").unwrap());
    let done = CommandProvisioner::new(config)
        .provision(&request())
        .await
        .unwrap();
    assert_eq!(done.url, "https://pr-7.preview.example.com/");
}

#[tokio::test]
async fn a_non_zero_exit_is_a_failure_with_the_logs() {
    let failure = provision("echo helm says no >&2; exit 3")
        .await
        .unwrap_err();
    assert!(
        failure.message.contains("provision command failed"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains('3'), "{}", failure.message);
    assert!(failure.logs.contains("stderr: helm says no"));
}

#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("survivor");
    // A grandchild that would write the marker if it outlived the kill.
    let script = format!(
        "(sleep 2; touch {}) & echo started; sleep 30",
        marker.display()
    );
    let p = provisioner(&script, "true", Duration::from_millis(500));

    let started = Instant::now();
    let failure = p.provision(&request()).await.unwrap_err();
    assert!(failure.message.contains("timed out"), "{}", failure.message);
    assert!(failure.logs.contains("started"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "did not wait for sleep 30"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !marker.exists(),
        "the background child was killed with its group"
    );
}

#[tokio::test]
async fn destroy_runs_the_destroy_command() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("destroyed");
    let p = provisioner(
        "false",
        &format!(
            "echo \"$EPHEMERA_ACTION $EPHEMERA_NAMESPACE\" > {}",
            record.display()
        ),
        Duration::from_secs(10),
    );
    let req = request();
    p.destroy(&req).await.unwrap();
    let written = std::fs::read_to_string(&record).unwrap();
    assert_eq!(written.trim(), format!("destroy {}", req.namespace));
}

/// A provisioner whose stop and start commands are `stop` and `start`
/// (provision and destroy would fail).
fn sleeper(stop: &str, start: &str) -> CommandProvisioner {
    CommandProvisioner::new(CommandConfig {
        sleep: Some(SleepCommands {
            stop: stop.into(),
            start: start.into(),
        }),
        ..config("false", "false", Duration::from_secs(10))
    })
}

#[tokio::test]
async fn stop_and_start_run_their_commands_with_the_same_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record");
    let line = format!(
        "echo \"$EPHEMERA_ACTION $EPHEMERA_NAMESPACE $EPHEMERA_COMMIT_SHA $EPHEMERA_ENVIRONMENT_URL\" >> {}",
        record.display()
    );
    let p = sleeper(
        &format!("{line}; echo scaled down"),
        &format!("{line}; echo 'url=http://templated.example/woken' >> \"$EPHEMERA_OUTPUT\""),
    );
    assert!(p.can_sleep());
    let req = request();

    let stopped = p.stop(&req).await.unwrap();
    assert_eq!(stopped.logs, "scaled down\n");
    let started = p.start(&req).await.unwrap();
    assert_eq!(started.url, "http://templated.example/woken");

    let sha = "ab".repeat(20);
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        format!(
            "stop {ns} {sha} http://templated.example\n\
             start {ns} {sha} http://templated.example\n",
            ns = req.namespace
        )
    );
}

#[tokio::test]
async fn start_answers_the_templated_url_unless_its_command_reports_an_allowed_one() {
    let started = sleeper("true", "echo woke")
        .start(&request())
        .await
        .unwrap();
    assert_eq!(started.url, "http://templated.example");
    assert_eq!(started.logs, "woke\n");

    let failure = sleeper(
        "true",
        "echo 'url=https://evil.example' > \"$EPHEMERA_OUTPUT\"",
    )
    .start(&request())
    .await
    .unwrap_err();
    assert_eq!(
        failure.message,
        "the start command reported a preview URL that is not allowed (see the deployment log)"
    );
}

#[tokio::test]
async fn a_failing_stop_or_start_command_is_a_failure_with_the_logs() {
    let p = sleeper("echo cannot scale >&2; exit 4", "exit 5");
    let failure = p.stop(&request()).await.unwrap_err();
    assert_eq!(failure.message, "the stop command failed (exit status: 4)");
    assert_eq!(failure.logs, "stderr: cannot scale\n");
    let failure = p.start(&request()).await.unwrap_err();
    assert_eq!(failure.message, "the start command failed (exit status: 5)");
}

#[tokio::test]
async fn without_the_sleep_commands_stop_and_start_say_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let touch = format!("touch {}", ran.display());
    let p = provisioner(&touch, &touch, Duration::from_secs(10));
    assert!(!p.can_sleep());
    let expected = "sleeping previews with EPHEMERA_PROVISIONER=command needs \
                    EPHEMERA_STOP_COMMAND and EPHEMERA_START_COMMAND, and they are not set";
    let failure = p.stop(&request()).await.unwrap_err();
    assert_eq!(failure.message, expected);
    let failure = p.start(&request()).await.unwrap_err();
    assert_eq!(failure.message, expected);
    assert!(!ran.exists(), "neither provision nor destroy stood in");
}

#[tokio::test]
async fn output_is_bounded_to_the_newest_lines() {
    let p = CommandProvisioner::new(CommandConfig {
        provision: "i=0; while [ $i -lt 5000 ]; do echo line $i; i=$((i+1)); done".into(),
        destroy: "true".into(),
        timeout: Duration::from_secs(20),
        max_log_bytes: 1024,
        ..config("", "true", Duration::from_secs(20))
    });
    let done = p.provision(&request()).await.unwrap();
    assert!(done.logs.len() <= 1100, "{}", done.logs.len());
    assert!(done.logs.starts_with("[…"), "{}", &done.logs[..40]);
    assert!(done.logs.ends_with("line 4999\n"));
}

#[tokio::test]
async fn binary_output_and_endless_lines_do_not_break_the_run() {
    let done =
        provision("printf 'caf\\351\\n'; head -c 100000 /dev/zero | tr '\\0' x; echo; echo done")
            .await
            .unwrap();
    assert!(done.logs.contains("caf\u{FFFD}"), "{}", &done.logs[..40]);
    assert!(done.logs.lines().all(|l| l.len() <= 16 * 1024));
    assert!(done.logs.ends_with("done\n"));
}

#[tokio::test]
async fn the_servers_environment_does_not_reach_the_child() {
    // cargo sets CARGO_MANIFEST_DIR for the test process: it stands for
    // whatever else the server's environment holds.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let done = provision("env").await.unwrap();
    assert!(!done.logs.contains("CARGO_MANIFEST_DIR="), "{}", done.logs);
    assert!(done.logs.contains("PATH="), "{}", done.logs);
    assert!(done.logs.contains("EPHEMERA_NAMESPACE="), "{}", done.logs);
}

#[tokio::test]
async fn each_run_has_a_fresh_working_directory_removed_afterwards() {
    let p = provisioner(
        "pwd; ls -A; touch left-behind",
        "true",
        Duration::from_secs(10),
    );
    let first = p.provision(&request()).await.unwrap();
    let second = p.provision(&request()).await.unwrap();
    let dir = |logs: &str| logs.lines().next().unwrap().to_owned();
    let (one, two) = (dir(&first.logs), dir(&second.logs));
    assert_ne!(
        std::path::Path::new(&one),
        std::env::current_dir().unwrap(),
        "not the server's working directory"
    );
    assert_ne!(one, two, "a new directory per run");
    assert!(!second.logs.contains("left-behind"), "{}", second.logs);
    assert!(
        !std::path::Path::new(&one).exists(),
        "removed after the run"
    );
}

#[tokio::test]
async fn only_the_basics_and_named_variables_are_passed_and_never_secrets() {
    let mut config = config("env", "true", Duration::from_secs(10));
    config.pass_env = PassEnv::parse("KUBECONFIG, AWS_PROFILE,UNSET_ONE").unwrap();
    let p = CommandProvisioner::with_host_env(
        config,
        [
            ("PATH", "/usr/bin:/bin"),
            ("LANG", "C.UTF-8"),
            ("KUBECONFIG", "/etc/previews/kubeconfig"),
            ("AWS_PROFILE", "previews"),
            ("AWS_SECRET_ACCESS_KEY", "not-named"),
            ("GITHUB_WEBHOOK_SECRET", "webhook-secret"),
            ("GITHUB_APP_PRIVATE_KEY", "private-key"),
            ("EPHEMERA_API_TOKEN", "api-token"),
            ("DATABASE_URL", "postgres://app:pw@db/eph"),
        ],
    );
    let done = p.provision(&request()).await.unwrap();
    let mut names: Vec<&str> = done
        .logs
        .lines()
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|name| !name.starts_with("EPHEMERA_"))
        .collect();
    names.sort_unstable();
    // sh adds PWD (and may add SHLVL, OLDPWD) itself.
    names.retain(|n| !matches!(*n, "PWD" | "SHLVL" | "OLDPWD" | "_"));
    assert_eq!(names, ["AWS_PROFILE", "KUBECONFIG", "LANG", "PATH"]);
    for secret in ["webhook-secret", "private-key", "api-token", "postgres://"] {
        assert!(
            !done.logs.contains(secret),
            "{secret} leaked: {}",
            done.logs
        );
    }
}

#[test]
fn naming_a_secret_or_a_setting_in_the_pass_through_is_refused() {
    for (raw, expected) in [
        (
            "KUBECONFIG,GITHUB_APP_PRIVATE_KEY",
            "`GITHUB_APP_PRIVATE_KEY` is one of ephemera's own secrets",
        ),
        (
            "DATABASE_URL",
            "`DATABASE_URL` is one of ephemera's own secrets",
        ),
        (
            "EPHEMERA_LISTEN",
            "`EPHEMERA_LISTEN`: ephemera's own EPHEMERA_* settings",
        ),
        (
            "KUBE CONFIG",
            "`KUBE CONFIG` is not an environment variable name",
        ),
    ] {
        let err = PassEnv::parse(raw).unwrap_err();
        assert!(err.starts_with(expected), "{raw}: {err}");
    }
    assert_eq!(
        PassEnv::parse(" A ,B,,A ").unwrap().names(),
        ["A".to_owned(), "B".to_owned()]
    );
}
