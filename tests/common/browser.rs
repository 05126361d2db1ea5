//! A real headless Chromium, driven over the Chrome DevTools Protocol with
//! the same tungstenite client the other tests use. Just enough CDP for
//! end-to-end tests: navigate, evaluate JavaScript, type, click, wait for a
//! condition, take a screenshot.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long a page may take to reach an awaited state.
pub const WAIT_MS: u64 = 15_000;

/// One Chromium process with one page (its own profile, so its own cookies).
pub struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
    socket: WebSocket<TcpStream>,
    next_id: u64,
}

fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

impl Browser {
    /// Starts Chromium with a window of `width` x `height` CSS pixels.
    pub fn launch(width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let mut child = Command::new(chromium_path())
            .args([
                "--headless",
                "--no-sandbox", // we run as root in CI
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--remote-debugging-port=0",
                &format!("--window-size={width},{height}"),
                &format!("--user-data-dir={}", profile.path().display()),
                "about:blank",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e}. Install it (Debian: apt-get install chromium) \
                     or run the README's test command, which does.",
                    chromium_path()
                )
            });

        // Chromium announces its DevTools endpoint on stderr.
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let endpoint = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split("DevTools listening on ")
                    .nth(1)
                    .map(str::to_owned)
            })
            .expect("chromium printed its DevTools endpoint");
        // Keep draining stderr so Chromium never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));

        let port = endpoint
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|host| host.rsplit(':').next())
            .expect("devtools port")
            .to_owned();
        let targets: Value =
            serde_json::from_str(&http_get(&format!("127.0.0.1:{port}"), "/json/list"))
                .expect("target list");
        let page_url = targets
            .as_array()
            .expect("targets")
            .iter()
            .find(|t| t["type"] == "page")
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let stream = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect devtools");
        stream
            .set_read_timeout(Some(Duration::from_millis(WAIT_MS + 5_000)))
            .expect("timeout");
        let (socket, _) =
            tungstenite::client(page_url.as_str(), stream).expect("devtools handshake");

        let mut browser = Browser {
            child,
            _profile: profile,
            socket,
            next_id: 1,
        };
        browser.call("Page.enable", json!({}));
        browser.set_viewport(width, height);
        browser
    }

    /// Emulates a screen of this size (and a phone below 700 px wide).
    pub fn set_viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}),
        );
    }

    /// Sends one CDP command and returns its result, skipping events.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.send(method, params);
        loop {
            let message = self.next_message();
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    /// Sends one CDP command and returns the parameters of the first
    /// `event` that arrives with its answer or after it (a domain's
    /// `enable`, and the state it reports).
    pub fn call_then_event(&mut self, method: &str, params: Value, event: &str) -> Value {
        let id = self.send(method, params);
        let (mut answered, mut seen) = (false, None);
        while !answered || seen.is_none() {
            let message = self.next_message();
            if message["id"] == id {
                if let Some(error) = message.get("error") {
                    panic!("{method} failed: {error}");
                }
                answered = true;
            } else if message["method"] == event && seen.is_none() {
                seen = Some(message["params"].clone());
            }
        }
        seen.unwrap_or_default()
    }

    /// The parameters of the next `event` (waits for it).
    pub fn next_event(&mut self, event: &str) -> Value {
        loop {
            let message = self.next_message();
            if message["method"] == event {
                return message["params"].clone();
            }
        }
    }

    fn send(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let command = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(Message::text(command.to_string()))
            .expect("send CDP command");
        id
    }

    fn next_message(&mut self) -> Value {
        loop {
            match self.socket.read().expect("CDP message") {
                Message::Text(text) => {
                    return serde_json::from_str(text.as_str()).expect("CDP JSON");
                }
                _ => continue,
            }
        }
    }

    /// Loads `url` and returns once its `load` event has fired.
    pub fn goto(&mut self, url: &str) {
        let id = self.send("Page.navigate", json!({"url": url}));
        let (mut answered, mut loaded) = (false, false);
        while !(answered && loaded) {
            let message = self.next_message();
            answered |= message["id"] == id;
            loaded |= answered && message["method"] == "Page.loadEventFired";
        }
    }

    /// Evaluates JavaScript in the page (awaiting a returned promise) and
    /// returns the value. A thrown exception fails the test.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("JavaScript failed: {details}\n in: {expression}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until the JavaScript `condition` is truthy, re-checking on
    /// every change of the page (a MutationObserver), and returns its value.
    pub fn wait_for(&mut self, condition: &str, what: &str) -> Value {
        let script = format!(
            r#"new Promise((resolve, reject) => {{
                const check = () => {{ try {{ return ({condition}); }} catch (e) {{ return false; }} }};
                const first = check();
                if (first) {{ resolve(first); return; }}
                const observer = new MutationObserver(() => {{
                    const value = check();
                    if (value) {{ observer.disconnect(); clearTimeout(timer); resolve(value); }}
                }});
                observer.observe(document, {{subtree: true, childList: true, attributes: true, characterData: true}});
                const timer = setTimeout(() => {{
                    observer.disconnect();
                    reject(new Error({what:?} + " did not happen within {WAIT_MS} ms"));
                }}, {WAIT_MS});
            }})"#,
            what = what,
        );
        self.eval(&script)
    }

    /// Clicks the element matching `selector` with real mouse events.
    pub fn click(&mut self, selector: &str) {
        let point = self.eval(&format!(
            r#"(() => {{
                const el = document.querySelector({selector:?});
                if (!el) throw new Error("no element " + {selector:?});
                el.scrollIntoView({{block: "center"}});
                const r = el.getBoundingClientRect();
                if (r.width === 0 || r.height === 0) throw new Error("not visible: " + {selector:?});
                return [r.left + r.width / 2, r.top + r.height / 2];
            }})()"#
        ));
        let (x, y) = (point[0].as_f64().expect("x"), point[1].as_f64().expect("y"));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Focuses the field matching `selector`, clears it and types `text`.
    pub fn type_into(&mut self, selector: &str, text: &str) {
        self.eval(&format!(
            r#"(() => {{ const el = document.querySelector({selector:?}); el.focus(); el.value = ""; }})()"#
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Presses a key in the focused element (`Enter`, with Shift if asked).
    pub fn press_enter(&mut self, shift: bool) {
        let modifiers = if shift { 8 } else { 0 };
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                       "text": if kind == "keyDown" { "\r" } else { "" }, "modifiers": modifiers}),
            );
        }
    }

    /// Presses one key in the focused element (e.g. `ArrowUp`, `Escape`).
    pub fn press_key(&mut self, key: &str, key_code: u32) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": key_code}),
            );
        }
    }

    /// Emulates the system's light or dark setting (`prefers-color-scheme`).
    pub fn color_scheme(&mut self, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = shot["data"].as_str().expect("screenshot data");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("screenshot dir");
        }
        std::fs::write(path, base64_decode(data)).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Chromium's DevTools HTTP endpoint (e.g. `/json/list`).
