//! Fuzzes the WebSocket frame → event parser: any text a client can send.
//! It must return an event or an error text, never panic; a reaction's
//! emoji goes through the emoji rule too, and a search's query through the
//! query parser, the index query it writes and the highlighter.
#![no_main]

use chat_server::chat::actions::is_one_emoji;
use chat_server::search::{Query, highlights};
use chat_server::ws::events::ClientEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match ClientEvent::parse(text) {
            Ok(ClientEvent::React { emoji, .. }) => {
                let _ = is_one_emoji(&emoji);
            }
            Ok(ClientEvent::Search { q, .. }) => {
                if let Ok(query) = Query::parse(&q) {
                    let index_query = query.to_index_query();
                    // Only quoted words of letters and digits reach the
                    // index: never a quote inside one.
                    assert_eq!(index_query.matches('"').count() % 2, 0);
                    for [start, end] in highlights(&q, &query) {
                        assert!(start < end && end <= q.chars().count());
                    }
                }
            }
            Ok(_) => {}
            Err(error) => assert!(!error.is_empty()),
        }
    }
});
