//! Searching one's conversations (`GET /api/search`, the WebSocket's
//! `search`), and opening a result in its context (`around_id`): each
//! matching rule, only what the searcher may still see, hostile queries.

mod common;

use chat_server::config::Switch;
use common::{Client, TestServer, Ws};
use serde_json::{Value, json};

/// `GET /api/search` with `params` (already encoded).
fn search(client: &Client, params: &str) -> (u16, Value) {
    let reply = client.get(&format!("/api/search?{params}"));
    (reply.status, reply.body)
}

/// The contents of the results of searching `q`, newest first.
fn found(client: &Client, q: &str) -> Vec<String> {
    let encoded: String = url_encode(q);
    let (status, body) = search(client, &format!("q={encoded}"));
    assert_eq!(status, 200, "{q}: {body}");
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|hit| {
            hit["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// The search index's file beside the database at `db`.
fn search_file(db: &std::path::Path) -> std::path::PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-search");
    name.into()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn matching_follows_the_rules_people_expect() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    for text in [
        "Meet me at the Café tomorrow",
        "our holiday in Crete was great",
        "hot chocolate please",
        "chocolate is hot today",
        "私は東京都に住んでいます",
        "สวัสดีครับ",
        "an e-mail from the bank",
    ] {
        alice.send(bob_id, text);
    }
    // Case and diacritics ignored, both ways.
    assert_eq!(found(&bob, "cafe"), ["Meet me at the Café tomorrow"]);
    assert_eq!(found(&bob, "CAFÉ"), ["Meet me at the Café tomorrow"]);
    assert_eq!(found(&bob, "crète"), ["our holiday in Crete was great"]);
    // Word prefixes.
    assert_eq!(found(&bob, "hol"), ["our holiday in Crete was great"]);
    // Several words: all of them, in any order.
    assert_eq!(
        found(&bob, "hot chocolate"),
        ["chocolate is hot today", "hot chocolate please"]
    );
    // A quoted phrase: together and whole.
    assert_eq!(found(&bob, "\"hot chocolate\""), ["hot chocolate please"]);
    assert!(
        found(&bob, "\"hot choc\"").is_empty(),
        "a phrase's words are whole"
    );
    // Scripts without spaces: any substring.
    assert_eq!(found(&bob, "東京"), ["私は東京都に住んでいます"]);
    assert_eq!(found(&bob, "住んで"), ["私は東京都に住んでいます"]);
    assert_eq!(found(&bob, "สวัสดี"), ["สวัสดีครับ"]);
    // Punctuation inside a word.
    assert_eq!(found(&bob, "e-mail"), ["an e-mail from the bank"]);
    assert!(found(&bob, "zebra").is_empty());
}

#[test]
fn results_are_pages_of_the_newest_first_with_highlights() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            alice.send(bob_id, &format!("Café number {i}"))["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    let (status, first) = search(&bob, "q=cafe&limit=2");
    assert_eq!(status, 200);
    let page_ids = |page: &Value| -> Vec<i64> {
        page["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|h| h["message"]["id"].as_i64().expect("id"))
            .collect()
    };
    assert_eq!(page_ids(&first), [ids[4], ids[3]]);
    assert_eq!(first["results"][0]["highlights"], json!([[0, 4]]), "Café");
    // A message sent meanwhile does not shift the next page.
    alice.send(bob_id, "another café");
    let next = first["next"].as_str().expect("next").to_owned();
    let (_, second) = search(&bob, &format!("q=cafe&limit=2&before={next}"));
    assert_eq!(page_ids(&second), [ids[2], ids[1]]);
    let (_, last) = search(
        &bob,
        &format!(
            "q=cafe&limit=2&before={}",
            second["next"].as_str().expect("next")
        ),
    );
    assert_eq!(page_ids(&last), [ids[0]]);
    assert!(last.get("next").is_none(), "the last page has no next");
}

#[test]
fn only_what_i_can_still_see_is_found() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");
    let (dave, _) = server.user("dave");
    alice.send(bob_id, "secret plan alpha");
    carol.send(bob_id, "secret plan carol");
    let deleted = alice.send(bob_id, "secret plan deleted")["id"].clone();
    let hidden = alice.send(bob_id, "secret plan hidden")["id"].clone();
    let edited = alice.send(bob_id, "secret plan draft")["id"].clone();
    assert_eq!(
        alice.delete(&format!("/api/messages/{deleted}")).status,
        200
    );
    assert_eq!(
        bob.delete(&format!("/api/messages/{hidden}?for=me")).status,
        200
    );
    let edit = alice.patch(
        &format!("/api/messages/{edited}"),
        &json!({"content": "secret plan final"}),
    );
    assert_eq!(edit.status, 200);

    assert_eq!(
        found(&bob, "secret"),
        [
            "secret plan final",
            "secret plan carol",
            "secret plan alpha"
        ]
    );
    // Alice still sees the one Bob hid for himself.
    assert_eq!(found(&alice, "hidden"), ["secret plan hidden"]);
    assert!(found(&bob, "hidden").is_empty());
    assert!(
        found(&bob, "draft").is_empty(),
        "an edited message is found by its text now"
    );
    assert_eq!(found(&bob, "final"), ["secret plan final"]);
    assert!(found(&bob, "deleted").is_empty());
    assert!(
        found(&dave, "secret").is_empty(),
        "never another conversation's messages"
    );
    assert!(!found(&carol, "secret").iter().any(|c| c.contains("alpha")));
    // One conversation only.
    let (_, only) = search(&bob, &format!("q=secret&user_id={carol_id}"));
    assert_eq!(only["results"].as_array().map(Vec::len), Some(1));
    let (_, with_alice) = search(&bob, &format!("q=secret&user_id={alice_id}"));
    assert_eq!(with_alice["results"].as_array().map(Vec::len), Some(2));
    assert_eq!(search(&bob, "q=secret&user_id=999").0, 404);
    assert_eq!(search(&server.client(), "q=secret").0, 401);
}

#[test]
fn hostile_queries_get_200_or_400_never_500() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    alice.send(bob_id, "near the end * of the \"road\"");
    let long = "a".repeat(10 * 1024);
    for q in [
        "\"unbalanced",
        "NEAR(",
        "NEAR(a b, 2)",
        "*",
        "a*",
        "-x",
        "x OR y",
        "body:secret",
        "scope : \"u1\"",
        "'; DROP TABLE users; --",
        "\0",
        "%00",
        "((((",
        "^a",
        long.as_str(),
        "",
    ] {
        let (status, body) = search(&bob, &format!("q={}", url_encode(q)));
        assert!(status == 200 || status == 400, "{q:?}: {status} {body}");
        if status == 400 {
            assert!(body["error"].is_string(), "{body}");
        }
    }
    assert_eq!(found(&bob, "NEAR("), ["near the end * of the \"road\""]);
    assert_eq!(search(&bob, "q=road&limit=0").0, 400);
    assert_eq!(search(&bob, "q=road&limit=51").0, 400);
    assert_eq!(search(&bob, "q=road&before=x").0, 400);
    assert_eq!(search(&bob, "q=").0, 400);
    assert_eq!(search(&bob, "").0, 400);
    // Another user's scope cannot be named: it is just a word.
    assert!(found(&server.user("eve").0, "scope u1").is_empty());
}

#[test]
fn a_result_opens_in_its_context() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let ids: Vec<i64> = (0..20)
        .map(|i| {
            alice.send(bob_id, &format!("line {i}"))["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    let middle = ids[10];
    let page = bob.get(&format!(
        "/api/messages?user_id={alice_id}&around_id={middle}&limit=5"
    ));
    assert_eq!(page.status, 200, "{}", page.body);
    let got: Vec<i64> = page.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(got, ids[8..13]);
    assert_eq!(
        bob.get(&format!(
            "/api/messages?user_id={alice_id}&around_id={middle}&before_id=5"
        ))
        .status,
        400
    );
    assert_eq!(
        bob.get(&format!("/api/messages?user_id={alice_id}&around_id=x"))
            .status,
        400
    );

    // The same over the WebSocket: search, then the page around a result.
    let (mut ws, _) = Ws::connect(&server, &bob);
    ws.send_json(&json!({"type": "search", "q": "line 1", "limit": 3}));
    let answer = ws.recv_type("search");
    assert_eq!(answer["q"], "line 1");
    let first = &answer["results"][0];
    assert_eq!(first["message"]["content"], "line 19");
    assert_eq!(first["highlights"], json!([[0, 4], [5, 7]]));
    assert!(answer["next"].is_string());
    ws.send_json(
        &json!({"type": "load_history", "to_user_id": alice_id, "around_id": middle, "limit": 3}),
    );
    let history = ws.recv_type("history");
    assert_eq!(history["around_id"], middle);
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(3));
    ws.send_json(&json!({"type": "search", "q": "*"}));
    let refused = ws.recv_type("error");
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("no letters"))
    );
}

