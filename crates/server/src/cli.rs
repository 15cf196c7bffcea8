//! `ephemera [serve]`, `worker`, `migrate up | down [-n N] | status`,
//! `openapi` and `webhook send`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use migration::MigrateCommand;

use crate::config::{self, Env};
use crate::{Application, Settings, send, startup, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "ephemera",
    version,
    about = "Preview environments for every pull request"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the API and run the workers
    /// (the default).
    Serve {
        /// Serve HTTP only; leave the work to `ephemera worker` processes.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run workers only (no HTTP), e.g. as extra replicas.
    Worker,
    /// Apply, roll back or list database migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Print the OpenAPI 3 description of the REST API (also served at
    /// /api/openapi.json).
    Openapi,
    /// Work with GitHub webhook deliveries.
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Sign and send a delivery the way GitHub does, and print the answer.
    Send(send::SendArgs),
}

/// Parses the command line, runs it, and turns any error into one line on
/// stderr and a non-zero exit.
pub fn main() -> ExitCode {
    // A missing .env is normal; values already in the environment win.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Each command reads only the settings it needs: `migrate` the database,
/// `webhook send` where to send and the secret (unless given as flags),
/// `openapi` nothing.
async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::process();
    match cli.command.unwrap_or(Command::Serve { no_workers: false }) {
        Command::Serve { no_workers } => {
            let settings = Settings::read(&env)?;
            telemetry::init(settings.log_format);
            let app = Application::build(&settings, !no_workers).await?;
            app.run_until_stopped().await
        }
        Command::Worker => {
            let settings = Settings::read(&env)?;
            telemetry::init(settings.log_format);
            startup::run_workers(&settings).await
        }
        Command::Openapi => {
            println!("{}", ephemera_http::openapi_document());
            Ok(())
        }
        Command::Webhook(WebhookCommand::Send(args)) if args.list_examples => {
            print!("{}", send::example_names());
            Ok(())
        }
        Command::Webhook(WebhookCommand::Send(args)) => send::run(args, &env).await,
        Command::Migrate(command) => {
            let db = startup::open_database(&config::database_url(&env)?).await?;
            let out = migration::run(&db, &command).await?;
            print!("{out}");
            db.close().await.ok();
            Ok(())
        }
    }
}
