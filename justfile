# ephemera's everyday commands. `just` lists them; `just RECIPE` runs one.
# Install just with `cargo install just`, `pip install rust-just`, or your
# package manager (Debian 13+/Ubuntu 24.04+: `apt install just`). Every
# recipe is a plain command you can also type yourself.

# List the recipes.
default:
    @just --list

# Start the service (migrates first; SQLite ./ephemera.db unless DATABASE_URL says otherwise).
serve:
    cargo run -- serve

# Apply every pending migration.
migrate:
    cargo run -- migrate up

# Roll back the newest N migrations (drops their tables: back up first).
migrate-down n="1":
    cargo run -- migrate down -n {{ n }}

# List every migration and whether it is applied.
migrate-status:
    cargo run -- migrate status

# Run every test (PostgreSQL ones too when TEST_DATABASE_URL is set).
test:
    cargo test --workspace

# Formatting check and clippy, as CI runs them.
lint:
    cargo fmt --all -- --check && cargo clippy --workspace --all-targets -- -D warnings

# Format the code.
fmt:
    cargo fmt --all

# Measure cold start, the HTTP floor, webhook ingest, list reads and memory; writes docs/benchmarks.md.
bench:
    bash bench/run.sh

# GitHub requests per PR lifecycle and per hour of drift repair (1,000 previews, 3 replicas) against a local fake GitHub; writes docs/benchmarks-github.md (folded into docs/benchmarks.md by `just bench`). Needs PostgreSQL.
bench-github:
    cargo build --release --locked -p ephemera-server
    python3 bench/github_budget.py --bin target/release/ephemera

# Push-to-preview latency hop by hop (answer -> provisioner started -> ready -> report landed at a local fake GitHub), 1 and 100 PRs at once, SQLite and PostgreSQL; writes docs/benchmarks-latency.md (`just bench` runs it too).
bench-latency:
    cargo build --release --locked -p ephemera-server
    python3 bench/latency.py --bin target/release/ephemera

# Rebase storm: 200 ready PRs, then 10 pushes each within 2 s, on PostgreSQL with 3 replicas and on SQLite; writes docs/benchmarks-storm.md (`just bench` runs it too).
bench-storm:
    cargo build --release --locked -p ephemera-server -p ephemera-loadgen
    python3 bench/storm.py --bin target/release/ephemera --loadgen target/release/loadgen

# Idle at scale: 10,000 live previews left alone with workers and drift repair on; CPU, RSS and every background query's plan (PostgreSQL EXPLAIN); writes docs/benchmarks-idle.md (`just bench` runs it too). Needs PostgreSQL.
bench-idle:
    cargo build --release --locked -p ephemera-server
    python3 bench/idle.py --bin target/release/ephemera

# Failure drills: kill -9 mid-deploy, replicas exactly-once, PostgreSQL stopped for 10 s (stops the local PostgreSQL!), hostile traffic (DRILLS=hostile runs only that).
drill:
    bash bench/drill.sh

# Fuzz webhook signature verification and payload reading (needs nightly and cargo-fuzz).
fuzz seconds="60":
    cargo +nightly fuzz run webhook -- -max_total_time={{ seconds }}

# Send one of GitHub's example deliveries (`cargo run -- webhook send --list-examples`) to a running service, signed with GITHUB_WEBHOOK_SECRET.
send-webhook example="pull_request.opened":
    cargo run -- webhook send --example {{ quote(example) }}

# The dashboard's pages under load (p50/p99, bytes) with 500 previews on SQLite; writes docs/benchmarks-dashboard.md (folded into docs/benchmarks.md by `just bench`).
bench-dashboard:
    bash bench/dashboard.sh

# Screenshots of the dashboard's pages from its browser tests into docs/dashboard/ (needs Debian's chromium and chromium-driver).
screenshots:
    EPHEMERA_SCREENSHOTS=docs/dashboard cargo test -p ephemera-server --test browser sqlite::

# Build the container image ephemera:dev.
docker-build:
    docker build -f docker/Dockerfile -t ephemera:dev .

# Start PostgreSQL and ephemera with Docker Compose (reads .env if present).
compose-up:
    docker compose -f docker/docker-compose.yml up --build

# Everything CI runs.
ci:
    bash .ci/run
