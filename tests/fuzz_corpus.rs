//! Replays the fuzzing corpora (`fuzz/corpus/`) as ordinary tests, so every
//! input the fuzzers keep, including any crash found and added there,
//! stays a regression test of `cargo test`.

mod common;
#[path = "../fuzz/fuzz_targets/http_input.rs"]
mod http_input;
#[path = "../fuzz/fuzz_targets/http_socket_input.rs"]
mod http_socket_input;

use std::path::Path;

use chat_server::http::route;
use chat_server::ws::events::ClientEvent;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| std::fs::read(entry.expect("entry").path()).expect("read input"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "empty corpus {}", dir.display());
    inputs
}

#[test]
fn ws_frame_corpus_parses_without_panicking() {
    let mut parsed = 0;
    for input in corpus("ws_frame") {
        let Ok(text) = std::str::from_utf8(&input) else {
            continue;
        };
        match ClientEvent::parse(text) {
            Ok(ClientEvent::Search { q, .. }) => {
                if let Ok(query) = chat_server::search::Query::parse(&q) {
                    let _ = query.to_index_query();
                    let _ = chat_server::search::highlights(&q, &query);
                }
                parsed += 1;
            }
            Ok(_) => parsed += 1,
            Err(_) => {}
        }
    }
    assert!(parsed >= 10, "the seed frames are valid events");
}

#[test]
fn http_request_corpus_gets_sound_answers() {
    let fixture = http_input::fixture();
    let mut answered = 0;
    for input in corpus("http_request") {
        let Some((&first, rest)) = input.split_first() else {
            continue;
        };
        let cookie = (first % 2 == 1).then_some(fixture.cookie.as_str());
        if let Some(request) = http_input::parse(rest, cookie) {
            http_input::check(&route(&fixture.app, &request));
            answered += 1;
        }
    }
    assert!(answered >= 10, "the seed requests parse");
}

#[test]
fn http_socket_corpus_gets_sound_answers_from_a_real_server() {
    let server = common::TestServer::start();
    let addr = format!("127.0.0.1:{}", server.http_port())
        .parse()
        .expect("address");
    let inputs = corpus("http_socket");
    assert!(inputs.len() >= 20, "the seed requests");
    for input in inputs {
        http_socket_input::check(&http_socket_input::exchange(addr, &input));
    }
    http_socket_input::assert_alive(addr);
}

#[test]
fn upload_body_corpus_is_parsed_without_panicking() {
    use chat_server::files::image::strip_metadata;
    use chat_server::files::sniff::sniff;
    use chat_server::http::multipart::extract_file;
    let mut files = 0;
    for input in corpus("upload_body") {
        let mut file = Vec::new();
        if let Ok(part) = extract_file(&input[..], "fuzzboundary", &mut file, 4096) {
            assert_eq!(part.size, file.len() as u64);
            files += 1;
        }
        for bytes in [&input[..], &file[..]] {
            let sniffed = sniff(bytes);
            if let Some(cleaned) = strip_metadata(bytes, sniffed.mime) {
                assert_eq!(sniff(&cleaned).mime, sniffed.mime);
            }
        }
    }
    assert!(files >= 3, "the seed forms hold files");
}
