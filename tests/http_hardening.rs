//! The HTTP side against a hostile client, through raw sockets: requests
//! that once ended the process or starved the workers (issue 12), each
//! answered with a clear error while everyone else is still served.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use common::{ServerProcess, TestServer};

/// A raw connection to the REST port.
fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", server.http_port())).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Everything the server writes until it closes the connection (or a
/// 10 s guard passes).
fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request` on a fresh connection and returns the whole answer.
fn exchange(server: &TestServer, request: &[u8]) -> String {
    let mut stream = connect(server);
    stream.write_all(request).expect("write");
    read_all(&mut stream)
}

/// Writes `count` bytes, cycling through `bytes`, one every `interval`, on a
/// thread of its own, until done or the server closes.
fn trickle(
    stream: &TcpStream,
    bytes: &'static [u8],
    count: usize,
    interval: Duration,
) -> std::thread::JoinHandle<()> {
    let mut stream = stream.try_clone().expect("clone");
    std::thread::spawn(move || {
        for byte in bytes.iter().cycle().take(count) {
            if stream.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(interval);
        }
    })
}

/// `GET /healthz` from a well-behaved client must answer 200 within `limit`.
fn assert_healthy_within(base: &str, limit: Duration) {
    let started = Instant::now();
    let reply = ureq::get(&format!("{base}/healthz"))
        .timeout(limit)
        .call()
        .unwrap_or_else(|e| panic!("/healthz did not answer within {limit:?}: {e}"));
    assert_eq!(reply.status(), 200);
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"))
}

fn json_error_of(answer: &str) -> String {
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer:?}"));
    value["error"].as_str().expect("error text").to_owned()
}

#[test]
fn a_huge_content_length_with_a_short_body_neither_aborts_nor_kills_a_worker() {
    let server = TestServer::start();
    // 10^12 made tiny_http allocate the unread rest (abort); 2^64-1
    // panicked ("capacity overflow") and took a worker each time. More
    // requests than workers, so a lost worker would show.
    let rounds = server.config.http_threads * 2 + 1;
    for length in ["1000000000000", "18446744073709551615"] {
        for _ in 0..rounds {
            let mut stream = connect(&server);
            let request =
                format!("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nx");
            stream.write_all(request.as_bytes()).expect("write");
            let answer = read_all(&mut stream);
            assert_eq!(status_of(&answer), 200, "{answer}");
        }
        assert_healthy_within(&server.base(), Duration::from_secs(1));
    }
    // A 413 for a huge body, then the connection is closed (the rest of
    // the body is never read), and the server goes on.
    for _ in 0..rounds {
        let answer = exchange(
            &server,
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1000000000000\r\n\r\n{",
        );
        assert_eq!(status_of(&answer), 413, "{answer}");
    }
    assert_healthy_within(&server.base(), Duration::from_secs(1));
}

#[test]
fn slow_bodies_hold_no_worker() {
    let server = TestServer::start();
    let heads: [&[u8]; 3] = [
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n",
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2000\r\n\r\n",
    ];
    let mut stalled = Vec::new();
    for head in heads {
        for _ in 0..server.config.http_threads * 2 {
            let mut stream = connect(&server);
            stream.write_all(head).expect("write");
            stalled.push(stream);
        }
    }
    // Every worker would be waiting on one of those bodies if workers read
    // them; the connections' own threads do.
    assert_healthy_within(&server.base(), Duration::from_secs(1));
    let page = ureq::get(&format!("{}/", server.base()))
        .timeout(Duration::from_secs(1))
        .call()
        .expect("the page answers");
    assert_eq!(page.status(), 200);
    // The one that asked to continue was told to.
    let continued = &mut stalled[server.config.http_threads * 4];
    let mut head = [0u8; 25];
    continued.read_exact(&mut head).expect("100 Continue");
    assert_eq!(&head, b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn a_body_that_trickles_below_the_minimum_rate_is_cut_off_after_the_grace() {
    let server = TestServer::start();
    let mut stream = connect(&server);
    stream
        .write_all(
            b"POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 60000\r\n\r\n",
        )
        .expect("write");
    // One byte every 0.5 s is far below 1 KiB/s: after the 10 s grace the
    // server answers 408 and closes, without the body ever completing.
    let started = Instant::now();
    let writer = trickle(&stream, b" ", 40, Duration::from_millis(500));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    // The 408 comes when the body falls behind.
    expect_408_between(
        &mut stream,
        started,
        Duration::from_secs(9),
        Duration::from_secs(13),
    );
    let _ = writer.join();
}

/// The server answers 408 between `earliest` and `latest` after `started`
/// (then it reads what still arrives for a moment before it closes, so that
/// the answer survives), and closes.
fn expect_408_between(
    stream: &mut TcpStream,
    started: Instant,
    earliest: Duration,
    latest: Duration,
) {
    let answer = first_answer(stream);
    let elapsed = started.elapsed();
    assert_eq!(status_of(&answer), 408, "{answer}");
    assert!(elapsed >= earliest && elapsed < latest, "{elapsed:?}");
    read_all(stream);
    let _ = stream.shutdown(Shutdown::Both);
}

/// The first bytes the server sends (an answer's head fits in one read).
fn first_answer(stream: &mut TcpStream) -> String {
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).expect("an answer");
    String::from_utf8_lossy(&first[..n]).into_owned()
}

#[test]
fn an_endless_header_line_gets_431_after_16_kib_and_the_connection_closes() {
    let server = TestServer::start();
    let mut stream = connect(&server);
    let flood = {
        let mut stream = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let chunk = [b'a'; 16 * 1024];
            let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nX-Flood: ");
            // 256 MiB if nothing stops it; the server stops reading after
            // 16 KiB (and a short linger), closes, and the writes fail.
            for _ in 0..16 * 1024 {
                if stream.write_all(&chunk).is_err() {
                    return true;
                }
            }
            false
        })
    };
    let answer = read_all(&mut stream);
    assert_eq!(status_of(&answer), 431, "{answer}");
    assert_eq!(json_error_of(&answer), "request header fields too large");
    assert!(
        flood.join().expect("flood thread"),
        "the server kept reading"
    );

    let many_headers: String = (0..200).map(|n| format!("X-H{n}: v\r\n")).collect();
    let answer = exchange(
        &server,
        format!("GET /healthz HTTP/1.1\r\n{many_headers}\r\n").as_bytes(),
    );
    assert_eq!(status_of(&answer), 431, "{answer}");
    assert_healthy_within(&server.base(), Duration::from_secs(1));
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline_not_per_read() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(2));
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\n")
        .expect("write");
    let started = Instant::now();
    // Each byte comes well within any per-read timeout.
    let writer = trickle(&stream, b"X-Slow: ", 100, Duration::from_millis(200));
    expect_408_between(
        &mut stream,
        started,
        Duration::from_millis(1900),
        Duration::from_secs(3),
    );
    let _ = writer.join();
}

#[test]
fn an_idle_kept_alive_connection_is_closed() {
    let server = TestServer::start_with(|c| c.keep_alive_timeout = Duration::from_secs(1));
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let started = Instant::now();
    // The answer, then nothing: the server closes the idle connection.
    let answer = read_all(&mut stream);
    assert_eq!(status_of(&answer), 200, "{answer}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[test]
fn ambiguous_or_unsupported_framing_is_refused_and_the_connection_closed() {
    let server = TestServer::start();
    let cases: [(&str, u16, &str); 6] = [
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            400,
            "both Content-Length and Transfer-Encoding are set",
        ),
        (
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            400,
            "conflicting Content-Length headers",
        ),
        (
            "Content-Length: +2\r\n",
            400,
            "Content-Length is not a decimal number",
        ),
        (
            "Content-Length: 99999999999999999999999\r\n",
            400,
            "Content-Length is too large",
        ),
        (
            "Transfer-Encoding: gzip\r\n",
            501,
            "only Transfer-Encoding: chunked is supported",
        ),
        (
            "Transfer-Encoding: gzip, chunked\r\n",
            501,
            "only Transfer-Encoding: chunked is supported",
        ),
    ];
    for (headers, status, error) in cases {
        // A second request rides behind: it must never be answered, since
        // the first cannot be delimited (request smuggling).
        let request = format!(
            "POST /api/login HTTP/1.1\r\nHost: x\r\n{headers}\r\nhello\r\n\
             GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let answer = exchange(&server, request.as_bytes());
        assert_eq!(status_of(&answer), status, "{headers}: {answer}");
        assert_eq!(json_error_of(&answer), error);
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{answer}");
    }
    // The same length twice is one reading, and accepted.
    let answer = exchange(
        &server,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status_of(&answer), 200, "{answer}");
}

#[test]
fn http_connections_over_the_cap_get_503_without_a_thread_and_later_ones_are_served() {
    let server = TestServer::start_with(|c| c.max_http_connections = 4);
    let idle: Vec<TcpStream> = (0..4).map(|_| connect(&server)).collect();
    // The fifth is answered by the acceptor itself, without a request.
    let mut fifth = connect(&server);
    let answer = read_all(&mut fifth);
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert_eq!(json_error_of(&answer), "server busy: too many connections");
    drop(idle);
    // Their slots come back as their threads see the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(
            &server,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if status_of(&answer) == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots never came back: {answer}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_client_that_pipelines_many_requests_gets_every_answer_in_order() {
    let server = TestServer::start();
    let mut stream = connect(&server);
    let count = 1000;
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut batch = String::new();
            for n in 0..count {
                batch.push_str(&format!("GET /healthz?n={n} HTTP/1.1\r\nHost: x\r\n\r\n"));
            }
            batch.push_str("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(batch.as_bytes()).expect("pipelined write");
        })
    };
    let answer = read_all(&mut stream);
    writer.join().expect("writer");
    assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), count + 1);
}

#[test]
fn a_client_that_never_reads_its_answers_holds_no_worker() {
    let server = TestServer::start();
    // Each asks for the page many times and reads nothing: the answers
    // fill the socket buffers, and whoever writes them must wait.
    let mut readers_that_never_read = Vec::new();
    for _ in 0..server.config.http_threads * 2 {
        let mut stream = connect(&server);
        let batch = "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n".repeat(500);
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = stream.write_all(batch.as_bytes());
        readers_that_never_read.push(stream);
    }
    assert_healthy_within(&server.base(), Duration::from_secs(1));
}

#[test]
fn head_requests_get_the_headers_of_get_and_no_body() {
    let server = TestServer::start();
    for path in ["/", "/healthz"] {
        let answer = exchange(
            &server,
            format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(status_of(&answer), 200, "{answer}");
        let (head, body) = answer.split_once("\r\n\r\n").expect("head");
        assert!(head.contains("Content-Length: "), "{head}");
        assert_eq!(body, "");
    }
}

#[test]
fn running_out_of_file_descriptors_does_not_close_the_rest_api_for_good() {
    let dir = tempfile::tempdir().expect("dir");
    let server = ServerProcess::start_with_open_files(
        &dir.path().join("chat.db"),
        &["--addr", "127.0.0.1:0"],
        256,
    );
    let http: std::net::SocketAddr = server.http_addr.parse().expect("addr");
    let ws = std::net::SocketAddr::new(http.ip(), http.port() + 1);
    // More sockets than descriptors: idle ones on the WebSocket port and
    // half-sent requests on the REST port. Some connects may fail or hang
    // in the backlog; that is the point.
    let mut attackers = Vec::new();
    for n in 0..450 {
        let target = if n % 3 == 0 { http } else { ws };
        if let Ok(mut stream) = TcpStream::connect_timeout(&target, Duration::from_millis(200)) {
            if target == http {
                let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\n");
            }
            attackers.push(stream);
        }
    }
    drop(attackers);
    // Once they are gone, the listener must be back by itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = ureq::get(&format!("{}/healthz", server.base()))
            .timeout(Duration::from_secs(1))
            .call();
        if matches!(&answer, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "REST never came back: {answer:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_host_header_the_server_does_not_know_is_never_written_into_the_page() {
    let server = TestServer::start();
    let port = server
        .ws_host()
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    for (host, expected) in [
        ("evil.example", "127.0.0.1"),
        ("localhost:1234", "localhost"),
        ("127.0.0.1", "127.0.0.1"),
    ] {
        let answer = exchange(
            &server,
            format!("GET /api/config HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let config: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(
            config["ws_url"],
            format!("ws://{expected}:{port}/ws"),
            "{host}"
        );
        let page = exchange(
            &server,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert!(!page.contains("evil.example"), "{page}");
    }
}

#[test]
fn a_connection_stays_alive_after_a_body_read_whole() {
    let server = TestServer::start();
    let body = r#"{"identifier":"nobody","password":"password123"}"#;
    let framings = [
        format!("Content-Length: {}\r\n\r\n{body}", body.len()),
        format!(
            "Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
    ];
    for framing in framings {
        let answer = exchange(
            &server,
            format!(
                "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\
                 GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status_of(&answer), 401, "{answer}");
        assert!(
            answer.contains("HTTP/1.1 200 OK"),
            "the second request: {answer}"
        );
    }
}
