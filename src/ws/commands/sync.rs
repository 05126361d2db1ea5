//! `sync`: everything to or by me after a message id, for a client catching
//! up after a reconnect. The page goes through the writer, which drops what
//! it already sent live (`ws::exactly_once`).

use crate::chat;
use crate::ws::outbound::Outbound;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(reader: &Reader, after_id: i64, limit: Option<i64>) -> bool {
    match chat::sync(&reader.app, reader.user.id, Some(after_id), limit) {
        Ok((messages, has_more)) => reader.queue_page(Outbound::SyncPage {
            after_id,
            messages,
            has_more,
        }),
        Err(e) => reader.reply_error(&e, "syncing"),
    }
}
