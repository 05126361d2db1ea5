//! What the `http_socket` fuzz target and the corpus replay test
//! (`tests/fuzz_corpus.rs`) share: raw bytes written to a real server's
//! REST port, and the property every answer must have.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// Long enough for any answer on loopback; a wait this long means the
/// server is stuck on this connection.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Enough of the answer to check its head.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Writes `data` on a fresh connection, half-closes it (so the server sees
/// the end of the input at once instead of waiting for its deadline), and
/// returns what the server answered before it closed.
pub fn exchange(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("the server accepts connections");
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .expect("read timeout");
    // The server may stop reading early (a 431, a bad length): fine.
    let _ = stream.write_all(data);
    let _ = stream.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&chunk[..n]);
                if answer.len() > MAX_ANSWER_BYTES {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("no answer and no close within {ANSWER_TIMEOUT:?}: {e}"),
        }
    }
    answer
}

/// The server's answer starts as an HTTP/1.x status line with a status that
/// blames the client (4xx), or one of the honest 5xx refusals (501
/// unsupported transfer coding, 503 busy, 505 version): never a 500, there
/// or in any pipelined answer after it. (Answers to pipelined requests are
/// not delimited here: a HEAD's has a length and no body.)
pub fn check(answer: &[u8]) {
    if answer.is_empty() {
        return; // closed without a word: an input that ended mid-request
    }
    let text = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    let status: u16 = text
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| text.strip_prefix("HTTP/1.0 "))
        .and_then(|line| line.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {text:?}"));
    assert!(
        status < 500 || matches!(status, 501 | 503 | 505),
        "answered {status}: {text:?}"
    );
    for internal_error in [&b"HTTP/1.1 500 "[..], b"HTTP/1.0 500 "] {
        assert!(
            find(answer, internal_error).is_none(),
            "a pipelined answer was a 500: {:?}",
            String::from_utf8_lossy(answer)
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The server is still whole: `/healthz` answers 200.
pub fn assert_alive(addr: SocketAddr) {
    let answer = exchange(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "/healthz: {:?}",
        String::from_utf8_lossy(&answer)
    );
}
