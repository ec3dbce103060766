//! A runtime of its own, at a lower scheduling priority, for the provider's requests.
//!
//! The worker shares the machine with the deterministic path (ingest, the rules, the append,
//! the fan-out), which must never wait for it. Tasks already keep them apart in time; this
//! keeps them apart in CPU: every generation (building the prompt, the HTTP request, its TLS,
//! its connection set-up and, on one host, the kernel's work on both ends of the socket,
//! which Linux charges to the sending thread) runs on a thread whose nice value is raised,
//! so when the cores are contended the scheduler runs ingest first. The trigger loop, the
//! call states and the posts stay on the caller's runtime, so store connections are never
//! opened, and so never driven, by these low-priority threads.
//!
//! Tokio has no task priorities, and a thread's priority is a property of the OS thread: a
//! second runtime whose threads lower their own priority when they start is the smallest
//! thing that does this.

use std::future::Future;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Runs futures on a dedicated runtime at nice `nice` (Linux: per thread; elsewhere the
/// priority is left as it is).
pub struct Background {
    /// `Some` until dropped; taken on drop to shut down without blocking (a runtime must not
    /// be dropped inside another's async context).
    runtime: Option<Runtime>,
}

impl Background {
    /// One worker thread: what it runs is network waits and a little CPU per request.
    pub fn new(nice: i32) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("earshot-assist")
            .enable_all()
            .on_thread_start(move || lower_priority(nice))
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` there. Dropping the returned future aborts the task (a cancelled reply
    /// drops its HTTP request); `None` if the task panicked.
    pub fn run<F>(&self, fut: F) -> impl Future<Output = Option<F::Output>> + use<F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self
            .runtime
            .as_ref()
            .expect("the runtime lives as long as self")
            .spawn(fut);
        let guard = AbortOnDrop(handle);
        async move {
            let mut guard = guard;
            match (&mut guard.0).await {
                Ok(out) => Some(out),
                Err(e) => {
                    tracing::error!(error = %e, "assist: a generation task failed");
                    None
                }
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    use rustix::process::{getpriority_process, setpriority_process};
    // Linux applies PRIO_PROCESS with a thread id to that one thread.
    let tid = Some(rustix::thread::gettid());
    // Only ever lower the priority: a process started at a higher nice keeps it.
    if getpriority_process(tid).is_ok_and(|current| current >= nice) {
        return;
    }
    if let Err(e) = setpriority_process(tid, nice) {
        tracing::warn!(nice, error = %e, "assist: cannot lower the generation thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[tokio::test]
    async fn runs_at_the_lower_priority_and_aborts_what_is_dropped() {
        let bg = Background::new(7).unwrap();
        #[cfg(target_os = "linux")]
        {
            let base = own_nice();
            let there = bg.run(async { own_nice() }).await.unwrap();
            assert_eq!(there, base.max(7), "the generation thread's nice value");
        }
        // A dropped run aborts its task: the sender inside is dropped, not kept forever.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let pending = bg.run(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(pending);
        assert!(rx.await.is_err(), "the aborted task dropped its sender");
        // A panic is reported as None, not propagated.
        assert!(bg.run(async { panic!("boom") }).await.is_none());
        drop(bg);
    }
}
