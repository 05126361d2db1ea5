//! Work that can wait runs at a lower CPU priority: the search indexer,
//! the image workers and the push workers. On a busy server the threads
//! that move messages then get the cores first, and the background work
//! catches up when the load eases.

/// How much nicer than the server a background thread runs: when it
/// competes with a message thread for a core, it gets about a tenth of the
/// time.
pub const NICENESS: libc::c_int = 10;

/// Makes the calling thread nicer by [`NICENESS`] (on Linux, per thread).
/// Best effort: a thread that keeps normal priority still works; `what`
/// names it in the log. An unprivileged thread cannot raise its priority
/// again, so only threads that do nothing else call this.
pub fn lower_priority(what: &str) {
    // SAFETY: gettid, getpriority and setpriority only read their integer
    // arguments; on Linux, PRIO_PROCESS with a thread id applies to that
    // thread only. (getpriority's -1 is a valid niceness; an error there
    // only makes the value set below less nice than meant.)
    let failed = unsafe {
        let tid = libc::gettid() as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, (now + NICENESS).min(19)) != 0
    };
    if failed {
        log::debug!(
            "{what} keeps normal priority: {}",
            std::io::Error::last_os_error()
        );
    }
}
