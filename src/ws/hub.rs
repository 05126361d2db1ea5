//! The hub: one thread that knows every open WebSocket and routes frames
//! between them.
//!
//! All state about who is connected lives here and only here, so it needs no
//! locks. Everything else talks to the hub by sending a [`HubEvent`] through
//! one channel. One channel, not one per kind of event: `select!` over several
//! channels picks a ready one at random, so a connection's `Unregister` could
//! overtake its own `Register` and leave a ghost online forever. A single
//! FIFO keeps every sender's events in the order it sent them.
//!
//! The hub never blocks: it does no I/O and no queries, and it pushes frames
//! to connections' outboxes without waiting. A connection whose queue is full is too
//! slow to keep up; the hub drops it (close code 1008) instead of waiting.
//! Its messages are stored, and the client reloads them when it reconnects.
//!
//! Presence is coalesced. Telling everyone about every arrival is quadratic:
//! 10,000 users connecting at once make 100 million (user, other user)
//! facts. Each client must learn of every other user, but the hub's work
//! and the number of frames can be cut: a change after a quiet spell goes
//! out at once, and later ones are collected and handed out at most every
//! [`PRESENCE_FLUSH_INTERVAL`], as one shared batch per connection. Each
//! connection's writer then sends it in the form its client asked for,
//! minus its own user (see [`super::presence`]). Clients end with the same
//! online list as if told of every change one by one. (Handing out a batch
//! whenever the hub's queue ran dry was not enough: in a storm,
//! registrations arrive a little apart, so nearly every one woke all the
//! writers; docs/BENCHMARKS.md has the storm figures.)

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::events::{OnlineUser, ServerEvent};
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{Outbox, PushError};
use super::presence::{OnlineList, PendingPresence, PresenceChange};
use crate::metrics::Metrics;
use crate::models::{Message, SessionId, UserId};

/// Identifies one WebSocket connection (a user may have several).
pub type ConnId = u64;

/// Hub events queued before senders start to wait: enough to absorb a burst
/// from every connection at once, small enough to bound memory.
pub const HUB_QUEUE_CAPACITY: usize = 16 * 1024;
/// Presence batches go out at most this often. Each one wakes every
/// connection's writer, so this bounds that work in a storm to N wake-ups
/// per interval instead of N per arriving user; at rest a change waits for
/// nothing (the last batch is long past), and in a storm it waits at most
/// this long: a moment for a person watching an online dot.
pub const PRESENCE_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What the hub needs to know about a connection to route to it.
pub struct ConnHandle {
    pub id: ConnId,
    pub user_id: UserId,
    pub nickname: String,
    pub session_id: SessionId,
    pub outbox: Outbox,
    pub close_signal: Arc<CloseSignal>,
}

/// Who a send's `message_delivered` / `message_failed` answer goes to.
pub struct AckTo {
    pub conn: ConnId,
    pub client_id: Option<String>,
}

/// Everything the hub can be asked to do.
pub enum HubEvent {
    /// A connection finished its handshake.
    Register(ConnHandle),
    /// A connection's reader stopped.
    Unregister(ConnId),
    /// A message was stored: fan it out and answer the sender. Sent by the
    /// database writer in commit order, so in id order.
    Deliver {
        message: Message,
        sender_nickname: String,
        ack: Option<AckTo>,
        /// `false` for a repeated `client_id`: the message went out when it
        /// was first stored; only the sender's answer is owed.
        fan_out: bool,
    },
    /// The session logged out: close its connections, then say so on
    /// `closed` (a fresh channel with room for the answer: the hub never
    /// waits on it), so that logout answers only once none of them acts on
    /// another frame.
    CloseSession {
        session: SessionId,
        closed: crossbeam_channel::Sender<()>,
    },
    /// Close every connection with 1001 and stop the hub.
    Shutdown,
}