#[test]
fn with_search_off_there_is_no_index_and_search_says_so() {
    let server = TestServer::start_with(|c| c.search = Switch::Off);
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    alice.send(bob_id, "nothing indexed");
    let (status, body) = search(&bob, "q=nothing");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["code"], "search_off");
    let conn = rusqlite::Connection::open(&server.config.db).expect("open");
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'search%'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(tables, 0);
    assert!(!search_file(&server.config.db).exists());
}

#[test]
fn an_index_made_later_holds_the_older_messages_and_resumes_after_a_restart() {
    let mut server = TestServer::start_with(|c| c.search = Switch::Off);
    let (alice, _) = server.user("alice");
    let (mut bob, bob_id) = server.user("bob");
    for n in 0..30 {
        alice.send(bob_id, &format!("older message number{n} walrus"));
    }
    let edited = alice.send(bob_id, "a typo here")["id"].clone();

    // Turned on: the messages already there are built into the new index.
    server.config.search = Switch::On;
    server.restart();
    bob.base = server.base();
    assert_eq!(found(&bob, "walrus").len(), 20, "a page of the 30");
    assert_eq!(found(&bob, "number7"), ["older message number7 walrus"]);
    let mut alice = alice;
    alice.base = server.base();

    // Stopped and started again, it resumes where it was: what changed
    // while it was stopped is indexed, nothing twice.
    server.shutdown();
    server.restart();
    alice.base = server.base();
    bob.base = server.base();
    let fixed = alice.patch(
        &format!("/api/messages/{edited}"),
        &json!({"content": "a fixed sentence"}),
    );
    assert_eq!(fixed.status, 200, "{}", fixed.body);
    alice.send(bob_id, "a newer walrus");
    assert!(found(&bob, "typo").is_empty());
    assert_eq!(found(&bob, "fixed"), ["a fixed sentence"]);
    assert_eq!(found(&bob, "number29"), ["older message number29 walrus"]);
    assert_eq!(found(&bob, "newer walrus"), ["a newer walrus"]);
}

#[test]
fn a_deleted_message_leaves_no_word_in_the_index_or_the_file() {
    let mut server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let word = "xylophonist";
    let id = alice.send(bob_id, &format!("the {word} came"))["id"].clone();
    alice.send(bob_id, "the drummer came");
    assert_eq!(found(&bob, word), [format!("the {word} came")]);
    assert_eq!(alice.delete(&format!("/api/messages/{id}")).status, 200);
    assert!(found(&bob, word).is_empty());
    let db = server.config.db.clone();
    server.shutdown();

    let bytes = common::database_bytes(&db);
    assert!(!common::holds(&bytes, word), "the word is still in a file");
    let index = std::fs::read(search_file(&db)).expect("index file");
    assert!(common::holds(&index, "drummer"), "the test reads the index");
    // The index's own list of its words.
    let conn = rusqlite::Connection::open(search_file(&db)).expect("open");
    conn.execute_batch("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, search, 'row')")
        .expect("vocabulary");
    let terms: Vec<String> = conn
        .prepare("SELECT term FROM temp.words")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("terms");
    assert!(terms.contains(&"drummer".to_owned()), "{terms:?}");
    assert!(!terms.contains(&word.to_owned()), "{terms:?}");
}
