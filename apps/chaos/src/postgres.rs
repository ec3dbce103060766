//! A PostgreSQL of the harness's own: a fresh cluster (`initdb`, trust auth) in a temporary
//! directory, on its own port and its own unix socket directory, started, restarted and
//! stopped with `pg_ctl`. The machine's shared PostgreSQL is never touched: other tests use
//! it, and restarting it would break them.
//!
//! PostgreSQL refuses to run as root. When the harness runs as root (CI does), every
//! `initdb`/`pg_ctl` runs as the `postgres` OS user through `runuser`, and the cluster's
//! directory belongs to that user.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;

/// How long `pg_ctl` may wait for a start, a restart (crash recovery included) or a stop.
const PG_CTL_WAIT_SECS: &str = "60";

/// How a restart stops the server first (`pg_ctl -m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StopMode {
    /// Like a crash: no shutdown checkpoint, sessions cut; the start runs crash recovery.
    Immediate,
    /// Sessions cut, then a clean shutdown checkpoint.
    Fast,
}

impl StopMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StopMode::Immediate => "immediate",
            StopMode::Fast => "fast",
        }
    }
}

pub struct Cluster {
    bin: PathBuf,
    /// Holds `data/`, `sock/` and `postgres.log`; removed on drop.
    dir: tempfile::TempDir,
    pub port: u16,
    /// `postgres` when the harness runs as root.
    run_as: Option<&'static str>,
    running: bool,
}

/// The `bin` directory of the highest PostgreSQL version under /usr/lib/postgresql.
pub fn find_bin() -> anyhow::Result<(PathBuf, String)> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(Vec<u32>, String)> = std::fs::read_dir(root)
        .with_context(|| {
            format!(
                "no PostgreSQL under {} (install Debian's postgresql, or pass --pg-bin)",
                root.display()
            )
        })?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|v| root.join(v).join("bin/pg_ctl").is_file())
        .filter_map(|v| {
            let key = v
                .split('.')
                .map(|p| p.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, v))
        })
        .collect();
    versions.sort();
    let Some((_, v)) = versions.pop() else {
        bail!(
            "no PostgreSQL version with bin/pg_ctl under {}",
            root.display()
        );
    };
    Ok((root.join(&v).join("bin"), v))
}

/// The uid and gid of an OS user (`id -u`, `id -g`).
fn ids_of(user: &str) -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()
            .context("running id")?;
        if !out.status.success() {
            bail!(
                "there is no OS user {user:?} to run PostgreSQL as (PostgreSQL refuses to run as root)"
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

impl Cluster {
    /// `initdb` into a fresh temporary directory; the cluster listens on 127.0.0.1:`port`
    /// once started.
    pub async fn create(bin: PathBuf, port: u16) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("earshot-chaos-pg-")
            .tempdir()
            .context("creating the cluster's directory")?;
        let run_as = rustix::process::geteuid().is_root().then_some("postgres");
        std::fs::create_dir(dir.path().join("sock"))?;
        if let Some(user) = run_as {
            let (uid, gid) = ids_of(user)?;
            for p in [dir.path().to_owned(), dir.path().join("sock")] {
                std::os::unix::fs::chown(&p, Some(uid), Some(gid))
                    .with_context(|| format!("chown {} to {user}", p.display()))?;
            }
        }
        let cluster = Self {
            bin,
            dir,
            port,
            run_as,
            running: false,
        };
        let data = cluster.data();
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &data,
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            )
            .await?;
        Ok(cluster)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The server's options: its port, its own socket directory, TCP on loopback only.
    fn options(&self) -> String {
        format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().join("sock").display()
        )
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `program` from the PostgreSQL bin directory, as the postgres user when we are root:
    /// what to execute, and its first arguments.
    fn argv(&self, program: &str) -> (OsString, Vec<OsString>) {
        let path = self.bin.join(program).into_os_string();
        match self.run_as {
            Some(user) => (
                "runuser".into(),
                vec!["-u".into(), user.into(), "--".into(), path],
            ),
            None => (path, Vec::new()),
        }
    }

    fn command(&self, program: &str) -> Command {
        let (exe, first) = self.argv(program);
        let mut cmd = Command::new(exe);
        cmd.args(first).stdin(Stdio::null()).kill_on_drop(true);
        cmd
    }

    async fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = self
            .command(program)
            .args(args)
            .output()
            .await
            .with_context(|| format!("running {program} (as {:?})", self.run_as))?;
        if !out.status.success() {
            bail!(
                "{program} {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    pub async fn start(&mut self) -> anyhow::Result<()> {
        let (data, log, opts) = (self.data(), self.log_file(), self.options());
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log.display().to_string(),
                "-o",
                &opts,
                "-w",
                "-t",
                PG_CTL_WAIT_SECS,
                "start",
            ],
        )
        .await
        .with_context(|| format!("see {}", log.display()))?;
        self.running = true;
        Ok(())
    }

    /// Stops the server (`mode`) and starts it again; answers once it accepts connections.
    pub async fn restart(&mut self, mode: StopMode) -> anyhow::Result<()> {
        let (data, log, opts) = (self.data(), self.log_file(), self.options());
        self.run(
            "pg_ctl",
            &[
                "-D",
                &data,
                "-l",
                &log.display().to_string(),
                "-o",
                &opts,
                "-m",
                mode.as_str(),
                "-w",
                "-t",
                PG_CTL_WAIT_SECS,
                "restart",
            ],
        )
        .await
        .with_context(|| format!("see {}", log.display()))
    }

    /// Stops the server at once (nothing is kept anyway).
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let (exe, first) = self.argv("pg_ctl");
        let mut cmd = std::process::Command::new(exe);
        cmd.args(first);
        let stopped = cmd
            .args(["-D", &self.data(), "-m", "immediate", "-w", "stop"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(stopped, Ok(s) if s.success()) {
            eprintln!(
                "chaos: could not stop the PostgreSQL in {} ({stopped:?})",
                self.dir.path().display()
            );
        }
    }

    /// Keeps the cluster's directory (its data and log) after the harness exits.
    pub fn keep(&mut self) -> PathBuf {
        self.dir.disable_cleanup(true);
        self.dir.path().to_owned()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
