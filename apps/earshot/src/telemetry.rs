//! Tracing: human-readable in a terminal, JSON lines otherwise (containers, log shippers).
//! `RUST_LOG` filters as usual; the default is `info` for our crates, `warn` for sqlx.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Pretty when stderr is a terminal, JSON otherwise.
    #[default]
    Auto,
    Pretty,
    Json,
}

pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    // The WebSocket library logs every frame's content at trace level, transcript text
    // included: whatever RUST_LOG says, it is held at info (it logs nothing there), so PII
    // never reaches the log (tests/api/pii_logs.rs runs the server at trace level and scans
    // its output).
    let filter = ["tungstenite=info", "tokio_tungstenite=info"]
        .into_iter()
        .fold(filter, |f, d| {
            f.add_directive(d.parse().expect("a valid directive"))
        });
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests building several apps in one process) is harmless: keep the first.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
