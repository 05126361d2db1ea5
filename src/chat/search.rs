//! Searching one's conversations: the single entry point for
//! `GET /api/search` and the WebSocket's `search` frame.

use serde::Serialize;

use super::ChatError;
use crate::models::{Message, UserId};
use crate::repo::{Store, StoreError};
use crate::search::{self, Query};

/// Results per page, unless the client asks for fewer.
pub const DEFAULT_LIMIT: u32 = 20;
/// Most results per page.
pub const MAX_LIMIT: u32 = 50;

/// A search as a client asked for it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub q: String,
    /// Only the conversation with this user.
    pub user_id: Option<UserId>,
    pub limit: Option<i64>,
    /// The `next` of the previous page.
    pub before: Option<String>,
}

/// One page of results, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct SearchPage {
    pub results: Vec<Hit>,
    /// Where the next page starts; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A message that matched, and where: `[start, end)` character ranges of
/// its content.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    pub message: Message,
    pub highlights: Vec<[usize; 2]>,
}

/// The messages of `me`'s conversations that match `request.q`.
pub fn search(
    store: &dyn Store,
    me: UserId,
    request: &SearchRequest,
) -> Result<SearchPage, ChatError> {
    let query = Query::parse(&request.q).map_err(ChatError::BadQuery)?;
    let limit = match request.limit {
        None => DEFAULT_LIMIT,
        Some(l) if (1..=i64::from(MAX_LIMIT)).contains(&l) => l as u32,
        Some(_) => return Err(ChatError::BadParameter("limit must be between 1 and 50")),
    };
    // The cursor is the id of the last result shown: a page after it
    // starts below it, whatever was sent or deleted since.
    let before = match request.before.as_deref() {
        None => i64::MAX,
        Some(cursor) => {
            cursor
                .parse::<i64>()
                .ok()
                .filter(|id| *id > 0)
                .ok_or(ChatError::BadParameter(
                    "before must be the next of an earlier answer",
                ))?
        }
    };
    if let Some(partner) = request.user_id
        && store.user(partner)?.is_none()
    {
        return Err(ChatError::UnknownUser);
    }
    let found = store
        .search(
            me,
            request.user_id,
            &query.to_index_query(),
            before,
            limit + 1,
        )
        .map_err(|e| match e {
            StoreError::SearchOff => ChatError::SearchOff,
            other => ChatError::Store(other),
        })?;
    let more = found.len() > limit as usize;
    let results: Vec<Hit> = found
        .into_iter()
        .take(limit as usize)
        .map(|message| Hit {
            highlights: search::highlights(&message.content, &query),
            message,
        })
        .collect();
    let next = more
        .then(|| results.last().map(|hit| hit.message.id.to_string()))
        .flatten();
    Ok(SearchPage { results, next })
}
