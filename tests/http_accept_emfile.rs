//! The HTTP acceptor when the process runs out of file descriptors: alone
//! in its own test binary, because it lowers the open-file limit of the
//! whole process. tiny_http 0.12 ended its accept thread at the first
//! `EMFILE`, and the REST port stayed deaf for good.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64)
}

fn set_soft_open_file_limit(soft: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write this struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let old = limit.rlim_cur;
        limit.rlim_cur = soft;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        old
    }
}

#[test]
fn the_http_acceptor_survives_running_out_of_file_descriptors() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = tiny_http::Limits {
        max_connections: 100_000, // the descriptors run out first
        ..tiny_http::Limits::default()
    };
    let server =
        std::sync::Arc::new(tiny_http::Server::with_limits(listener, limits).expect("server"));
    {
        let server = server.clone();
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                let _ = request.respond(tiny_http::Response::from_string("ok"));
            }
        });
    }

    let old_limit = set_soft_open_file_limit(open_descriptors() + 40);
    // Idle connections until this process (client and server alike) has
    // no descriptor left: the acceptor's `accept` or `try_clone` fails.
    let mut idle = Vec::new();
    while idle.len() < 1000 {
        match TcpStream::connect(addr) {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    assert!(idle.len() < 1000, "the limit was never reached");
    drop(idle);
    set_soft_open_file_limit(old_limit);

    // Once they are gone, requests are served again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = TcpStream::connect(addr).and_then(|mut stream| {
            stream.set_read_timeout(Some(Duration::from_secs(1)))?;
            stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut text = String::new();
            stream.read_to_string(&mut text)?;
            Ok(text)
        });
        if matches!(&answer, Ok(text) if text.starts_with("HTTP/1.1 200")) {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {answer:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
