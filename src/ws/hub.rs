//! The hub: one thread that knows every open WebSocket and routes frames
//! between them.
//!
//! All state about who is connected lives here and only here, so it needs no
//! locks. The rest of the server reaches it through five channels, one per
//! kind of event, and the hub waits on all of them with one
//! `select_biased!`: when several are ready, the first in this order wins:
//!
//! 1. **register**: a connection finished its handshake;
//! 2. **unregister**: a connection's reader stopped;
//! 3. **control**: a session logged out; shutdown; someone is typing (see
//!    [`super::typing`]: ahead of changes, so that a `start` sent before a
//!    message is never routed after it);
//! 4. **private message**: a change the database writer committed
//!    ([`Written`]), in commit order;
//! 5. **history**: a history or sync request, handed to the query pool.
//!
//! A presence batch that is due goes before all of them (see below). The
//! select also wakes for typing deadlines: a held change, a lapsed start.
//!
//! The order is what makes the routing right without a shared queue. A
//! connection sends its register before anything else, so by the time its
//! unregister, a change committed after it registered, a logout of its
//! session or its first request is in a channel, its register is already
//! in the register channel, and the hub takes that first. (`select!`
//! would pick a ready channel at random: a connection's unregister could
//! overtake its own register and leave a ghost online forever.) Within one
//! channel, events keep the order they were sent in.
//!
//! The hub never blocks: it does no I/O and no queries (requests go to the
//! query pool, `ws::queries`, and a full pool is answered with an `error`
//! frame at once), and it pushes frames to connections' outboxes without
//! waiting. A connection whose queue is full is too slow to keep up; the
//! hub drops it (close code 1008) instead of waiting. Its messages are
//! stored, and the client catches up with `sync` when it reconnects.
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

use crossbeam_channel::{Receiver, Sender, select_biased};

use super::events::{OnlineUser, ServerEvent};
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{Outbox, PushError};
use super::presence::{OnlineList, PendingPresence, PresenceChange};
use super::queries::{QueryJob, QueryPool, QueryRequest};
use super::typing::{Typing, TypingFrame};
use crate::changes::{Change, ChangeSink, Committed, Origin, Written};
use crate::chat::ChatError;
use crate::metrics::Metrics;
use crate::models::{Message, MessageId, SessionId, UserId};
use crate::privacy::Privacy;
use crate::push::PushQueue;
use crate::repo::StoreError;
use tungstenite::Utf8Bytes;

pub use crate::changes::ConnId;

/// Events queued in each channel before senders start to wait: enough to
/// absorb a burst from every connection at once, small enough to bound
/// memory.
pub const HUB_QUEUE_CAPACITY: usize = 16 * 1024;
/// Presence batches go out at most this often. Each one wakes every
/// connection's writer, so this bounds that work in a storm to N wake-ups
/// per interval instead of N per arriving user; at rest a change waits for
/// nothing (the last batch is long past), and in a storm it waits at most
/// this long: a moment for a person watching an online dot.
pub const PRESENCE_FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// What a client whose request found the query pool full is told to wait
/// before asking again: a few queries' time.
pub const QUERY_RETRY_AFTER: Duration = Duration::from_millis(250);

/// What the hub needs to know about a connection to route to it.
pub struct ConnHandle {
    pub id: ConnId,
    pub user_id: UserId,
    pub nickname: String,
    pub session_id: SessionId,
    pub outbox: Outbox,
    pub close_signal: Arc<CloseSignal>,
}

