//! What the `http_request` fuzz target and the corpus replay test
//! (`tests/fuzz_corpus.rs`) share: a fixture with a real store, hub and
//! session; the raw input format; and the property every response must have.

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use chat_server::app::App;
use chat_server::config::Config;
use chat_server::http::{HttpRequest, HttpResponse, route};
use chat_server::server::Core;
use tiny_http::Method;

pub struct Fixture {
    pub app: App,
    /// A logged-in session, added to inputs whose first byte is odd.
    pub cookie: String,
}

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Lives as long as the fuzzing process.
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
        let mut config = Config::for_tests();
        config.db = dir.path().join("fuzz.db");
        // Limits would turn most inputs into 429s.
        config.message_rate = 0.0;
        config.login_rate = 0.0;
        config.register_rate = 0.0;
        config.login_free_failures = u32::MAX;
        // The core (and its hub thread) lives as long as the process.
        let core = Core::start(&config).expect("core");
        let addr: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        let device_key = chat_server::auth::DeviceKey::generate().expect("rng");
        let (app, _all_done) = App::new(config, &core, (addr, addr), device_key);
        for (nickname, email) in [("fuzzer", "f@x"), ("peer", "p@x")] {
            let body = format!(
                r#"{{"nickname":"{nickname}","email":"{email}","password":"password123"}}"#
            );
            route(
                &app,
                &request(Method::Post, "/api/register", body.as_bytes(), None),
            );
        }
        let login = route(
            &app,
            &request(
                Method::Post,
                "/api/login",
                br#"{"identifier":"fuzzer","password":"password123"}"#,
                None,
            ),
        );
        let cookie = login
            .headers
            .iter()
            .find(|(name, _)| *name == "Set-Cookie")
            .and_then(|(_, value)| value.split(';').next())
            .expect("session cookie")
            .to_owned();
        Fixture { app, cookie }
    })
}

fn request(method: Method, url: &str, body: &[u8], cookie: Option<&str>) -> HttpRequest {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    HttpRequest {
        method,
        path: path.to_owned(),
        query: query.to_owned(),
        // A JSON body is declared as such, as every real client does.
        headers: cookie
            .map(|c| ("Cookie".to_owned(), c.to_owned()))
            .into_iter()
            .chain(
                (!body.is_empty())
                    .then(|| ("Content-Type".to_owned(), "application/json".to_owned())),
            )
            .collect(),
        body: body.to_vec(),
        body_too_large: false,
        upload: None,
        peer: Some([127, 0, 0, 1].into()),
    }
}

/// `METHOD URL\nName: value\n...\n\nbody`, leniently.
pub fn parse(data: &[u8], cookie: Option<&str>) -> Option<HttpRequest> {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let head = std::str::from_utf8(&data[..split]).ok()?;
    let body = data.get(split + 2..).unwrap_or_default();
    let mut lines = head.lines();
    let (method, url) = lines.next()?.split_once(' ')?;
    let mut parsed = request(Method::from_str(method).ok()?, url, body, cookie);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        parsed
            .headers
            .push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Some(parsed)
}

pub fn check(response: &HttpResponse) {
    assert!(
        response.status < 500,
        "{} {}",
        response.status,
        response.body
    );
    let json = response
        .headers
        .iter()
        .any(|(name, value)| *name == "Content-Type" && value.starts_with("application/json"));
    if json {
        serde_json::from_str::<serde_json::Value>(&response.body).expect("JSON body");
    }
}
