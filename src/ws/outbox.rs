//! A connection's outbox: the bounded queue of frames its writer sends.
//!
//! Many senders (the hub, the connection's reader, the database writer with
//! a refused send) and one receiver (the connection's writer thread). Why not
//! a crossbeam channel like the rest of the server: a crossbeam receiver
//! spins and calls `sched_yield` several times before it sleeps. With two
//! threads per connection on a 2-core box that yielding became a large share
//! of the server's CPU time under load (`perf`, docs/BENCHMARKS.md). This queue sleeps on a condition variable at once,
//! is woken only when the writer is actually asleep, and hands the writer
//! everything queued in one lock, so a busy connection costs one wake-up per
//! burst instead of one per frame.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use super::outbound::Outbound;

/// Creates an outbox holding at most `capacity` frames.
pub fn outbox(capacity: usize) -> (Outbox, OutboxReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
            writer_asleep: false,
            sender_waiting: false,
        }),
        wake: Condvar::new(),
        space: Condvar::new(),
        capacity,
    });
    (Outbox(shared.clone()), OutboxReceiver(shared))
}

/// The sending side; clone it for each sender. Once every clone is dropped
/// the writer finds the queue finished.
pub struct Outbox(Arc<Shared>);

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum PushError {
    /// The queue holds `capacity` frames: the client is not reading.
    Full,
    /// The writer has stopped.
    Closed,
}

/// The writer's side.
pub struct OutboxReceiver(Arc<Shared>);

/// What [`OutboxReceiver::wait`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    /// Frames were moved into the caller's buffer.
    Frames,
    /// The deadline passed with nothing queued.
    Timeout,
    /// Nothing queued and every sender is gone.
    Finished,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Notified when the writer takes frames and a sender waits for room.
    space: Condvar,
    capacity: usize,
}

struct State {
    items: VecDeque<Outbound>,
    senders: usize,
    receiver_alive: bool,
    /// Whether the writer waits on `wake`: only then is a notify needed.
    writer_asleep: bool,
    /// Whether a sender waits on `space` (see [`Outbox::push_within`]).
    sender_waiting: bool,
}

impl Shared {
    /// Sleeps on `condvar` for at most `left`, or until notified.
    fn wait<'a>(
        &self,
        condvar: &Condvar,
        state: MutexGuard<'a, State>,
        left: std::time::Duration,
    ) -> MutexGuard<'a, State> {
        condvar
            .wait_timeout(state, left)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code runs user logic under this lock, so a poisoned lock holds
        // a consistent queue.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Outbox {
    /// Queues a frame without waiting.
    pub fn push(&self, item: Outbound) -> Result<(), PushError> {
        let state = self.0.lock();
        if !state.receiver_alive {
            return Err(PushError::Closed);
        }
        if state.items.len() >= self.0.capacity {
            return Err(PushError::Full);
        }
        self.enqueue(state, item);
        Ok(())
    }

    /// Appends under the lock already held, and wakes the writer if it
    /// sleeps.
    fn enqueue(&self, mut state: MutexGuard<'_, State>, item: Outbound) {
        state.items.push_back(item);
        if state.writer_asleep {
            state.writer_asleep = false;
            drop(state);
            self.0.wake.notify_one();
        }
    }
}

impl Outbox {
    /// Queues a frame once at most `share` frames are ahead of it, waiting
    /// for the writer to make room until `deadline`. This is how a
    /// connection's reader answers its own client: it stops reading while
    /// its answers pile up, instead of filling the queue and having the
    /// client cut off as too slow; and it leaves the rest of the queue to
    /// the hub, which never waits.
    pub fn push_within(
        &self,
        item: Outbound,
        share: usize,
        deadline: Instant,
    ) -> Result<(), PushError> {
        let share = share.clamp(1, self.0.capacity);
        let mut state = self.0.lock();
        loop {
            if !state.receiver_alive {
                return Err(PushError::Closed);
            }
            if state.items.len() < share {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Err(PushError::Full);
            };
            state.sender_waiting = true;
            state = self.0.wait(&self.0.space, state, left);
        }
        self.enqueue(state, item);
        Ok(())
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.0.lock().senders += 1;
        Outbox(self.0.clone())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.senders -= 1;
        if state.senders == 0 && state.writer_asleep {
            drop(state);
            self.0.wake.notify_one();
        }
    }
}

