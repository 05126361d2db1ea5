//! Fuzzes what an upload's bytes go through before they are stored: the
//! `multipart/form-data` parser (any body a client can post as a form),
//! then the type sniffer and the metadata remover on the file it yields.
//! Each must return a value or an error, never panic; the file taken out
//! of a form is never larger than the limit.
#![no_main]

use chat_server::files::image::strip_metadata;
use chat_server::files::sniff::sniff;
use chat_server::http::multipart::extract_file;
use libfuzzer_sys::fuzz_target;

/// The boundary the seed forms use.
const BOUNDARY: &str = "fuzzboundary";
/// A small limit, so that "too large" is reached too.
const MAX_BYTES: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let mut file = Vec::new();
    if let Ok(part) = extract_file(data, BOUNDARY, &mut file, MAX_BYTES) {
        assert_eq!(part.size, file.len() as u64);
        assert!(part.size <= MAX_BYTES);
    }
    // The bytes as a raw upload, and the form's file if there was one.
    for bytes in [data, &file[..]] {
        let sniffed = sniff(bytes);
        if let Some(cleaned) = strip_metadata(bytes, sniffed.mime) {
            assert_eq!(sniff(&cleaned).mime, sniffed.mime);
        }
    }
});
