//! The `earshot serve` process under test: started on a fixed port with the harness's
//! PostgreSQL, killed with SIGKILL (no shutdown of any kind: sockets reset by the kernel,
//! requests in flight lost, the assist worker's checkpoint wherever it was) and started
//! again on the same port. Each start's output goes to its own files in the work directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// How long a start may take to print its address (it migrates the store first).
const STARTUP: Duration = Duration::from_secs(60);
/// How long a SIGTERM may take before the process is killed.
const STOPPING: Duration = Duration::from_secs(20);

pub struct Server {
    bin: PathBuf,
    pub port: u16,
    database_url: String,
    logs: PathBuf,
    child: Option<Child>,
    /// Starts so far (the first one prints the admin token).
    pub starts: u32,
}

fn is_token(s: &str) -> bool {
    s.len() == 44 && s.starts_with("esk_") && s[4..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl Server {
    pub fn new(bin: PathBuf, port: u16, database_url: String, logs: &Path) -> Self {
        Self {
            bin,
            port,
            database_url,
            logs: logs.to_owned(),
            child: None,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Starts the server and waits until it listens; answers the admin token when this start
    /// created the tenant (the first, on an empty database).
    pub async fn start(&mut self) -> anyhow::Result<Option<String>> {
        self.starts += 1;
        let n = self.starts;
        let stderr = std::fs::File::create(self.logs.join(format!("server-{n}.stderr.log")))?;
        let mut child = Command::new(&self.bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", self.port)])
            .env("DATABASE_URL", &self.database_url)
            .env("EARSHOT_LOG_FORMAT", "json")
            .env("EARSHOT_DATA_DIR", self.logs.join("data"))
            .env_remove("EARSHOT_LISTEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        let stdout = child.stdout.take().expect("piped");
        self.child = Some(child);
        let mut lines = BufReader::new(stdout).lines();
        let mut out =
            tokio::fs::File::create(self.logs.join(format!("server-{n}.stdout.log"))).await?;
        let deadline = tokio::time::Instant::now() + STARTUP;
        let mut listening = false;
        let mut token = None;
        // The address comes first; on a first start the token follows, then a line naming
        // the API docs.
        loop {
            let line = match tokio::time::timeout_at(deadline, lines.next_line()).await {
                Ok(Ok(Some(l))) => l,
                Ok(Ok(None)) | Ok(Err(_)) => {
                    let status = self.wait_exit().await;
                    bail!(
                        "the server (start {n}) exited before it was ready ({status}); see {}",
                        self.logs.join(format!("server-{n}.stderr.log")).display()
                    );
                }
                Err(_) => bail!(
                    "the server (start {n}) was not ready within {} s",
                    STARTUP.as_secs()
                ),
            };
            // The token is a secret even here: it is not written to the log file.
            if is_token(line.trim()) {
                token = Some(line.trim().to_owned());
                out.write_all(b"    esk_(not written)\n").await?;
                continue;
            }
            out.write_all(format!("{line}\n").as_bytes()).await?;
            if line.starts_with("earshot listening on http://") {
                listening = true;
                if n > 1 {
                    break;
                }
            }
            if listening && (token.is_some() && line.contains("API docs")) {
                break;
            }
        }
        // The rest of its output, kept for a post-mortem.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = out.write_all(format!("{line}\n").as_bytes()).await;
            }
        });
        Ok(token)
    }

    async fn wait_exit(&mut self) -> String {
        match self.child.as_mut() {
            Some(c) => match tokio::time::timeout(Duration::from_secs(5), c.wait()).await {
                Ok(Ok(s)) => s.to_string(),
                Ok(Err(e)) => e.to_string(),
                Err(_) => "still running".into(),
            },
            None => "not started".into(),
        }
    }

    /// SIGKILL, and waits until the process is gone.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("the server is not running");
        };
        // tokio's kill is SIGKILL on Unix.
        child.start_kill().context("SIGKILL")?;
        child.wait().await?;
        Ok(())
    }

    /// SIGTERM (a graceful shutdown), SIGKILL if it takes too long; answers how it ended.
    pub async fn stop(&mut self) -> anyhow::Result<String> {
        let Some(mut child) = self.child.take() else {
            return Ok("not running".into());
        };
        if let Some(pid) = child
            .id()
            .and_then(|p| rustix::process::Pid::from_raw(p as i32))
        {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).context("SIGTERM")?;
        }
        match tokio::time::timeout(STOPPING, child.wait()).await {
            Ok(s) => Ok(s?.to_string()),
            Err(_) => {
                child.start_kill()?;
                child.wait().await?;
                Ok(format!(
                    "killed: no exit within {} s of SIGTERM",
                    STOPPING.as_secs()
                ))
            }
        }
    }
}
