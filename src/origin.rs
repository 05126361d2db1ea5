//! Which browser origins may use the server: open a WebSocket (against
//! cross-site WebSocket hijacking) or send a state-changing REST request
//! (against cross-site request forgery).
//!
//! Requests without an `Origin` header (curl, scripts, the terminal client)
//! are not from a browser page and are not checked; browsers always send one
//! on WebSocket handshakes and POSTs.

use std::net::SocketAddr;

/// The origins a browser may open WebSockets from: the HTTP server's own
/// (for a loopback address, both its `127.0.0.1` and `localhost` spellings)
/// and every `--allowed-origin`. Exact matches only: no wildcards, no
/// prefixes, so `http://localhost:8080.evil.com` is not `http://localhost:8080`.
pub fn allowed_origins(http_addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = http_addr.port();
    let mut origins = Vec::new();
    if http_addr.ip().is_loopback() || http_addr.ip().is_unspecified() {
        origins.push(format!("http://localhost:{port}"));
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://[::1]:{port}"));
    }
    if !http_addr.ip().is_unspecified() {
        origins.push(format!("http://{http_addr}"));
    }
    origins.extend(extra.iter().map(|o| normalize_origin(o)));
    origins.sort();
    origins.dedup();
    origins
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

pub fn is_allowed(allowed: &[String], origin: &str) -> bool {
    let origin = normalize_origin(origin);
    allowed.contains(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly() {
        let allowed = allowed_origins(
            "127.0.0.1:8080".parse().expect("addr"),
            &["https://Chat.Example.org/".to_string()],
        );
        assert!(is_allowed(&allowed, "http://127.0.0.1:8080"));
        assert!(is_allowed(&allowed, "http://localhost:8080"));
        assert!(is_allowed(&allowed, "https://chat.example.org"));
        assert!(!is_allowed(&allowed, "http://localhost:8081"));
        assert!(!is_allowed(&allowed, "http://localhost:8080.evil.com"));
        assert!(!is_allowed(&allowed, "https://evil.com"));
        assert!(!is_allowed(&allowed, "null"));
    }
}
