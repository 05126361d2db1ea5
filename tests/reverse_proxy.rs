//! `docs/nginx.conf`, as shipped (minus its TLS lines), in front of a real
//! server: web client, REST and WebSocket on one origin. Needs nginx (the
//! README's test command installs it).

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, TestServer, Ws, free_port};
use serde_json::json;

struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its workers; SIGKILL would orphan them.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Runs docs/nginx.conf on `port`, proxying to the given server addresses.
fn start_nginx(port: u16, http_addr: &str, ws_addr: &str) -> Nginx {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/nginx.conf"))
            .expect("docs/nginx.conf");
    let site: String = doc
        .lines()
        .filter(|line| !line.contains("# tls"))
        .map(|line| {
            line.replace("127.0.0.1:8080", http_addr)
                .replace("127.0.0.1:8081", ws_addr)
                .replace(
                    "server_name chat.example.org;",
                    &format!("server_name chat.example.org;\n    listen 127.0.0.1:{port};"),
                )
        })
        .collect::<Vec<_>>()
        .join("\n");

    let dir = tempfile::tempdir().expect("temp dir");
    // nginx's workers run as another user and write proxy buffers here.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let d = dir.path().display();
    let config = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n access_log off;\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
         {site}\n}}\n"
    );
    let config_path = dir.path().join("nginx.conf");
    std::fs::write(&config_path, config).expect("write config");
    let child = Command::new(std::env::var("NGINX").unwrap_or_else(|_| "/usr/sbin/nginx".into()))
        .arg("-c")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx (install it: apt-get install nginx-light)");
    let error_log = dir.path().join("error.log");
    let nginx = Nginx { child, _dir: dir };

    // nginx announces nothing when it is ready; its port accepting is the
    // only sign, so look for that, briefly and boundedly.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start listening: {}",
            std::fs::read_to_string(&error_log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nginx
}

#[test]
fn docs_nginx_conf_serves_everything_on_one_origin() {
    let port = free_port();
    let origin = format!("http://127.0.0.1:{port}");
    let public_ws_url = format!("ws://127.0.0.1:{port}/ws");
    let server = TestServer::start_with(|c| {
        c.public_ws_url = Some(public_ws_url.clone());
        c.allowed_origins = vec![origin.clone()];
    });
    let backend_ws = server.ws_host();
    let _nginx = start_nginx(
        port,
        server.base().trim_start_matches("http://"),
        &backend_ws,
    );

    // Everything below goes through nginx only.
    let proxied = |nickname: &str| {
        let mut client = Client {
            base: origin.clone(),
            cookie: None,
        };
        let id = client.register(nickname);
        assert_eq!(client.login(nickname, "password123").status, 200);
        (client, id)
    };
    let (alice, _) = proxied("alice");
    let (bob, bob_id) = proxied("bob");

    let config = alice.get("/api/config");
    assert_eq!(config.body["ws_url"], public_ws_url);
    let page = ureq::get(&format!("{origin}/")).call().expect("page");
    let csp = page
        .header("content-security-policy")
        .expect("CSP")
        .to_owned();
    assert!(csp.contains(&public_ws_url), "{csp}");

    // A browser on the proxy's origin opens the proxied WebSocket.
    let mut alice_ws =
        Ws::try_connect(&public_ws_url, alice.cookie.as_deref(), Some(&origin)).expect("alice ws");
    assert_eq!(alice_ws.recv()["type"], "online_users");
    let mut bob_ws =
        Ws::try_connect(&public_ws_url, bob.cookie.as_deref(), Some(&origin)).expect("bob ws");
    assert_eq!(bob_ws.recv()["type"], "online_users");
    alice_ws.send_json(&json!({"type": "private_message", "to_user_id": bob_id, "content": "via nginx", "client_id": "n1"}));
    assert_eq!(bob_ws.recv_type("private_message")["content"], "via nginx");
    assert_eq!(alice_ws.recv_type("message_delivered")["client_id"], "n1");
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 1);

    // nginx enforces the body limit in front of tiny_http.
    let big = "x".repeat(100 * 1024);
    match ureq::post(&format!("{origin}/api/register")).send_string(&big) {
        Err(ureq::Error::Status(413, _)) => {}
        other => panic!("expected 413 from nginx, got {other:?}"),
    }
}
