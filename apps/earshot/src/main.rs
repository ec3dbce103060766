//! `earshot`: the server and the CLI in one binary. See `earshot --help`.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = earshot::cli::Cli::parse();
    earshot::telemetry::init(cli.log_format);
    match earshot::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
