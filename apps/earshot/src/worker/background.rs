//! A runtime of its own, at a lower scheduling priority, for the provider's requests.
//!
//! The worker shares the machine with the deterministic path (ingest, the rules, the append,
//! the fan-out), which must never wait for it. Tasks already keep them apart in time; this
//! keeps them apart in CPU: the worker's loop (following the log, folding the calls'
//! states), its jobs (debounce, cancel) and every generation (building the prompt, the HTTP
//! request, its TLS, its connection set-up and, on one host, the kernel's work on both ends
//! of the socket, which Linux charges to the sending thread) run on a thread of a lower
//! priority, so when the cores are contended the scheduler runs ingest first. Two knobs
//! ([`Priority`]): the thread's nice value, and Linux's `SCHED_IDLE` policy. A raised nice
//! value only shrinks the thread's share; the kernel may still let it finish its slice (up
//! to a few ms) before a waking ingest thread gets the core. A `SCHED_IDLE` thread is
//! preempted as soon as any normal thread wakes on its core, but starves while the cores
//! stay busy (the default; `--assist-sched normal` turns it off). The worker's store calls
//! (reads of the log, the checkpoint, the posts) go back to the server's runtime, so store
//! connections are never opened, and so never driven, by this low-priority thread.
//!
//! Tokio has no task priorities, and a thread's priority is a property of the OS thread: a
//! second runtime whose threads lower their own priority when they start is the smallest
//! thing that does this.

use std::future::Future;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The scheduling priority of the generations' thread (Linux only; elsewhere it is left as
/// it is). It is only ever lowered: a process started at a higher nice keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    /// The nice value, 0–19 (0: the process's own).
    pub nice: i32,
    /// Run under `SCHED_IDLE`: preempted by any normal thread that wakes on the core.
    pub idle: bool,
}

/// Runs futures on a dedicated runtime at a lower [`Priority`].
pub struct Background {
    /// `Some` until dropped; taken on drop to shut down without blocking (a runtime must not
    /// be dropped inside another's async context).
    runtime: Option<Runtime>,
}

