//! `sync`: what happened while a client was away. With `since`, every
//! change after a `seq`; with `after_id`, the older form, every message to
//! or by me after a message id. The query pool answers through the hub,
//! and the writer drops what it already sent live (`ws::exactly_once`).

use crate::ws::events::ServerEvent;
use crate::ws::queries::Query;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    after_id: Option<i64>,
    since: Option<i64>,
    limit: Option<i64>,
) -> bool {
    let query = match (after_id, since) {
        (Some(after_id), None) => Query::SyncAfterId { after_id, limit },
        (None, Some(since)) => Query::SyncSince { since, limit },
        _ => {
            return reader.reply(&ServerEvent::error(
                "sync needs either since (a seq) or after_id (a message id)",
            ));
        }
    };
    reader.request_page(query)
}
