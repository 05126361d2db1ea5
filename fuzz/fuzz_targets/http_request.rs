//! Fuzzes the REST handlers: the input is a raw request (request line,
//! headers, blank line, body) handed to `http::route` on a real store and
//! hub. No input may panic, answer 5xx, or produce a body that is not JSON.
#![no_main]

mod http_input;

use chat_server::http::route;
use http_input::{check, fixture, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let fixture = fixture();
    let cookie = (first % 2 == 1).then_some(fixture.cookie.as_str());
    if let Some(request) = parse(rest, cookie) {
        check(&route(&fixture.app, &request));
    }
});
