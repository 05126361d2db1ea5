//! `GET /api/search?q=TEXT[&user_id=N][&limit=L][&before=CURSOR]`.

use super::guards::authenticate;
use super::handlers::chat_error;
use super::{ApiError, HttpRequest, Reply, query_i64, query_text};
use crate::app::App;
use crate::chat::search::{self, SearchRequest};

pub fn search(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let query = request.query.as_str();
    let asked = SearchRequest {
        q: query_text(query, "q").unwrap_or_default(),
        user_id: query_i64(query, "user_id")?,
        limit: query_i64(query, "limit")?,
        before: query_text(query, "before"),
    };
    let page = search::search(&*app.store, user.id, &asked).map_err(chat_error)?;
    Ok(Reply::ok(page))
}
