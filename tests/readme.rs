//! The README's `curl` session, run as written (with the test server's
//! address for `localhost:8080`) on a fresh database.

mod common;

use std::process::Command;

use common::ServerProcess;

/// The lines of the README's first `sh` block after "A session with `curl`".
fn curl_session() -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("A session with `curl`")
        .expect("the README has a curl session");
    let block = &readme[start..];
    let body = block
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    body.lines().map(str::trim).collect::<Vec<_>>().join("\n")
}

#[test]
fn the_readme_curl_session_works_as_written_on_a_fresh_database() {
    let dir = tempfile::tempdir().expect("dir");
    let server =
        ServerProcess::start_as_deployed(&dir.path().join("chat.db"), &["--addr", "127.0.0.1:0"]);
    let script = curl_session().replace("localhost:8080", &server.http_addr);
    let output = Command::new("bash")
        .args(["-e", "-c", &format!("{script}\n")])
        .current_dir(dir.path())
        .output()
        .expect("bash and curl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // curl prints the answers one after another: bob registered, alice
    // sees him, and the message comes back in the history.
    assert!(stdout.contains(r#""nickname":"bob""#), "{stdout}");
    assert!(stdout.contains(r#""content":"hello""#), "{stdout}");
    assert!(!stdout.contains(r#""error""#), "{stdout}");
}