/// Set of users with at least one open connection, written by the hub only,
/// read by HTTP handlers for the `online` flags.
pub type Presence = Arc<RwLock<HashSet<UserId>>>;

/// The hub's address: how the rest of the server reaches it. This is the
/// seam for multi-node delivery: a broker-backed hub keeps this interface.
#[derive(Clone)]
pub struct HubHandle {
    events: Sender<HubEvent>,
    presence: Presence,
}

impl HubHandle {
    /// Queues an event, waiting while the hub's queue is full: that wait is
    /// the back-pressure that keeps a flood of senders from growing memory.
    /// Returns `false` once the hub has stopped.
    pub fn send(&self, event: HubEvent) -> bool {
        self.events.send(event).is_ok()
    }

    /// Events waiting for the hub (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.events.len()
    }

    /// Whether `user` has at least one open WebSocket.
    pub fn is_online(&self, user: UserId) -> bool {
        self.presence
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&user)
    }
}

/// Starts the hub thread.
pub fn spawn(metrics: Arc<Metrics>) -> std::io::Result<(HubHandle, JoinHandle<()>)> {
    let (events, inbox) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let presence = Presence::default();
    let hub = Hub {
        conns: HashMap::new(),
        online: HashMap::new(),
        online_list: OnlineList::default(),
        presence: presence.clone(),
        doomed: Vec::new(),
        pending_presence: PendingPresence::default(),
        registered_at: HashMap::new(),
        seq: 0,
        metrics,
    };
    let thread = std::thread::Builder::new()
        .name("hub".into())
        .spawn(move || hub.run(inbox))?;
    Ok((HubHandle { events, presence }, thread))
}

struct OnlineUserEntry {
    nickname: String,
    conns: Vec<ConnId>,
}

struct Hub {
    conns: HashMap<ConnId, ConnHandle>,
    online: HashMap<UserId, OnlineUserEntry>,
    /// The `online_users` frame's entries for `online`, kept encoded.
    online_list: OnlineList,
    presence: Presence,
    /// Connections found dead or too slow while handling an event; removed
    /// after it, so a removal never happens in the middle of a fan-out.
    /// Connections to drop after a round, with the close frame to send
    /// (`None`: their writer or reader has already gone).
    doomed: Vec<(ConnId, Option<CloseReason>)>,
    /// Presence changes not yet handed out, oldest first.
    pending_presence: PendingPresence,
    /// When each connection registered, in `seq` terms.
    registered_at: HashMap<ConnId, u64>,
    /// Counts changes and registrations (see [`PresenceChange`]).
    seq: u64,
    metrics: Arc<Metrics>,
}

