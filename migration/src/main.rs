//! `cargo run -p migration -- up | down [-n N] | status` against DATABASE_URL.

use anyhow::Context as _;
use clap::Parser;
use migration::MigrateCommand;
use sea_orm_migration::sea_orm::Database;

#[derive(Debug, Parser)]
#[command(
    name = "migration",
    about = "Apply or roll back ephemera's database migrations"
)]
struct Cli {
    /// Database to migrate.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://ephemera.db?mode=rwc"
    )]
    database_url: String,
    #[command(subcommand)]
    command: MigrateCommand,
}

#[tokio::main]
async fn main() {
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(out) => print!("{out}"),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<String> {
    let db = Database::connect(&cli.database_url)
        .await
        .context("DATABASE_URL: cannot connect")?;
    migration::run(&db, &cli.command).await
}
