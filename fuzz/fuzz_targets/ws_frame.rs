//! Fuzzes the WebSocket frame → event parser: any text a client can send.
//! It must return an event or an error text, never panic; a reaction's
//! emoji goes through the emoji rule too.
#![no_main]

use chat_server::chat::actions::is_one_emoji;
use chat_server::ws::events::ClientEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match ClientEvent::parse(text) {
            Ok(ClientEvent::React { emoji, .. }) => {
                let _ = is_one_emoji(&emoji);
            }
            Ok(_) => {}
            Err(error) => assert!(!error.is_empty()),
        }
    }
});
