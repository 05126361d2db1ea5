//! Waiting for an answer that comes through a callback.
//!
//! The store and the chat path answer through callbacks run on other
//! threads (the database writer must never wait on its callers). Some
//! callers have nothing to do meanwhile (a REST handler, a tool): this is
//! the one way they wait.

/// Calls `start` with a callback, then waits until that callback is called
/// and returns what it was given. `None` when `start` dropped the callback
/// without calling it (the callee refused the call or is shutting down).
pub fn wait_for<T: Send + 'static>(start: impl FnOnce(Box<dyn FnOnce(T) + Send>)) -> Option<T> {
    let (answer, answered) = crossbeam_channel::bounded(1);
    start(Box::new(move |outcome| {
        // The caller waits below, so the answer always fits; it can only be
        // gone if the caller itself is.
        let _ = answer.send(outcome);
    }));
    answered.recv().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_from_another_thread_is_returned() {
        let got = wait_for(|done| {
            std::thread::spawn(move || done(42));
        });
        assert_eq!(got, Some(42));
    }

    #[test]
    fn a_dropped_callback_is_none_not_a_hang() {
        let got: Option<u8> = wait_for(drop);
        assert_eq!(got, None);
    }
}
