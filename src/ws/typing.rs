//! Typing indicators: which users are typing to whom, kept by the hub.
//!
//! Nothing here is stored. A client says `start` and `stop`; the partner
//! is told only of changes, at most once per [`TYPING_MIN_INTERVAL`] per
//! (typer, partner): a change that comes sooner is held until then, and
//! changes that cancel out meanwhile are never sent, so a flood of frames
//! costs the partner at most one frame a second and still ends in the
//! right state. A `start` lasts [`TYPING_LAPSE`] unless repeated; then the
//! hub itself says `stop`. It also says `stop` when the typer sends that
//! partner a message, and when the typer's last connection closes.
//!
//! The hub asks [`Typing::next_due`] for its select's timer and calls
//! [`Typing::due`] when it fires: a heap of deadlines, so a thousand
//! typers cost a heap operation per change, not a scan per event.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::models::UserId;

/// How long a `start` lasts without a repeat.
pub const TYPING_LAPSE: Duration = Duration::from_secs(6);
/// The least time between two typing frames to one partner about one typer.
pub const TYPING_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A typing frame to send: `from` is typing to `to`, or stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypingFrame {
    pub from: UserId,
    pub to: UserId,
    pub typing: bool,
}

/// One (typer, partner) pair.
#[derive(Debug)]
struct Pair {
    /// What the typer says now.
    typing: bool,
    /// What the partner was last told.
    shown: bool,
    /// When the partner was last told (rate limit).
    told_at: Option<Instant>,
    /// When a `start` lapses.
    lapses_at: Instant,
}

impl Pair {
    /// When the hub must look at this pair again: to send a held change,
    /// to lapse a start, or to forget a stopped pair once it no longer
    /// limits the rate (a `start` right after a `stop` waits its turn).
    fn wake(&self) -> Option<Instant> {
        let rate_free = self.told_at.map(|t| t + TYPING_MIN_INTERVAL);
        if self.typing != self.shown {
            rate_free
        } else if self.typing {
            Some(self.lapses_at)
        } else {
            rate_free
        }
    }
}

/// Every typer's pairs, and the deadlines to look at.
#[derive(Debug, Default)]
pub struct Typing {
    /// typer → partner → state
    pairs: HashMap<UserId, HashMap<UserId, Pair>>,
    /// (when, typer, partner): possibly stale; checked against the pair.
    deadlines: BinaryHeap<Reverse<(Instant, UserId, UserId)>>,
}

impl Typing {
    /// A client's `typing` frame. Returns the frame to send now, if any.
    pub fn signal(
        &mut self,
        from: UserId,
        to: UserId,
        typing: bool,
        now: Instant,
    ) -> Option<TypingFrame> {
        let pair = self
            .pairs
            .entry(from)
            .or_default()
            .entry(to)
            .or_insert(Pair {
                typing: false,
                shown: false,
                told_at: None,
                lapses_at: now,
            });
        pair.typing = typing;
        if typing {
            pair.lapses_at = now + TYPING_LAPSE;
        }
        let frame = Self::settle(pair, from, to, now);
        self.schedule(from, to, now);
        frame
    }

    /// The typer sent `to` a message, or left: the partner is told `stop`
    /// now if it was told `start`, whatever the rate.
    pub fn stop(&mut self, from: UserId, to: UserId) -> Option<TypingFrame> {
        let partners = self.pairs.get_mut(&from)?;
        let pair = partners.remove(&to)?;
        if partners.is_empty() {
            self.pairs.remove(&from);
        }
        pair.shown.then_some(TypingFrame {
            from,
            to,
            typing: false,
        })
    }

    /// `from`'s last connection closed: `stop` to every partner told
    /// `start`.
    pub fn left(&mut self, from: UserId) -> Vec<TypingFrame> {
        let partners: Vec<UserId> = self
            .pairs
            .get(&from)
            .map(|p| p.keys().copied().collect())
            .unwrap_or_default();
        partners
            .into_iter()
            .filter_map(|to| self.stop(from, to))
            .collect()
    }

