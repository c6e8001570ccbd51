//! The threads guest code runs on in the server.
//!
//! Not the async workers: a policy that loops would stall every connection,
//! TLS handshake and probe they serve. Not tokio's blocking pool either: an
//! evaluation that runs long lowers its own thread's scheduling priority
//! ([`demote_current_thread`]), so short evaluations, the accept loop and the
//! probes keep getting a CPU next to it, and an unprivileged thread can never
//! raise its priority again. Such a thread must retire after its job, which a
//! pool we do not own cannot do. Here it does, and a new one takes its place
//! when work arrives.
//!
//! How many jobs run at once is not bounded here: every job holds one of its
//! policy's evaluation slots, and the slots together fit the instance pool.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// A thread with nothing to do for this long exits.
const IDLE_EXIT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Its threads run at `SCHED_IDLE` from the start (see [`Threads::idle`]).
    idle: bool,
}

thread_local! {
    /// This thread belongs to the evaluation threads (and may be demoted).
    static POOLED: Cell<bool> = const { Cell::new(false) };
    /// This thread lowered its priority and retires after its job.
    static DEMOTED: Cell<bool> = const { Cell::new(false) };
    /// What to do when this thread is demoted (see [`on_demotion`]).
    static ON_DEMOTION: RefCell<Option<Box<dyn FnOnce()>>> = const { RefCell::new(None) };
}

/// Runs `hook` if this thread is demoted while the returned guard lives: a
/// batch hands the rest of its work to another thread that way.
pub(crate) fn on_demotion(hook: impl FnOnce() + 'static) -> DemotionHook {
    ON_DEMOTION.set(Some(Box::new(hook)));
    DemotionHook(())
}

/// Clears the hook of [`on_demotion`] when dropped.
pub(crate) struct DemotionHook(());

impl Drop for DemotionHook {
    fn drop(&mut self) {
        ON_DEMOTION.set(None);
    }
}

/// Whether this thread was demoted by a long evaluation.
pub(crate) fn demoted() -> bool {
    DEMOTED.get()
}

/// Runs jobs on the process's evaluation threads.
#[derive(Clone)]
pub(crate) struct Threads {
    shared: Arc<Shared>,
}

impl Threads {
    /// The evaluation threads of this process.
    pub(crate) fn global() -> &'static Self {
        static THREADS: OnceLock<Threads> = OnceLock::new();
        THREADS.get_or_init(|| Self {
            shared: Arc::new(Shared::default()),
        })
    }

    /// The threads shadow candidates run on (`admission::shadow`): at
    /// `SCHED_IDLE` from their first instruction, so a candidate only gets
    /// CPU time nothing else wants and never delays a served review; never
    /// retired for it. (Nice 19 was measured too: next to a saturated server
    /// it took 8 % of its throughput; see host/benches/README.md.)
    pub(crate) fn idle() -> &'static Self {
        static THREADS: OnceLock<Threads> = OnceLock::new();
        THREADS.get_or_init(|| Self {
            shared: Arc::new(Shared {
                idle: true,
                ..Shared::default()
            }),
        })
    }

    /// Runs `job` on an evaluation thread; resolves to its result, or `None`
    /// when it panicked (or no thread could be started).
    pub(crate) fn run<R, F>(&self, job: F) -> impl Future<Output = Option<R>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Box::new(move || {
            let _ = tx.send(job());
        }));
        async move { rx.await.ok() }
    }

    /// Runs `job` on an evaluation thread, not waiting for it.
    pub(crate) fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.submit(Box::new(job));
    }

    fn submit(&self, job: Job) {
        let mut queue = lock(&self.shared.queue);
        queue.jobs.push_back(job);
        if queue.jobs.len() <= queue.idle {
            drop(queue);
            self.shared.ready.notify_one();
            return;
        }
        drop(queue);
        let shared = self.shared.clone();
        let spawned = std::thread::Builder::new()
            .name(
                if shared.idle {
                    "bouncer-shadow"
                } else {
                    "bouncer-eval"
                }
                .into(),
            )
            .spawn(move || work(&shared));
        if let Err(error) = spawned {
            // The job stays queued for a running thread; with none, its caller
            // waits until its deadline and the policy fails by its failure mode.
            tracing::error!(%error, "cannot start an evaluation thread");
        }
    }
}

fn lock(mutex: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Jobs run outside the lock, so a panic cannot leave the queue half-changed.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn work(shared: &Shared) {
    if shared.idle {
        // As low as it goes from the start: nothing to demote, nothing to retire.
        set_idle_priority();
    } else {
        POOLED.set(true);
    }
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue.idle += 1;
                let (next, waited) = shared
                    .ready
                    .wait_timeout(queue, IDLE_EXIT)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                queue = next;
                queue.idle -= 1;
                if waited.timed_out() && queue.jobs.is_empty() {
                    return;
                }
            }
        };
        // A panicking job drops its result sender; its caller sees `None`.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() || DEMOTED.get() {
            return;
        }
    }
}

/// Called when an evaluation has run for a while: on an evaluation thread,
/// moves the thread to `SCHED_IDLE` (it runs only on CPU time nothing else
/// wants) for the rest of its job, and retires the thread afterwards.
/// Elsewhere (offline tools run guest code on their own thread) it does nothing.
///
/// `SCHED_IDLE` rather than nice 19: measured next to a policy looping at
/// concurrency 8 (`tests/benches/isolation.rs`), `/healthz`'s p99 stayed at its
/// unloaded figure, where nice 19 added about 2 ms.
pub(crate) fn demote_current_thread() {
    if !POOLED.get() || DEMOTED.get() {
        return;
    }
    DEMOTED.set(true);
    if let Some(hook) = ON_DEMOTION.take() {
        hook();
    }
    set_idle_priority();
}

/// Moves the calling thread to `SCHED_IDLE`, for good.
fn set_idle_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: a plain system call on the calling thread (pid 0), with a
        // valid parameter; unprivileged threads may always lower their policy.
        let result = unsafe {
            let param = libc::sched_param { sched_priority: 0 };
            libc::sched_setscheduler(0, libc::SCHED_IDLE, &param)
        };
        if result != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "cannot lower an evaluation thread's priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_a_panic_is_none() {
        let threads = Threads::global();
        assert_eq!(threads.run(|| 2 + 2).await, Some(4));
        let panicked: Option<()> = threads.run(|| panic!("on purpose")).await;
        assert_eq!(panicked, None);
        let many = futures::future::join_all((0..32).map(|i| threads.run(move || i * 2))).await;
        assert_eq!(many, (0..32).map(|i| Some(i * 2)).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_demoted_thread_retires_after_its_job() {
        let threads = Threads::global();
        let first = threads
            .run(|| {
                demote_current_thread();
                std::thread::current().id()
            })
            .await
            .unwrap();
        let pooled_elsewhere = std::thread::spawn(|| {
            demote_current_thread();
            DEMOTED.get()
        });
        assert!(
            !pooled_elsewhere.join().unwrap(),
            "only pool threads are demoted"
        );
        for _ in 0..8 {
            let next = threads.run(|| std::thread::current().id()).await.unwrap();
            assert_ne!(next, first, "a demoted thread ran another job");
        }
    }
}