impl Background {
    /// One worker thread: what it runs is network waits and a little CPU per event and
    /// per request.
    pub fn new(priority: Priority) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("earshot-assist")
            .enable_all()
            .on_thread_start(move || lower_priority(priority))
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` there. Dropping the returned future aborts the task; `None` if the task
    /// panicked.
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
                    tracing::error!(error = %e, "assist: a task of the low-priority runtime failed");
                    None
                }
            }
        }
    }
}

/// The runtime the worker was built on (the server's), where its store calls run: so the
/// store's connections are opened, and their I/O driven, by the server's threads, never by
/// the low-priority one (a connection's I/O is registered with the runtime that opened it).
#[derive(Clone, Debug)]
pub struct Home(tokio::runtime::Handle);

impl Home {
    /// The runtime this is called on.
    pub fn current() -> std::io::Result<Self> {
        tokio::runtime::Handle::try_current()
            .map(Self)
            .map_err(|_| std::io::Error::other("the assist worker must be built on a runtime"))
    }

    /// Runs `fut` there and waits for it from anywhere. Dropping the returned future aborts
    /// the task; a panic in it is raised again in the caller.
    pub fn run<F>(&self, fut: F) -> impl Future<Output = F::Output> + use<F>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let guard = AbortOnDrop(self.0.spawn(fut));
        async move {
            let mut guard = guard;
            match (&mut guard.0).await {
                Ok(out) => out,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Aborted: only when that runtime shuts down, and the worker with it.
                Err(_) => std::future::pending().await,
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
fn lower_priority(priority: Priority) {
    use rustix::process::{getpriority_process, setpriority_process};
    use thread_priority::{NormalThreadSchedulePolicy as Normal, ThreadSchedulePolicy as Policy};
    // Linux applies PRIO_PROCESS with a thread id to that one thread.
    let tid = Some(rustix::thread::gettid());
    let started_at = getpriority_process(tid).unwrap_or(0);
    if priority.idle {
        // No unsafe code here (the workspace forbids it): the crate wraps
        // pthread_setschedparam. For SCHED_IDLE it also sets the nice value to 0, which may be
        // refused (lowering a raised nice needs a privilege) after the policy was set, so
        // only the policy is checked; the nice value is put right below.
        let idle = Policy::Normal(Normal::Idle);
        let _ = thread_priority::set_thread_priority_and_policy(
            thread_priority::thread_native_id(),
            thread_priority::ThreadPriority::Min,
            idle,
        );
        match thread_priority::thread_schedule_policy() {
            Ok(now) if now == idle => {}
            now => tracing::warn!(
                policy = ?now,
                "assist: cannot run the generation thread under SCHED_IDLE"
            ),
        }
    }
    // Only ever lower the priority: a process started at a higher nice keeps it.
    let nice = priority.nice.max(started_at);
    if getpriority_process(tid).is_ok_and(|current| current == nice) {
        return;
    }
    if let Err(e) = setpriority_process(tid, nice) {
        tracing::warn!(nice, error = %e, "assist: cannot lower the generation thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_priority: Priority) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap()
    }

    #[tokio::test]
    async fn runs_at_the_lower_priority_and_aborts_what_is_dropped() {
        let bg = Background::new(Priority {
            nice: 7,
            idle: false,
        })
        .unwrap();
        #[cfg(target_os = "linux")]
        {
            let base = own_nice();
            let there = bg.run(async { own_nice() }).await.unwrap();
            assert_eq!(there, base.max(7), "the generation thread's nice value");
            let policy = bg.run(async { thread_priority::thread_schedule_policy() });
            assert_eq!(
                policy.await.unwrap().unwrap(),
                thread_priority::ThreadSchedulePolicy::Normal(
                    thread_priority::NormalThreadSchedulePolicy::Other
                ),
                "the generation thread keeps the normal policy"
            );
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_idle_thread_runs_under_sched_idle_and_keeps_its_nice_value() {
        let bg = Background::new(Priority {
            nice: 9,
            idle: true,
        })
        .unwrap();
        let base = own_nice();
        let (policy, nice) = bg
            .run(async { (thread_priority::thread_schedule_policy(), own_nice()) })
            .await
            .unwrap();
        assert_eq!(
            policy.unwrap(),
            thread_priority::ThreadSchedulePolicy::Normal(
                thread_priority::NormalThreadSchedulePolicy::Idle
            )
        );
        assert_eq!(
            nice,
            base.max(9),
            "the nice value is applied beside the policy"
        );
        // The caller's thread is untouched.
        assert_eq!(own_nice(), base);
    }

    /// What the worker's store calls rely on: from the low-priority thread, [`Home::run`]
    /// runs its future on the server's runtime's threads, aborts it when dropped, and raises
    /// its panic in the caller.
    #[test]
    fn home_runs_on_its_own_runtime_from_the_background_one() {
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("test-server")
            .enable_all()
            .build()
            .unwrap();
        let home = server.block_on(async { Home::current() }).unwrap();
        assert!(Home::current().is_err(), "outside any runtime");
        let bg = Background::new(Priority {
            nice: 0,
            idle: false,
        })
        .unwrap();
        let thread = || std::thread::current().name().map(str::to_owned);
        let names = server.block_on(bg.run({
            let home = home.clone();
            async move {
                let there = thread();
                let home_name = home.run(async move { thread() }).await;
                (there, home_name)
            }
        }));
        assert_eq!(
            names.unwrap(),
            (Some("earshot-assist".into()), Some("test-server".into()))
        );
        // Dropped before it finishes: the task on the server's runtime is aborted.
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let waiting = home.run(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        });
        drop(waiting);
        assert!(
            server.block_on(rx).is_err(),
            "the aborted task dropped its sender"
        );
        // A panic there is a panic here (inside `bg`, whose run reports it as None).
        let panicked = server.block_on(bg.run({
            let home = home.clone();
            async move { home.run(async { panic!("boom") }).await }
        }));
        assert!(panicked.is_none());
        drop(bg);
        server.shutdown_background();
    }
}
