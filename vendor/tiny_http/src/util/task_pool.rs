use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are busy.
/// Any idle thread beyond `MIN_THREADS` dies after a few seconds.
///
/// Patched: tiny_http 0.12 decided between queueing a task and starting a
/// thread from a counter of idle threads read outside the queue's lock, so
/// two connections arriving together could both be queued for one idle
/// thread; when every thread was held by a slow client, a new connection
/// waited in the queue with no thread to run it. Here the queue and the
/// idle count are one value under one lock, and a task is queued only when
/// an idle thread is there for it. Starting a thread can fail (the process
/// is at its thread limit): the task is dropped and the error returned,
/// where tiny_http 0.12 panicked in its accept thread.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

type Task = Box<dyn FnMut() + Send>;

struct Queue {
    todo: VecDeque<Task>,
    idle: usize,
    threads: usize,
    closing: bool,
}

struct Sharing {
    queue: Mutex<Queue>,
    // notified whenever a task is added to `todo`
    condvar: Condvar,
}

/// Threads kept even when idle.
const MIN_THREADS: usize = 4;

/// How long a thread beyond `MIN_THREADS` waits for work before it ends.
const IDLE_THREAD_LIFETIME: Duration = Duration::from_secs(5);

fn lock(sharing: &Sharing) -> MutexGuard<'_, Queue> {
    sharing
        .queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                queue: Mutex::new(Queue {
                    todo: VecDeque::new(),
                    idle: 0,
                    threads: 0,
                    closing: false,
                }),
                condvar: Condvar::new(),
            }),
        };

        for _ in 0..MIN_THREADS {
            // A pool that starts smaller still works.
            pool.add_thread(None).ok();
        }

        pool
    }

    /// Executes a function in a thread: an idle one, or a new one.
    pub fn spawn(&self, code: Task) -> std::io::Result<()> {
        let mut queue = lock(&self.sharing);
        if queue.idle > queue.todo.len() {
            queue.todo.push_back(code);
            self.sharing.condvar.notify_one();
            Ok(())
        } else {
            drop(queue);
            self.add_thread(Some(code))
        }
    }

    fn add_thread(&self, initial_fn: Option<Task>) -> std::io::Result<()> {
        let sharing = self.sharing.clone();
        lock(&sharing).threads += 1;
        let spawned = thread::Builder::new()
            .name("http-conn".into())
            .spawn(move || run(&sharing, initial_fn));
        if spawned.is_err() {
            lock(&self.sharing).threads -= 1;
        }
        spawned.map(drop)
    }
}

/// A pool thread: its first task, then whatever is queued, until it has
/// been idle too long (beyond `MIN_THREADS`) or the pool is dropped.
fn run(sharing: &Sharing, initial_fn: Option<Task>) {
    /// Counts the thread out of the pool however it ends (a task that
    /// panics included).
    struct Leaving<'a>(&'a Sharing);
    impl Drop for Leaving<'_> {
        fn drop(&mut self) {
            lock(self.0).threads -= 1;
        }
    }
    let _leaving = Leaving(sharing);

    if let Some(mut task) = initial_fn {
        task();
    }
    loop {
        let mut task = {
            let mut queue = lock(sharing);
            queue.idle += 1;
            let task = loop {
                if let Some(task) = queue.todo.pop_front() {
                    break Some(task);
                }
                if queue.closing {
                    break None;
                }
                if queue.threads <= MIN_THREADS {
                    queue = sharing
                        .condvar
                        .wait(queue)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                } else {
                    let (next, waited) = sharing
                        .condvar
                        .wait_timeout(queue, IDLE_THREAD_LIFETIME)
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    queue = next;
                    if waited.timed_out() && queue.todo.is_empty() {
                        break None;
                    }
                }
            };
            queue.idle -= 1;
            match task {
                Some(task) => task,
                None => return,
            }
        };
        task();
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        lock(&self.sharing).closing = true;
        self.sharing.condvar.notify_all();
    }
}
