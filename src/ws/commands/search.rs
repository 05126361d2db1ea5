//! `search`: a page of search results, with the rules of
//! `GET /api/search`, answered by the query pool through the hub like a
//! history page (the query is parsed there, off this thread).

use crate::chat::search::SearchRequest;
use crate::ws::queries::Query;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(reader: &Reader, request: SearchRequest) -> bool {
    reader.request_page(Query::Search(request))
}