/// The control channel's events.
pub enum Control {
    /// The session logged out: close its connections, then say so on
    /// `closed` (a fresh channel with room for the answer: the hub never
    /// waits on it), so that logout answers only once none of them acts on
    /// another frame.
    CloseSession {
        session: SessionId,
        closed: Sender<()>,
    },
    /// `user`'s sessions ended (a password change, a disabled account):
    /// close their connections, all but those of session `keep`, with
    /// `reason`; then say so on `closed`, as for `CloseSession`.
    CloseUser {
        user: UserId,
        keep: Option<SessionId>,
        reason: CloseReason,
        closed: Sender<()>,
    },
    /// Close every connection with 1001 and stop the hub.
    Shutdown,
    /// A client's `typing` frame: `from` is typing to `to`, or stopped.
    Typing {
        from: UserId,
        to: UserId,
        typing: bool,
    },
    /// `blocker` blocked (`on`) or unblocked `blocked` (already recorded
    /// in [`Privacy`]): each is told the other went offline, or is online.
    BlockChanged {
        blocker: UserId,
        blocked: UserId,
        on: bool,
    },
}

/// Set of users with at least one open connection, written by the hub only,
/// read by HTTP handlers for the `online` flags.
pub type Presence = Arc<RwLock<HashSet<UserId>>>;

/// The hub's address: how the rest of the server reaches it. This is the
/// seam for multi-node delivery: a broker-backed hub keeps this interface.
/// Every method waits while its channel is full: that wait is the
/// back-pressure that keeps a flood of senders from growing memory. Each
/// returns `false` once the hub has stopped.
#[derive(Clone)]
pub struct HubHandle {
    register: Sender<ConnHandle>,
    unregister: Sender<ConnId>,
    control: Sender<Control>,
    history: Sender<QueryRequest>,
    /// Only to report the private-message channel's depth.
    private: ChangeSink,
    presence: Presence,
}

impl HubHandle {
    pub fn register(&self, conn: ConnHandle) -> bool {
        self.register.send(conn).is_ok()
    }

    pub fn unregister(&self, conn: ConnId) -> bool {
        self.unregister.send(conn).is_ok()
    }

    pub fn control(&self, event: Control) -> bool {
        self.control.send(event).is_ok()
    }

    /// Passes on a typing frame, or drops it when the hub is that busy:
    /// typing is worth less than anything else it carries, and a reader
    /// never waits for it.
    pub fn typing(&self, from: UserId, to: UserId, typing: bool) {
        let _ = self.control.try_send(Control::Typing { from, to, typing });
    }

    /// Asks for a history or sync page, answered in the connection's outbox.
    pub fn request(&self, request: QueryRequest) -> bool {
        self.history.send(request).is_ok()
    }

    /// Events waiting for the hub, over all channels (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.register.len()
            + self.unregister.len()
            + self.control.len()
            + self.private.len()
            + self.history.len()
    }

    /// How many users have at least one open WebSocket.
    pub fn online_count(&self) -> usize {
        self.presence
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether `user` has at least one open WebSocket.
    pub fn is_online(&self, user: UserId) -> bool {
        self.presence
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&user)
    }
}

/// The receiving ends of the hub's channels, until the hub thread starts.
pub struct HubInbox {
    register: Receiver<ConnHandle>,
    unregister: Receiver<ConnId>,
    control: Receiver<Control>,
    private: Receiver<Written>,
    history: Receiver<QueryRequest>,
    presence: Presence,
}

/// Makes the hub's channels. The store gets the [`ChangeSink`] (the
/// private-message channel), the rest of the server the [`HubHandle`], and
/// [`spawn`] the inbox. They exist before the hub thread does, so that the
/// store can be opened first.
pub fn channels() -> (HubHandle, ChangeSink, HubInbox) {
    let (register, register_rx) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let (unregister, unregister_rx) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let (control, control_rx) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let (private, private_rx) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let (history, history_rx) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    let presence = Presence::default();
    let handle = HubHandle {
        register,
        unregister,
        control,
        history,
        private: private.clone(),
        presence: presence.clone(),
    };
    let inbox = HubInbox {
        register: register_rx,
        unregister: unregister_rx,
        control: control_rx,
        private: private_rx,
        history: history_rx,
        presence,
    };
    (handle, private, inbox)
}

