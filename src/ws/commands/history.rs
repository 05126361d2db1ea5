//! `load_history`: a page of one conversation, with the paging rules of
//! `GET /api/messages`.

use crate::chat;
use crate::models::{Page, UserId};
use crate::ws::events::ServerEvent;
use crate::ws::outbound::Outbound;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    to_user_id: UserId,
    offset: Option<i64>,
    before_id: Option<i64>,
    limit: Option<i64>,
) -> bool {
    let page = match Page::from_request(limit, offset, before_id) {
        Ok(page) => page,
        Err(error) => return reader.reply(&ServerEvent::Error { error }),
    };
    match chat::history(&reader.app, reader.user.id, to_user_id, page) {
        Ok(messages) => {
            let frame = ServerEvent::History {
                to_user_id,
                offset: offset.unwrap_or(0),
                before_id,
                messages: &messages,
            }
            .to_frame();
            reader.queue_page(Outbound::HistoryPage(frame))
        }
        Err(e) => reader.reply_error(&e, "loading history"),
    }
}