impl OutboxReceiver {
    /// Waits until frames are queued, the deadline passes, or every sender
    /// is gone; moves all queued frames to the back of `into`.
    pub fn wait(&self, deadline: Instant, into: &mut VecDeque<Outbound>) -> Waited {
        let mut state = self.0.lock();
        loop {
            if !state.items.is_empty() {
                into.append(&mut state.items);
                self.made_room(&mut state);
                return Waited::Frames;
            }
            if state.senders == 0 {
                return Waited::Finished;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return Waited::Timeout;
            };
            state.writer_asleep = true;
            state = self.0.wait(&self.0.wake, state, left);
            state.writer_asleep = false;
        }
    }

    /// Moves whatever is queued to `into`, without waiting.
    pub fn take(&self, into: &mut VecDeque<Outbound>) {
        let mut state = self.0.lock();
        into.append(&mut state.items);
        self.made_room(&mut state);
    }

    fn made_room(&self, state: &mut State) {
        if state.sender_waiting {
            state.sender_waiting = false;
            self.0.space.notify_all();
        }
    }
}

impl Drop for OutboxReceiver {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_alive = false;
        // Frames nobody will send; dropping them frees their memory now.
        state.items.clear();
        self.made_room(&mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(text: &str) -> Outbound {
        Outbound::Frame(text.to_owned().into())
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn frames_come_out_in_order_and_all_at_once() {
        let (outbox, receiver) = outbox(4);
        for text in ["a", "b", "c"] {
            outbox.push(frame(text)).expect("room");
        }
        let mut got = VecDeque::new();
        assert_eq!(receiver.wait(soon(), &mut got), Waited::Frames);
        let texts: Vec<String> = got
            .iter()
            .map(|item| match item {
                Outbound::Frame(text) => text.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
    }

    #[test]
    fn a_full_queue_refuses_and_a_gone_writer_closes() {
        let (outbox, receiver) = outbox(2);
        outbox.push(frame("a")).expect("room");
        outbox.push(frame("b")).expect("room");
        assert_eq!(outbox.push(frame("c")), Err(PushError::Full));
        drop(receiver);
        assert_eq!(outbox.push(frame("d")), Err(PushError::Closed));
    }

    #[test]
    fn the_writer_wakes_for_a_frame_and_when_the_last_sender_leaves() {
        let (outbox, receiver) = outbox(2);
        let other = outbox.clone();
        let writer = std::thread::spawn(move || {
            let mut got = VecDeque::new();
            let first = receiver.wait(soon(), &mut got);
            got.clear();
            let second = receiver.wait(soon(), &mut got);
            (first, second)
        });
        outbox.push(frame("a")).expect("room");
        drop(outbox);
        drop(other);
        let (first, second) = writer.join().expect("writer");
        assert_eq!(first, Waited::Frames);
        assert_eq!(second, Waited::Finished);
    }

    #[test]
    fn a_sender_within_its_share_waits_for_room_instead_of_failing() {
        let (outbox, receiver) = outbox(4);
        outbox.push(frame("a")).expect("room");
        outbox.push(frame("b")).expect("room");
        // Two ahead, share 2: it waits until the writer takes them.
        let sender = std::thread::spawn(move || outbox.push_within(frame("c"), 2, soon()));
        let mut got = VecDeque::new();
        assert_eq!(receiver.wait(soon(), &mut got), Waited::Frames);
        assert_eq!(sender.join().expect("sender"), Ok(()));
        got.clear();
        receiver.take(&mut got);
        assert_eq!(got.len(), 1);

        let (outbox, _receiver) = outbox_pair_full();
        let deadline = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            outbox.push_within(frame("x"), 1, deadline),
            Err(PushError::Full),
            "a writer that never takes: the wait ends at the deadline"
        );
    }

    fn outbox_pair_full() -> (Outbox, OutboxReceiver) {
        let (outbox, receiver) = outbox(1);
        outbox.push(frame("a")).expect("room");
        (outbox, receiver)
    }

    #[test]
    fn an_empty_queue_times_out() {
        let (_outbox, receiver) = outbox(1);
        let mut got = VecDeque::new();
        let deadline = Instant::now() + Duration::from_millis(10);
        assert_eq!(receiver.wait(deadline, &mut got), Waited::Timeout);
        assert!(Instant::now() >= deadline);
    }
}
