//! The query pool: a few threads that answer history, sync and search
//! requests for the hub, straight into the asking connection's outbox.
//!
//! The hub never queries the database: a query can take milliseconds, and
//! every connection's live frames wait while the hub does anything. So a
//! reader sends its request to the hub (which knows the connection's
//! outbox), the hub hands it here without waiting, and one of these
//! threads runs it and queues the page. When every thread is busy and the
//! queue is full, the hub answers the client with an `error` frame and
//! `retry_after_ms` instead of waiting.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::events::ServerEvent;
use super::hub::ConnId;
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{Outbox, PushError};
use crate::chat::search::SearchRequest;
use crate::chat::{self, ChatError};
use crate::metrics::Metrics;
use crate::models::{Page, UserId};
use crate::repo::Store;

/// A request for a page, as a connection's reader checked it.
#[derive(Debug)]
pub struct QueryRequest {
    pub conn: ConnId,
    pub user: UserId,
    pub query: Query,
}

/// The pages a connection can ask for.
#[derive(Debug)]
pub enum Query {
    /// `load_history`: a page of the conversation with `to_user_id`.
    History {
        to_user_id: UserId,
        page: Page,
        /// Echoed in the answer, as the client sent them.
        offset: i64,
        before_id: Option<i64>,
        around_id: Option<i64>,
    },
    /// `search`: a page of results.
    Search(SearchRequest),
    /// `sync` with `after_id`: messages after a message id.
    SyncAfterId { after_id: i64, limit: Option<i64> },
    /// `sync` with `since`: changes after a `seq`.
    SyncSince { since: i64, limit: Option<i64> },
}

/// A request with the way to its connection, as the hub hands it over.
pub struct QueryJob {
    pub request: QueryRequest,
    pub outbox: Outbox,
    pub close_signal: Arc<CloseSignal>,
}

/// The hub's side of the pool.
pub struct QueryPool {
    jobs: Sender<QueryJob>,
}

impl QueryPool {
    /// Starts `threads` query threads with a queue of `capacity` requests.
    /// They end when the pool (the hub) is dropped.
    pub fn spawn(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        threads: usize,
        capacity: usize,
    ) -> std::io::Result<QueryPool> {
        let (jobs, queue) = crossbeam_channel::bounded(capacity);
        for n in 0..threads {
            let (store, metrics, queue) = (store.clone(), metrics.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("query-{n}"))
                .spawn(move || answer_all(&*store, &metrics, &queue))?;
        }
        Ok(QueryPool { jobs })
    }

    /// Queues a job without waiting; gives it back when the queue is full.
    pub fn try_submit(&self, job: QueryJob) -> Result<(), Box<QueryJob>> {
        match self.jobs.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => Err(Box::new(job)),
        }
    }
}

fn answer_all(store: &dyn Store, metrics: &Metrics, queue: &Receiver<QueryJob>) {
    for job in queue {
        let QueryJob {
            request,
            outbox,
            close_signal,
        } = job;
        if close_signal.reading_ended() {
            continue; // closed while it waited: nobody reads the answer
        }
        let conn = request.conn;
        // Tests hold a query thread here to fill the queue
        // (tests/pause_points.rs).
        fail::fail_point!("ws::query");
        let answer = answer(store, request);
        match outbox.push(answer) {
            Ok(()) | Err(PushError::Closed) => {}
            Err(PushError::Full) => {
                log::warn!("connection {conn}: too slow; closing it");
                metrics.outbox_drops.fetch_add(1, Ordering::Relaxed);
                close_signal.close(CloseReason::TooSlow);
            }
        }
    }
}

/// Runs one request: the page, or the `error` frame that answers it.
fn answer(store: &dyn Store, request: QueryRequest) -> Outbound {
    let QueryRequest { conn, user, query } = request;
    let (outcome, doing) = match query {
        Query::History {
            to_user_id,
            page,
            offset,
            before_id,
            around_id,
        } => (
            chat::history(store, user, to_user_id, page).map(|messages| {
                let frame = ServerEvent::History {
                    to_user_id,
                    offset,
                    before_id,
                    around_id,
                    messages: &messages,
                }
                .to_frame();
                Outbound::Page(frame)
            }),
            "loading history",
        ),
        Query::Search(asked) => (
            chat::search::search(store, user, &asked).map(|page| {
                let frame = ServerEvent::Search {
                    q: &asked.q,
                    user_id: asked.user_id,
                    results: &page.results,
                    next: page.next.as_deref(),
                }
                .to_frame();
                Outbound::Page(frame)
            }),
            "searching",
        ),
        Query::SyncAfterId { after_id, limit } => (
            chat::sync(store, user, Some(after_id), limit).map(|(messages, has_more)| {
                Outbound::SyncPage {
                    after_id,
                    messages,
                    has_more,
                }
            }),
            "syncing",
        ),
        Query::SyncSince { since, limit } => (
            chat::changes_since(store, user, Some(since), limit).map(|(changes, has_more)| {
                Outbound::ChangesPage {
                    since,
                    changes: changes
                        .iter()
                        .map(|(seq, change)| (*seq, change.frame(*seq).to_frame()))
                        .collect(),
                    has_more,
                }
            }),
            "syncing",
        ),
    };
    outcome.unwrap_or_else(|error| {
        if let ChatError::Store(store_error) = &error {
            log::error!("connection {conn}: {doing}: {store_error}");
        }
        Outbound::Page(ServerEvent::error(&error.to_string()).to_frame())
    })
}
