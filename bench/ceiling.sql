-- The ceiling for ephemera's ingest path, for pgbench (-M prepared): the
-- statements one pull_request.opened delivery for a new PR sent when issue
-- 17 was filed, as one transaction: the delivery log row entered, then
-- updated with its outcome; the author upserted; the PR's environment
-- looked up and locked, the installation read, the environment, its first
-- status-history row (issue 16) and its deployment inserted. ephemera now
-- sends fewer (the log row is written once, with its outcome; an unchanged
-- author is only read), which is how it can beat this ceiling.
\set n random(1, 2000000000)
\set d random(1, 2000000000)
BEGIN;
SELECT outcome FROM webhook_deliveries WHERE delivery_id = 'pgbench-' || :d || '-' || :client_id OR body_sha256 = 'pgbench-' || :d LIMIT 2;
INSERT INTO webhook_deliveries (delivery_id, event, action, repository_full_name, installation_id, outcome, reason, attempts, received_at, updated_at, body_sha256)
  VALUES ('pgbench-' || :d || '-' || :client_id, 'pull_request', 'opened', 'pgbench/repo', 1, 'failed', 'being applied', 1, now(), now(), 'pgbench-' || :d);
INSERT INTO users (github_id, github_login, email, avatar_url, is_active, created_at, updated_at)
  VALUES (21031067, 'Codertocat', NULL, NULL, true, now(), now())
  ON CONFLICT (github_id) DO UPDATE SET github_login = excluded.github_login, updated_at = excluded.updated_at, is_active = excluded.is_active,
    email = COALESCE(excluded.email, users.email), avatar_url = COALESCE(excluded.avatar_url, users.avatar_url);
SELECT id FROM environments WHERE repository_id = 4242 AND pr_number = :n FOR UPDATE;
SELECT status FROM installations WHERE id = 1;
INSERT INTO environments (repository_full_name, repository_name, repository_id, pr_number, pr_title, branch_name, commit_sha, namespace, status, installation_id, owner_github_id, owner_login, pr_updated_at, created_at, updated_at, work_due_at, work_attempts)
  VALUES ('pgbench/repo', 'repo', 4242, :n, 'Update the README', 'changes', 'ec26c3e57ca3a959ca5aad62de7213c562f8c821', 'pr-' || :n || '-pgbench', 'pending', 1, 21031067, 'Codertocat', now(), now(), now(), now(), 0);
INSERT INTO environment_status_changes (environment_id, status, reason, changed_at)
  VALUES (currval('environments_id_seq'), 'pending', NULL, now());
INSERT INTO deployments (environment_id, commit_sha, status, logs, created_at, updated_at)
  VALUES (currval('environments_id_seq'), 'ec26c3e57ca3a959ca5aad62de7213c562f8c821', 'queued', '', now(), now());
UPDATE webhook_deliveries SET outcome = 'applied', reason = 'environment created', updated_at = now() WHERE delivery_id = 'pgbench-' || :d || '-' || :client_id;
COMMIT;