    /// When [`Typing::due`] next has something to do.
    pub fn next_due(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, from, to))) = self.deadlines.peek().copied() {
            if self.wake_of(from, to) == Some(at) {
                return Some(at);
            }
            self.deadlines.pop(); // stale
        }
        None
    }

    /// The frames due by `now`: held changes, and lapsed starts.
    pub fn due(&mut self, now: Instant) -> Vec<TypingFrame> {
        let mut frames = Vec::new();
        while let Some(Reverse((at, from, to))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if self.wake_of(from, to) != Some(at) {
                continue; // stale
            }
            let Some(pair) = self.pairs.get_mut(&from).and_then(|p| p.get_mut(&to)) else {
                continue;
            };
            if pair.typing && pair.typing == pair.shown && now >= pair.lapses_at {
                pair.typing = false; // lapsed
            }
            frames.extend(Self::settle(pair, from, to, now));
            self.schedule(from, to, now);
        }
        frames
    }

    /// Tells the partner of a change if the rate allows.
    fn settle(pair: &mut Pair, from: UserId, to: UserId, now: Instant) -> Option<TypingFrame> {
        let allowed = pair.told_at.is_none_or(|t| now >= t + TYPING_MIN_INTERVAL);
        if pair.typing == pair.shown || !allowed {
            return None;
        }
        pair.shown = pair.typing;
        pair.told_at = Some(now);
        Some(TypingFrame {
            from,
            to,
            typing: pair.typing,
        })
    }

    fn wake_of(&self, from: UserId, to: UserId) -> Option<Instant> {
        self.pairs.get(&from)?.get(&to)?.wake()
    }

    /// Records when to look at the pair again, or forgets it when there is
    /// nothing left to do.
    fn schedule(&mut self, from: UserId, to: UserId, now: Instant) {
        let Some(partners) = self.pairs.get_mut(&from) else {
            return;
        };
        match partners.get(&to).and_then(Pair::wake) {
            Some(at) if at > now || partners.get(&to).is_some_and(|p| p.typing != p.shown) => {
                self.deadlines.push(Reverse((at, from, to)));
            }
            _ => {
                partners.remove(&to);
                if partners.is_empty() {
                    self.pairs.remove(&from);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(from: UserId, to: UserId, typing: bool) -> TypingFrame {
        TypingFrame { from, to, typing }
    }

    #[test]
    fn a_flood_costs_at_most_one_frame_a_second_and_ends_in_the_right_state() {
        let mut typing = Typing::default();
        let t0 = Instant::now();
        assert_eq!(typing.signal(1, 2, true, t0), Some(frame(1, 2, true)));
        let mut sent = 0;
        for i in 1..100u32 {
            let at = t0 + Duration::from_millis(u64::from(i) * 5);
            sent += usize::from(typing.signal(1, 2, i % 2 == 0, at).is_some());
        }
        assert_eq!(sent, 0, "within the first second nothing more goes out");
        // The last frame (i = 99) said stop: held until a second after the
        // start went out.
        let held = typing.next_due().expect("a held change");
        assert_eq!(held, t0 + TYPING_MIN_INTERVAL);
        assert_eq!(typing.due(held), vec![frame(1, 2, false)]);
    }

    #[test]
    fn a_start_lapses_after_six_seconds_unless_repeated() {
        let mut typing = Typing::default();
        let t0 = Instant::now();
        assert!(typing.signal(1, 2, true, t0).is_some());
        let repeat = t0 + Duration::from_secs(4);
        assert_eq!(typing.signal(1, 2, true, repeat), None, "already shown");
        assert!(
            typing.due(t0 + TYPING_LAPSE).is_empty(),
            "repeated: still on"
        );
        let lapse = typing.next_due().expect("the lapse");
        assert_eq!(lapse, repeat + TYPING_LAPSE);
        assert_eq!(typing.due(lapse), vec![frame(1, 2, false)]);
    }

    #[test]
    fn sending_or_leaving_stops_at_once() {
        let mut typing = Typing::default();
        let t0 = Instant::now();
        typing.signal(1, 2, true, t0);
        typing.signal(1, 3, true, t0);
        assert_eq!(typing.stop(1, 2), Some(frame(1, 2, true).stopped()));
        assert_eq!(typing.stop(1, 2), None, "told once");
        assert_eq!(typing.left(1), vec![frame(1, 3, false)]);
        assert_eq!(typing.next_due(), None);
    }

    impl TypingFrame {
        fn stopped(self) -> TypingFrame {
            TypingFrame {
                typing: false,
                ..self
            }
        }
    }
}