fn http_get(host: &str, path: &str) -> String {
    ureq::get(&format!("http://{host}{path}"))
        .call()
        .expect("DevTools HTTP endpoint")
        .into_string()
        .expect("DevTools response")
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for byte in text.bytes().filter(|b| *b != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == byte)
            .expect("base64 character") as u32;
        buffer = (buffer << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// `document.querySelector(selector)` as a JavaScript expression.
pub fn q(selector: &str) -> String {
    format!("document.querySelector({selector:?})")
}

/// Opens the web client at `base` and logs in as `nickname` (password
/// `password123`); returns once the first sync is done.
pub fn log_in(page: &mut Browser, base: &str, nickname: &str) {
    page.goto(base);
    page.wait_for("document.body.dataset.ready === 'true'", "page ready");
    page.type_into("#login-form [name=identifier]", nickname);
    page.type_into("#login-form [name=password]", "password123");
    page.click("#login-form button[type=submit]");
    page.wait_for(
        "document.body.dataset.sync === 'done'",
        "logged in and synced",
    );
}

/// Opens the conversation with `partner` from the list.
pub fn open_with(page: &mut Browser, partner: i64) {
    page.click(&format!("#conversations li[data-user-id=\"{partner}\"]"));
    page.wait_for(&format!("!{}.hidden", q("#composer")), "conversation open");
}

/// Saves a screenshot of `page` as `NAME.png`: in `docs/screenshots/` with
/// `UPDATE_SCREENSHOTS=1`, else in `target/screenshots/`.
pub fn save_screenshot(page: &mut Browser, name: &str) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        root.join("docs/screenshots")
    } else {
        root.join("target/screenshots")
    };
    page.screenshot(&dir.join(format!("{name}.png")));
}
