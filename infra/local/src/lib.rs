//! Charla on one machine: the HTTP handlers of every function on one axum
//! server, and the queue consumers as tasks, wired to the embedded adapters
//! (SQLite, files, the outbox) or to the AWS ones.

mod chat;
mod config;
mod console;
mod consumer;
mod eval;
mod intake;
mod load;
mod media_pipeline;
pub mod meta;
mod replay;
#[cfg(feature = "aws")]
mod resources;
mod server;
mod voice;
mod wiring;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use config::Settings;

#[derive(Debug, Parser)]
#[command(name = "local", about = "Charla on one machine", version)]
pub struct Cli {
    /// Address to serve on.
    #[arg(
        long,
        env = "CHARLA_LISTEN",
        default_value = "127.0.0.1:3000",
        global = true
    )]
    pub listen: SocketAddr,
    /// Where the SQLite databases, the outbox and archived payloads live.
    #[arg(
        long,
        env = "CHARLA_DATA_DIR",
        default_value = ".charla",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Every function on its own AWS wiring (DynamoDB, SQS, S3, Secrets
    /// Manager), from the variables template.yaml gives the functions, e.g. on
    /// moto's server through AWS_ENDPOINT_URL (a build with `--features aws`).
    #[arg(long, env = "CHARLA_AWS", global = true)]
    pub aws: bool,
    /// With --aws: create the table, queues and bucket first (for emulators).
    #[arg(long, global = true)]
    pub create_resources: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve (the default).
    Serve,
    /// Chat with a running server as a WhatsApp user would.
    Chat(chat::ChatArgs),
    /// Send signed webhooks at a running server and report throughput and
    /// webhook-to-answer latency.
    Load(load::LoadArgs),
    /// Run YAML suites of scripted conversations against the whole pipeline
    /// in this process, and report what differed (exit code 1 on failure).
    Eval(eval::EvalArgs),
    /// Post the payloads kept in quarantine (in --data-dir) to a running
    /// server again, after a fix; duplicates are dropped by the server.
    Replay(replay::ReplayArgs),
}

pub async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Some(Command::Chat(args)) => chat::run(args).await,
        Some(Command::Load(args)) => load::run(args).await,
        Some(Command::Eval(args)) => eval::run(args).await,
        Some(Command::Replay(args)) => replay::run(args, cli.data_dir).await,
        None | Some(Command::Serve) => {
            let settings =
                Settings::from_env(cli.listen, cli.data_dir, cli.aws, cli.create_resources)?;
            server::serve(settings).await
        }
    }
}
