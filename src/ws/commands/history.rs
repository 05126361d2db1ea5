//! `load_history`: a page of one conversation, with the paging rules of
//! `GET /api/messages` (`around_id` included), answered by the query pool
//! through the hub.

use crate::models::{Page, UserId};
use crate::ws::events::ServerEvent;
use crate::ws::queries::Query;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    to_user_id: UserId,
    offset: Option<i64>,
    before_id: Option<i64>,
    limit: Option<i64>,
    around_id: Option<i64>,
) -> bool {
    let page = match Page::from_request(limit, offset, before_id).and_then(|p| p.around(around_id))
    {
        Ok(page) => page,
        Err(error) => return reader.reply(&ServerEvent::error(error)),
    };
    reader.request_page(Query::History {
        to_user_id,
        page,
        offset: offset.unwrap_or(0),
        before_id,
        around_id,
    })
}