/// Starts the hub thread; `queries` answers history and sync requests.
pub fn spawn(
    inbox: HubInbox,
    queries: QueryPool,
    metrics: Arc<Metrics>,
    privacy: Arc<Privacy>,
    push: PushQueue,
) -> std::io::Result<JoinHandle<()>> {
    let hub = Hub {
        conns: HashMap::new(),
        online: HashMap::new(),
        online_list: OnlineList::default(),
        presence: inbox.presence.clone(),
        doomed: Vec::new(),
        pending_presence: PendingPresence::default(),
        registered_at: HashMap::new(),
        tick: 0,
        queries,
        metrics,
        privacy,
        typing: Typing::default(),
        push,
    };
    std::thread::Builder::new()
        .name("hub".into())
        .spawn(move || hub.run(inbox))
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
    /// after it, so a removal never happens in the middle of a fan-out,
    /// with the close frame to send (`None`: their writer or reader has
    /// already gone).
    doomed: Vec<(ConnId, Option<CloseReason>)>,
    /// Presence changes not yet handed out, oldest first.
    pending_presence: PendingPresence,
    /// When each connection registered, in `tick` terms.
    registered_at: HashMap<ConnId, u64>,
    /// Counts presence changes and registrations (see [`PresenceChange`]).
    tick: u64,
    queries: QueryPool,
    metrics: Arc<Metrics>,
    /// Blocks (typing does not pass) and read-receipt settings.
    privacy: Arc<Privacy>,
    /// Who is typing to whom.
    typing: Typing,
    /// Where messages for users with no connection go, to be pushed.
    push: PushQueue,
}

/// Waits for the next event: from the first ready channel in the order of
/// the module docs, or [`Event::Timer`] once `wake_at` has passed.
fn next_event(
    inbox: &HubInbox,
    private: &mut Receiver<Written>,
    wake_at: Option<Instant>,
) -> Event {
    loop {
        let timer = wake_at.map_or_else(crossbeam_channel::never, crossbeam_channel::at);
        let event = select_biased! {
            recv(inbox.register) -> conn => Some(conn.map_or(Event::Orphaned, Event::Register)),
            recv(inbox.unregister) -> id => Some(id.map_or(Event::Orphaned, Event::Unregister)),
            recv(inbox.control) -> control => Some(control.map_or(Event::Orphaned, Event::Control)),
            recv(private) -> written => written.ok().map(Event::Written),
            recv(inbox.history) -> request => Some(request.map_or(Event::Orphaned, Event::Request)),
            recv(timer) -> _ => Some(Event::Timer),
        };
        match event {
            Some(event) => return event,
            // The store is gone (shutdown): a closed channel would win
            // every select from now on.
            None => *private = crossbeam_channel::never(),
        }
    }
}

/// One event from any of the channels.
enum Event {
    Register(ConnHandle),
    Unregister(ConnId),
    Control(Control),
    Written(Written),
    Request(QueryRequest),
    /// The presence batch is due.
    FlushPresence,
    /// A presence batch or a typing deadline is due.
    Timer,
    /// Every [`HubHandle`] is gone: nobody can register or shut down.
    Orphaned,
}

