//! What the benchmark programs share: an account to act as, and its
//! WebSocket. Included by path (`#[path = "shared/accounts.rs"] mod
//! accounts;`), so that each program stays one file to read.

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::WebSocket;
use tungstenite::client::IntoClientRequest;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long a read on a benchmark's WebSocket may wait before it fails.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Registers and logs in `nickname` (password `password123`); returns the
/// session cookie and the id.
pub fn user(base: &str, nickname: &str) -> Result<(String, i64), Error> {
    let password = "password123";
    let registered: Value = ureq::post(&format!("{base}/api/register"))
        .send_json(
            json!({"nickname": nickname, "email": format!("{nickname}@x"), "password": password}),
        )?
        .into_json()?;
    let id = registered["user"]["id"].as_i64().ok_or("no user id")?;
    let login = ureq::post(&format!("{base}/api/login"))
        .send_json(json!({"identifier": nickname, "password": password}))?;
    let cookie = login
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("session_token="))
        .and_then(|c| c.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    Ok((cookie, id))
}

/// A WebSocket at `ws_url` for the session `cookie`, presence in batches.
pub fn connect(ws_url: &str, cookie: &str) -> Result<WebSocket<TcpStream>, Error> {
    let mut request = format!("{ws_url}?presence=batch").into_client_request()?;
    request.headers_mut().insert("Cookie", cookie.parse()?);
    let host = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .ok_or("bad ws_url")?;
    let stream = TcpStream::connect(host)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let (ws, _) = tungstenite::client(request, stream).map_err(|e| e.to_string())?;
    Ok(ws)
}
