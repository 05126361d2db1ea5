//! A connection's writer thread: the only one that writes to its socket.
//! It sends what the outbox holds (dropping live changes a sync page
//! already sent, see [`super::exactly_once`]), pings on schedule, and
//! closes when told to, when the session ends, or when the queue ends.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::events::{ServerEvent, sync_changes_frame};
use super::exactly_once::ExactlyOnce;
use super::frame_writer::FrameWriter;
use super::hub::ConnId;
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{OutboxReceiver, Waited};
use super::presence::{PresenceForm, presence_frames};
use crate::privacy::Privacy;

/// Time allowed to write one batch of frames to the client. A client that
/// does not drain its socket for this long is gone or hostile.
pub const WRITE_WAIT: Duration = Duration::from_secs(10);

/// What the writer takes from: frames to send, and the page slot it gives
/// back after each history or sync page.
pub(super) struct WriterQueues {
    pub(super) outbox: OutboxReceiver,
    pub(super) page_written: Receiver<()>,
}

/// What the writer knows of its connection: when to act without being
/// asked (pings, the session's end), how the client wants presence, and
/// whose presence it must not see (blocks).
pub(super) struct WriterSettings {
    pub(super) ping_interval: Duration,
    pub(super) session_ends: Instant,
    pub(super) presence_form: PresenceForm,
    pub(super) privacy: Arc<Privacy>,
}

/// The writer thread: sends queued frames, pings on schedule, and closes the
/// socket when told to or when the queue ends.
pub(super) fn write_loop(
    id: ConnId,
    mut ws: FrameWriter,
    queues: &WriterQueues,
    close_signal: &CloseSignal,
    settings: WriterSettings,
) {
    let result = write_until_closed(&mut ws, queues, close_signal, settings);
    if let Err(e) = result {
        log::debug!("connection {id}: write failed: {e}");
    }
    // Wakes the reader if it is still waiting for data.
    ws.shutdown();
}

fn write_until_closed(
    ws: &mut FrameWriter,
    queues: &WriterQueues,
    close_signal: &CloseSignal,
    settings: WriterSettings,
) -> io::Result<()> {
    let WriterSettings {
        ping_interval,
        session_ends,
        presence_form,
        privacy,
    } = settings;
    // Sync by message id (`after_id`) and by change (`since`).
    let mut by_message_id = ExactlyOnce::default();
    let mut by_seq = ExactlyOnce::default();
    let mut next_ping = Instant::now() + ping_interval;
    let mut batch = VecDeque::new();
    loop {
        // Frames, or the ping deadline (below), or the session's end, or
        // the end.
        if queues.outbox.wait(next_ping.min(session_ends), &mut batch) == Waited::Finished {
            // The hub and the reader both let go: a normal end.
            return ws.close(CloseReason::Normal);
        }
        if Instant::now() >= session_ends {
            return ws.close(CloseReason::SessionExpired);
        }
        // Write everything queued, then flush once: one syscall for a burst
        // instead of one per frame.
        while let Some(out) = batch.pop_front() {
            if let Some(reason) = close_signal.requested() {
                return ws.close(reason);
            }
            match out {
                Outbound::Frame(text) => ws.text(text)?,
                Outbound::Change {
                    seq,
                    message_id,
                    frame,
                } => {
                    // Both remember it (no short circuit).
                    let new_by_id = message_id.is_none_or(|id| by_message_id.live(id));
                    if by_seq.live(seq) & new_by_id {
                        ws.text(frame)?;
                    }
                }
                Outbound::ChangesPage {
                    since,
                    mut changes,
                    has_more,
                } => {
                    let next_since = changes.last().map_or(since, |(seq, _)| *seq);
                    let reached_live = by_seq.sync(&mut changes, |(seq, _)| *seq);
                    let frames: Vec<_> = changes.into_iter().map(|(_, frame)| frame).collect();
                    ws.text(sync_changes_frame(
                        since,
                        &frames,
                        has_more && !reached_live,
                        next_since,
                    ))?;
                    let _ = queues.page_written.try_recv();
                }
                Outbound::SyncPage {
                    after_id,
                    mut messages,
                    has_more,
                } => {
                    let reached_live = by_message_id.sync(&mut messages, |m| m.id);
                    let page = ServerEvent::Sync {
                        after_id,
                        messages: &messages,
                        has_more: has_more && !reached_live,
                    };
                    ws.text(page.to_frame())?;
                    let _ = queues.page_written.try_recv();
                }
                Outbound::Page(frame) => {
                    ws.text(frame)?;
                    let _ = queues.page_written.try_recv();
                }
                Outbound::Presence {
                    changes,
                    from,
                    own_user,
                } => {
                    let news = changes.get(from..).unwrap_or_default();
                    let apart = privacy.kept_apart(own_user);
                    for frame in presence_frames(news, own_user, presence_form, &apart) {
                        ws.text(frame)?;
                    }
                }
                Outbound::Pong(payload) => ws.pong(payload)?,
                Outbound::Close(reason) => return ws.close(reason),
            }
            if batch.is_empty() {
                queues.outbox.take(&mut batch);
            }
        }
        // Pinged on schedule even when frames never stop coming: the client
        // may be only listening, and its reader times out without traffic.
        if Instant::now() >= next_ping {
            ws.ping()?;
            next_ping = Instant::now() + ping_interval;
        }
        ws.flush()?;
    }
}