impl Hub {
    fn run(mut self, inbox: HubInbox) {
        // When the last presence batch went out (none yet).
        let mut last_flush: Option<Instant> = None;
        // Replaced by `never()` once its writer (the store) is gone.
        let mut private = inbox.private.clone();
        loop {
            // Presence pending: it is due one interval after the last batch,
            // and then it goes first. (As the select's last arm alone it
            // would wait for every channel to be empty, which in a connect
            // storm is not until the storm is over.)
            let presence_due = (!self.pending_presence.is_empty())
                .then(|| last_flush.map_or_else(Instant::now, |t| t + PRESENCE_FLUSH_INTERVAL));
            let event = if presence_due.is_some_and(|due| Instant::now() >= due) {
                Event::FlushPresence
            } else {
                let wake_at = match (presence_due, self.typing.next_due()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                next_event(&inbox, &mut private, wake_at)
            };
            let started = Instant::now();
            match event {
                Event::Register(conn) => self.register(conn),
                Event::Unregister(id) => self.remove(id, None),
                Event::Control(Control::CloseSession { session, closed }) => {
                    self.close_session(session);
                    let _ = closed.try_send(());
                }
                Event::Control(Control::CloseUser {
                    user,
                    keep,
                    reason,
                    closed,
                }) => {
                    self.close_user(user, keep, reason);
                    let _ = closed.try_send(());
                }
                Event::Control(Control::Shutdown) | Event::Orphaned => break,
                Event::Control(Control::Typing { from, to, typing }) => {
                    self.typing_signal(from, to, typing);
                }
                Event::Control(Control::BlockChanged {
                    blocker,
                    blocked,
                    on,
                }) => self.block_changed(blocker, blocked, on),
                // A presence batch that is due goes at the top of the loop.
                Event::Timer => self.typing_due(),
                Event::Written(written) => self.route(written),
                Event::Request(request) => self.hand_to_pool(request),
                Event::FlushPresence => {
                    self.flush_presence();
                    last_flush = Some(Instant::now());
                }
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
        let everyone = || {
            online
                .iter()
                .map(|(id, entry)| OnlineUser {
                    id: *id,
                    nickname: &entry.nickname,
                })
                .collect()
        };
        let apart = self.privacy.kept_apart(conn.user_id);
        let online_users = if apart.is_empty() {
            self.online_list.frame_for(conn.user_id, everyone)
        } else {
            // Someone blocked: this user's own list, left out of the kept
            // encoding (rare, so encoded afresh).
            let mut users: Vec<OnlineUser<'_>> = everyone();
            users.retain(|u| u.id != conn.user_id && !apart.contains(&u.id));
            ServerEvent::OnlineUsers { users }.to_frame()
        };
        let (id, user_id) = (conn.id, conn.user_id);
        let nickname = conn.nickname.clone();
        self.conns.insert(id, conn);
        self.tick += 1;
        self.registered_at.insert(id, self.tick);
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

    fn close_session(&mut self, session: SessionId) {
        let ids: Vec<ConnId> = self
            .conns
            .values()
            .filter(|c| c.session_id == session)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.remove(id, Some(CloseReason::LoggedOut));
        }
    }

    fn close_user(&mut self, user: UserId, keep: Option<SessionId>, reason: CloseReason) {
        let ids: Vec<ConnId> = self
            .online
            .get(&user)
            .map(|entry| entry.conns.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|id| {
                self.conns
                    .get(id)
                    .is_some_and(|c| Some(c.session_id) != keep)
            })
            .collect();
        for id in ids {
            self.remove(id, Some(reason));
        }
    }

    /// What the database writer reports, in commit order.
    fn route(&mut self, written: Written) {
        match written {
            Written::Committed(committed) => self.deliver(committed),
            Written::Repeated { message, origin } => {
                // The recipient got it the first time, if online.
                let delivered = self.online.contains_key(&message.receiver_id);
                self.acknowledge(&message, None, &origin, delivered);
            }
            Written::Failed {
                to_user_id,
                origin,
                error,
            } => self.refuse(origin, error, None, Some(to_user_id), None),
            Written::Refused {
                message_id,
                action,
                origin,
                error,
            } => self.refuse(origin, error, Some(message_id), None, Some(action)),
        }
    }

    /// Tells the connection that asked that the database refused its send
    /// (`to_user_id`) or its action on a message (`action`, `message_id`).
    fn refuse(
        &mut self,
        origin: Origin,
        error: StoreError,
        message_id: Option<MessageId>,
        to_user_id: Option<UserId>,
        action: Option<&'static str>,
    ) {
        let Origin::Connection { conn, client_id } = origin else {
            return;
        };
        let refused = ChatError::from_store(error);
        if let ChatError::Store(error) = &refused {
            let doing = action.unwrap_or("private_message");
            log::error!("connection {conn}: {doing}: {error}");
        }
        if action.is_none() {
            self.metrics.count_failure(refused.code());
        }
        let frame = ServerEvent::MessageFailed {
            message_id,
            to_user_id,
            action,
            client_id: client_id.as_deref(),
            error: refused.code(),
            retry_after_ms: None,
            seq: None,
        }
        .to_frame();
        self.push(conn, Outbound::Frame(frame));
    }

    /// Hands a committed change to every connection of its audience (but
    /// the one that made it, when that one gets an answer instead).
    fn deliver(&mut self, committed: Committed) {
        let Committed {
            seq,
            change,
            origin,
        } = committed;
        let frame = change.frame(seq).to_frame();
        match &change {
            Change::MessageStored { message, .. } => {
                self.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
                // Sending ends typing to that partner.
                if let Some(stop) = self.typing.stop(message.sender_id, message.receiver_id) {
                    self.send_typing(stop);
                }
                let item = || Outbound::change(seq, Some(message.id), &frame);
                let mut delivered = false;
                for id in self.conns_of(message.receiver_id) {
                    if self.push(id, item()) {
                        delivered = true;
                        self.metrics
                            .messages_delivered
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
                let answered = origin.conn();
                for id in self.conns_of(message.sender_id) {
                    if Some(id) != answered {
                        self.push(id, item());
                    }
                }
                if !delivered {
                    self.push.offer(message);
                }
                self.acknowledge(message, Some(seq), &origin, delivered);
            }
            Change::ConversationRead {
                reader_id,
                partner_id,
                ..
            } => {
                // The partner learns it only while both send receipts.
                let mut audience = vec![*reader_id];
                if self.privacy.receipts_between(*reader_id, *partner_id) {
                    audience.push(*partner_id);
                }
                self.fan_out(&audience, seq, &frame);
            }
            Change::MessageEdited { .. }
            | Change::MessageDeleted { .. }
            | Change::Reaction { .. }
            | Change::ExpiryChanged { .. } => self.fan_out(&change.audience(), seq, &frame),
        }
    }

    /// Queues a change's frame on every connection of `users`.
    fn fan_out(&mut self, users: &[UserId], seq: crate::changes::Seq, frame: &Utf8Bytes) {
        for user in users {
            for id in self.conns_of(*user) {
                self.push(id, Outbound::change(seq, None, frame));
            }
        }
    }

    /// Answers the connection that sent `message`, if one did:
    /// `message_delivered` when a recipient connection got it, otherwise
    /// `message_failed` with `recipient_offline`. `seq`: the change that
    /// stored it, `None` for a repeated `client_id`.
    fn acknowledge(
        &mut self,
        message: &Message,
        seq: Option<crate::changes::Seq>,
        origin: &Origin,
        delivered: bool,
    ) {
        let Origin::Connection { conn, client_id } = origin else {
            return;
        };
        let answer = if delivered {
            ServerEvent::MessageDelivered {
                message_id: message.id,
                to_user_id: message.receiver_id,
                client_id: client_id.as_deref(),
                timestamp: crate::models::format_timestamp(&message.created_at),
                seq,
            }
        } else {
            self.metrics.count_failure("recipient_offline");
            ServerEvent::MessageFailed {
                message_id: Some(message.id),
                to_user_id: Some(message.receiver_id),
                action: None,
                client_id: client_id.as_deref(),
                error: "recipient_offline",
                retry_after_ms: None,
                seq,
            }
        };
        let frame = answer.to_frame();
        // The answer to a fresh send is this connection's delivery of the
        // change; a repeat's answer is about an old one.
        let item = match seq {
            Some(seq) => Outbound::change(seq, Some(message.id), &frame),
            None => Outbound::Frame(frame),
        };
        self.push(*conn, item);
    }

    /// Gives a history or sync request to the query pool, which answers in
    /// the connection's outbox; a full pool is answered at once with an
    /// `error` frame saying when to retry.
    fn hand_to_pool(&mut self, request: QueryRequest) {
        let Some(conn) = self.conns.get(&request.conn) else {
            return; // the connection is gone: nobody to answer
        };
        let job = QueryJob {
            request,
            outbox: conn.outbox.clone(),
            close_signal: conn.close_signal.clone(),
        };
        if let Err(job) = self.queries.try_submit(job) {
            self.metrics.queries_refused.fetch_add(1, Ordering::Relaxed);
            let frame = ServerEvent::Error {
                error: "the server is busy answering other requests; retry later",
                retry_after_ms: Some(
                    u64::try_from(QUERY_RETRY_AFTER.as_millis()).unwrap_or(u64::MAX),
                ),
            }
            .to_frame();
            // A page's answer: it frees the connection's page slot.
            self.push(job.request.conn, Outbound::Page(frame));
        }
    }

    /// Tells two users who were just kept apart (or brought back together)
    /// that the other went offline (or is online), where they are online.
    fn block_changed(&mut self, blocker: UserId, blocked: UserId, on: bool) {
        if !on && self.privacy.blocked_between(blocker, blocked) {
            return; // still apart: the other one blocks too
        }
        for (viewer, seen) in [(blocker, blocked), (blocked, blocker)] {
            let Some(nickname) = self.online.get(&seen).map(|e| e.nickname.clone()) else {
                continue;
            };
            let user = OnlineUser {
                id: seen,
                nickname: &nickname,
            };
            let Some(change) = PresenceChange::new(user, !on, self.tick) else {
                continue;
            };
            let changes: Arc<[PresenceChange]> = Arc::from([change]);
            for id in self.conns_of(viewer) {
                let item = Outbound::Presence {
                    changes: changes.clone(),
                    from: 0,
                    own_user: viewer,
                };
                self.push(id, item);
            }
        }
    }

    /// A client's typing frame: passed on (now, later or never: see
    /// [`super::typing`]) unless either blocked the other.
    fn typing_signal(&mut self, from: UserId, to: UserId, typing: bool) {
        // Nobody to tell while the partner is offline (and nothing kept:
        // typing to a thousand made-up ids costs no memory).
        if from == to || !self.online.contains_key(&to) || self.privacy.blocked_between(from, to) {
            return;
        }
        if let Some(frame) = self.typing.signal(from, to, typing, Instant::now()) {
            self.send_typing(frame);
        }
    }

    /// Typing changes held back by the rate, and starts that lapsed.
    fn typing_due(&mut self) {
        for frame in self.typing.due(Instant::now()) {
            self.send_typing(frame);
        }
    }

    fn send_typing(&mut self, frame: TypingFrame) {
        let encoded = ServerEvent::Typing {
            from_user_id: frame.from,
            state: if frame.typing { "start" } else { "stop" },
        }
        .to_frame();
        for id in self.conns_of(frame.to) {
            self.push(id, Outbound::Frame(encoded.clone()));
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
        self.tick += 1;
        let user = OnlineUser { id, nickname };
        if online {
            self.online_list.came_online(user.clone());
        } else {
            self.online_list.someone_left();
        }
        self.pending_presence.push(user, online, self.tick);
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
        let Some(first_tick) = changes.first().map(|c| c.tick) else {
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
            let from = if registered < first_tick {
                0
            } else {
                changes.partition_point(|c| c.tick <= registered)
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

    /// Forgets connection `id`, telling its writer to send `reason` (`None`:
    /// nothing to send, the connection is already ending), and announces
    /// their user offline when it was their last one.
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
            for stop in self.typing.left(conn.user_id) {
                self.send_typing(stop);
            }
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

#[cfg(test)]
mod tests {
    //! The hub's order, with every channel full before it starts: the
    //! worst case for a select that picked ready channels at random.

    use std::collections::VecDeque;
    use std::time::Instant;

    use super::*;
    use crate::changes::Committed;
    use crate::config::Durability;
    use crate::repo::SqliteStore;
    use crate::ws::outbox::{OutboxReceiver, Waited, outbox};

    fn conn(id: ConnId, user_id: UserId) -> (ConnHandle, OutboxReceiver) {
        let (outbox, receiver) = outbox(64);
        let handle = ConnHandle {
            id,
            user_id,
            nickname: format!("user{user_id}"),
            session_id: id as SessionId,
            outbox,
            close_signal: Arc::new(CloseSignal::default()),
        };
        (handle, receiver)
    }

    /// Starts a hub on the given channels, with a query pool on a real
    /// (empty) store.
    fn start(inbox: HubInbox) -> (tempfile::TempDir, JoinHandle<()>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(
            &dir.path().join("hub.db"),
            Durability::Normal,
            crate::changes::nowhere(),
        )
        .expect("store");
        let metrics = Arc::new(Metrics::default());
        let queries = QueryPool::spawn(Arc::new(store), metrics.clone(), 1, 8).expect("pool");
        (
            dir,
            spawn(
                inbox,
                queries,
                metrics.clone(),
                Arc::default(),
                PushQueue::nowhere(metrics),
            )
            .expect("hub"),
        )
    }

    /// Returns once the hub has handled everything queued in the register
    /// and unregister channels (the control channel comes after them).
    fn barrier(hub: &HubHandle) {
        let (closed, all_closed) = crossbeam_channel::bounded(1);
        assert!(hub.control(Control::CloseSession {
            session: SessionId::MAX,
            closed,
        }));
        all_closed
            .recv_timeout(Duration::from_secs(10))
            .expect("the hub answers");
    }

    fn next_items(receiver: &OutboxReceiver, count: usize) -> Vec<Outbound> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut items = VecDeque::new();
        while items.len() < count {
            assert_eq!(receiver.wait(deadline, &mut items), Waited::Frames);
        }
        items.into()
    }

    #[test]
    fn a_connections_unregister_is_never_handled_before_its_register() {
        let (hub, _sink, inbox) = channels();
        let mut receivers = Vec::new();
        // Unregister right behind register, for many connections, all
        // queued before the hub runs.
        for id in 1..=2_000 {
            let (handle, receiver) = conn(id, id as UserId);
            assert!(hub.register(handle));
            assert!(hub.unregister(id));
            receivers.push(receiver);
        }
        let (_dir, thread) = start(inbox);
        // Every connection got its online_users: every register is done.
        for receiver in &receivers {
            next_items(receiver, 1);
        }
        barrier(&hub);
        let ghosts: Vec<UserId> = (1..=2_000).filter(|user| hub.is_online(*user)).collect();
        assert!(ghosts.is_empty(), "still online: {ghosts:?}");
        hub.control(Control::Shutdown);
        thread.join().expect("hub thread");
    }

    #[test]
    fn a_connection_registered_before_a_commit_gets_it_live() {
        let (hub, sink, inbox) = channels();
        // The change is queued first; the registration, sent before the
        // writer would have emitted it, is handled before it all the same.
        let message = Message::new(1, 1, 2, "hi".into(), chrono::Utc::now());
        sink.send(Written::Committed(Committed {
            seq: 1,
            change: Change::MessageStored {
                message,
                sender_nickname: "user1".into(),
            },
            origin: Origin::Request,
        }))
        .expect("queued");
        let (handle, receiver) = conn(7, 2);
        assert!(hub.register(handle));
        let (_dir, thread) = start(inbox);
        let items = next_items(&receiver, 2);
        assert!(
            matches!(&items[0], Outbound::Frame(f) if f.as_str().contains("online_users")),
            "{items:?}"
        );
        assert!(
            matches!(&items[1], Outbound::Change { seq: 1, message_id: Some(1), frame }
                if frame.as_str().contains(r#""type":"private_message""#)),
            "{items:?}"
        );
        hub.control(Control::Shutdown);
        thread.join().expect("hub thread");
    }
}