impl Hub {
    fn run(mut self, inbox: Receiver<HubEvent>) {
        // When the last presence batch went out (none yet).
        let mut last_flush: Option<Instant> = None;
        loop {
            // Presence pending: it is due one interval after the last batch.
            let presence_due = (!self.pending_presence.is_empty())
                .then(|| last_flush.map_or_else(Instant::now, |t| t + PRESENCE_FLUSH_INTERVAL));
            if presence_due.is_some_and(|due| Instant::now() >= due) {
                self.flush_presence();
                last_flush = Some(Instant::now());
                continue;
            }
            let received = match presence_due {
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(due) => inbox.recv_deadline(due),
            };
            let event = match received {
                Ok(event) => event,
                Err(RecvTimeoutError::Timeout) => continue, // presence is due
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let started = Instant::now();
            match event {
                HubEvent::Register(conn) => self.register(conn),
                HubEvent::Unregister(id) => self.remove(id, None),
                HubEvent::Deliver {
                    message,
                    sender_nickname,
                    ack,
                    fan_out,
                } => self.deliver(&message, &sender_nickname, ack, fan_out),
                HubEvent::CloseSession { session, closed } => {
                    let ids: Vec<ConnId> = self
                        .conns
                        .values()
                        .filter(|c| c.session_id == session)
                        .map(|c| c.id)
                        .collect();
                    for id in ids {
                        self.remove(id, Some(CloseReason::LoggedOut));
                    }
                    let _ = closed.try_send(());
                }
                HubEvent::Shutdown => break,
            }
            self.reap();
            self.metrics
                .hub_event_seconds
                .observe_duration(started.elapsed());
            let gauges = [
                (&self.metrics.connections, self.conns.len()),
                (&self.metrics.users_online, self.online.len()),
            ];
            for (gauge, value) in gauges {
                gauge.store(i64::try_from(value).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
        }
        // Shutdown, or every handle dropped: close all connections cleanly.
        for conn in self.conns.values() {
            Self::close(conn, Some(CloseReason::GoingAway));
        }
        log::info!("hub stopped; closed {} connections", self.conns.len());
    }

    fn register(&mut self, conn: ConnHandle) {
        let online = &self.online;
        let online_users = self.online_list.frame_for(conn.user_id, || {
            online
                .iter()
                .map(|(id, entry)| OnlineUser {
                    id: *id,
                    nickname: &entry.nickname,
                })
                .collect()
        });
        let (id, user_id) = (conn.id, conn.user_id);
        let nickname = conn.nickname.clone();
        self.conns.insert(id, conn);
        self.seq += 1;
        self.registered_at.insert(id, self.seq);
        let entry = self
            .online
            .entry(user_id)
            .or_insert_with(|| OnlineUserEntry {
                nickname: nickname.clone(),
                conns: Vec::new(),
            });
        entry.conns.push(id);
        let first_connection = entry.conns.len() == 1;
        // Presence first: once the client holds its online_users frame, the
        // REST API already reports it online.
        if first_connection {
            self.set_presence(user_id, true);
        }
        self.push(id, Outbound::Frame(online_users));
        if first_connection {
            self.announce(user_id, &nickname, true);
        }
    }

    fn deliver(
        &mut self,
        message: &Message,
        sender_nickname: &str,
        ack: Option<AckTo>,
        fan_out: bool,
    ) {
        let delivered = if fan_out {
            let frame = ServerEvent::private_message(message, sender_nickname).to_frame();
            let mut delivered = false;
            for id in self.conns_of(message.receiver_id) {
                if self.push(id, Outbound::message(message.id, &frame)) {
                    delivered = true;
                    self.metrics
                        .messages_delivered
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            let acked_conn = ack.as_ref().map(|a| a.conn);
            for id in self.conns_of(message.sender_id) {
                if Some(id) != acked_conn {
                    self.push(id, Outbound::message(message.id, &frame));
                }
            }
            delivered
        } else {
            // A repeat: the recipient got it the first time, if online.
            self.online.contains_key(&message.receiver_id)
        };
        if let Some(ack) = ack {
            let answer = if delivered {
                ServerEvent::MessageDelivered {
                    message_id: message.id,
                    to_user_id: message.receiver_id,
                    client_id: ack.client_id.as_deref(),
                    timestamp: crate::models::format_timestamp(&message.created_at),
                }
            } else {
                self.metrics.count_failure("recipient_offline");
                ServerEvent::MessageFailed {
                    message_id: Some(message.id),
                    to_user_id: message.receiver_id,
                    client_id: ack.client_id.as_deref(),
                    error: "recipient_offline",
                    retry_after_ms: None,
                }
            };
            let frame = answer.to_frame();
            // The answer to a fresh send is this connection's delivery of the
            // message; a repeat's answer is about an old one.
            let item = if fan_out {
                Outbound::message(message.id, &frame)
            } else {
                Outbound::Frame(frame)
            };
            self.push(ack.conn, item);
        }
    }

    fn conns_of(&self, user: UserId) -> Vec<ConnId> {
        self.online
            .get(&user)
            .map(|entry| entry.conns.clone())
            .unwrap_or_default()
    }

    /// Queues a presence change for everyone but `user` (see the module
    /// docs: it goes out with the next flush), and keeps the encoded
    /// `online_users` list in step with it.
    fn announce(&mut self, id: UserId, nickname: &str, online: bool) {
        self.seq += 1;
        let user = OnlineUser { id, nickname };
        if online {
            self.online_list.came_online(user.clone());
        } else {
            self.online_list.someone_left();
        }
        self.pending_presence.push(user, online, self.seq);
    }

    /// Hands the pending presence changes to every connection: one shared
    /// batch, from the first change made after the connection registered.
    fn flush_presence(&mut self) {
        // A connection found dead while flushing announces its user's
        // departure: flush again until nothing is pending.
        while !self.pending_presence.is_empty() {
            self.flush_presence_once();
        }
    }

    fn flush_presence_once(&mut self) {
        let changes: Arc<[PresenceChange]> = self.pending_presence.take();
        let Some(first_seq) = changes.first().map(|c| c.seq) else {
            return;
        };
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            let (Some(conn), Some(&registered)) =
                (self.conns.get(&id), self.registered_at.get(&id))
            else {
                continue;
            };
            let own_user = conn.user_id;
            let from = if registered < first_seq {
                0
            } else {
                changes.partition_point(|c| c.seq <= registered)
            };
            if changes[from..].iter().all(|c| c.user == own_user) {
                continue;
            }
            self.push(
                id,
                Outbound::Presence {
                    changes: changes.clone(),
                    from,
                    own_user,
                },
            );
        }
        self.reap();
    }

    /// Queues a frame without waiting. Returns whether it was queued; a full
    /// or closed queue dooms the connection.
    fn push(&mut self, id: ConnId, item: Outbound) -> bool {
        let Some(conn) = self.conns.get(&id) else {
            return false;
        };
        match conn.outbox.push(item) {
            Ok(()) => true,
            Err(PushError::Full) => {
                log::warn!(
                    "connection {id} (user {}) is too slow; closing it",
                    conn.user_id
                );
                self.doomed.push((id, Some(CloseReason::TooSlow)));
                self.metrics.outbox_drops.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(PushError::Closed) => {
                self.doomed.push((id, None));
                false
            }
        }
    }

    fn reap(&mut self) {
        while let Some((id, reason)) = self.doomed.pop() {
            self.remove(id, reason);
        }
    }

    /// Forgets a connection, tells its writer to close, and announces
    /// their user offline when it was their last one.
    /// Forgets connection `id`, telling its writer to send `reason` (`None`:
    /// nothing to send, the connection is already ending).
    fn remove(&mut self, id: ConnId, reason: Option<CloseReason>) {
        let Some(conn) = self.conns.remove(&id) else {
            return; // already gone: e.g. dropped as too slow, then unregistered
        };
        self.registered_at.remove(&id);
        Self::close(&conn, reason);
        let Some(entry) = self.online.get_mut(&conn.user_id) else {
            return;
        };
        entry.conns.retain(|c| *c != id);
        if entry.conns.is_empty() {
            self.online.remove(&conn.user_id);
            self.set_presence(conn.user_id, false);
            self.announce(conn.user_id, &conn.nickname, false);
        }
    }

    fn close(conn: &ConnHandle, reason: Option<CloseReason>) {
        conn.close_signal.end_reading();
        if let Some(reason) = reason {
            // Queued behind the frames already waiting, so they go out
            // first. When the queue is full, the flag makes the writer skip
            // the backlog and close at its next frame.
            if conn.outbox.push(Outbound::Close(reason)).is_err() {
                conn.close_signal.close(reason);
            }
        }
        // Dropping the handle drops the hub's sender; once the reader's is
        // gone too the writer sees the queue end and closes with 1000.
    }

    fn set_presence(&self, user: UserId, online: bool) {
        let mut set = self
            .presence
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if online {
            set.insert(user);
        } else {
            set.remove(&user);
        }
    }
}
