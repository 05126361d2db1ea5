//! An account's life beyond messages: display names (and impostors),
//! exporting one's data, reporting a message to the admins, and deleting
//! an account (oneself, or by an admin).

mod common;

use common::{TestServer, TwoOnline, Ws, database_bytes, holds};
use serde_json::json;

#[test]
fn deleting_my_account_tombstones_what_i_sent_erases_me_and_retires_my_nickname() {
    let server = TestServer::start();
    let (admin, _) = server.user("root");
    let mut two = TwoOnline::new(&server);
    let secret = "my very personal secret 7f3a";
    let mine = two.alice.send(two.bob_id, secret)["id"]
        .as_i64()
        .expect("id");
    two.bob_ws.recv_type("private_message");
    let theirs = two.bob.send(two.alice_id, "bob's own words")["id"]
        .as_i64()
        .expect("id");

    let wrong = two
        .alice
        .request("DELETE", "/api/me", Some(r#"{"password":"not it at all"}"#));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    let gone = two
        .alice
        .request("DELETE", "/api/me", Some(r#"{"password":"password123"}"#));
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert!(gone.set_cookie.is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(
        u16::from(two.alice_ws.expect_close().expect("close").code),
        4004
    );

    // Bob hears of the deletion live, and his history keeps a tombstone.
    let deleted = two.bob_ws.recv_type("message_deleted");
    assert_eq!(deleted["message_id"], mine);
    assert_eq!(deleted["for"], "everyone");
    let history = two
        .bob
        .get(&format!("/api/messages?user_id={}", two.alice_id));
    let tomb = common::message_in(&history.body, &mine).expect("tombstone");
    assert_eq!(
        (tomb["content"].as_str(), tomb["deleted_at"].is_string()),
        (Some(""), true)
    );
    let kept = common::message_in(&history.body, &theirs).expect("bob's message stays");
    assert_eq!(kept["content"], "bob's own words");
    let list = two.bob.get("/api/conversations").body["conversations"][0].clone();
    assert!(
        list["nickname"]
            .as_str()
            .is_some_and(|n| n.starts_with("deleted user")),
        "{list}"
    );

    // The account cannot log in, is out of the directory, and its
    // nickname is not free for someone else yet.
    let mut again = server.client();
    assert_eq!(again.login("alice", "password123").status, 401);
    let directory = two.bob.get("/api/users").body["users"].clone();
    assert!(
        !directory
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["id"] == two.alice_id)
    );
    let taken = server.client().post(
        "/api/register",
        &json!({"nickname": "ALICE", "email": "new@example.org", "password": "password123"}),
    );
    assert_eq!(taken.status, 409, "{}", taken.body);
    server.client().register("alice2");

    // The last admin cannot leave the server without one.
    let last = admin.request("DELETE", "/api/me", Some(r#"{"password":"password123"}"#));
    assert_eq!(last.status, 409, "{}", last.body);

    // Nothing of it is left in the database file.
    let mut server = server;
    let db = server.config.db.clone();
    server.shutdown();
    let file = database_bytes(&db);
    assert!(
        !holds(&file, secret),
        "the message text is still in the file"
    );
    assert!(
        !holds(&file, "alice@example.org"),
        "the email is still in the file"
    );
}

#[test]
fn an_admin_deletes_an_account_and_members_cannot() {
    let server = TestServer::start();
    let (admin, admin_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut carol, carol_id) = server.user("carol");
    carol.send(bob_id, "hello bob");
    let (mut carol_ws, _) = Ws::connect(&server, &carol);
    assert_eq!(
        bob.delete(&format!("/api/admin/users/{carol_id}")).status,
        403
    );
    assert_eq!(
        admin.delete(&format!("/api/admin/users/{admin_id}")).status,
        400
    );
    assert_eq!(admin.delete("/api/admin/users/999").status, 404);
    let deleted = admin.delete(&format!("/api/admin/users/{carol_id}"));
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(
        u16::from(carol_ws.expect_close().expect("close").code),
        4004
    );
    assert_eq!(carol.login("carol", "password123").status, 401);
    let history = bob.get(&format!("/api/messages?user_id={carol_id}"));
    assert_eq!(history.body["messages"][0]["content"], "");
    let accounts = admin.get("/api/admin/users").body["users"].clone();
    assert!(
        !accounts
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["id"] == carol_id)
    );
}

#[test]
fn the_export_holds_my_profile_and_exactly_my_messages() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");
    let sent = alice.send(bob_id, "from alice")["id"].clone();
    let received = bob.send(alice_id, "to alice")["id"].clone();
    let to_carol = alice.send(carol_id, "to carol")["id"].clone();
    carol.send(bob_id, "not alice's business");
    let export = alice.get("/api/me/export");
    assert_eq!(export.status, 200);
    assert_eq!(export.body["user"]["nickname"], "alice");
    assert_eq!(export.body["user"]["email"], "alice@example.org");
    let ids: Vec<_> = export.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(ids, vec![sent, received, to_carol]);
    assert_eq!(export.body["sessions"].as_array().map(Vec::len), Some(1));
    assert_eq!(server.client().get("/api/me/export").status, 401);
}

#[test]
fn a_display_name_may_be_anything_but_another_users_name() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let set = |name: serde_json::Value| bob.patch("/api/me", &json!({"display_name": name}));
    let ok = set(json!("  Bob Марлей 🌻 "));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["user"]["display_name"], "Bob Марлей 🌻");
    let listed = alice.get("/api/users").body["users"].clone();
    let row = listed
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == bob_id)
        .cloned();
    assert_eq!(row.expect("bob")["display_name"], "Bob Марлей 🌻");

    // Cyrillic а, and a capital I for the l: both look like "alice".
    for impostor in ["\u{430}lice", "AIice", "a l i c e"] {
        let refused = set(json!(impostor));
        assert_eq!(refused.status, 409, "{impostor}: {}", refused.body);
        assert_eq!(refused.body["code"], "name_imitates_another");
    }
    // Another user's display name is protected too.
    assert_eq!(
        alice
            .patch("/api/me", &json!({"display_name": "B0b Марлей 🌻"}))
            .status,
        409
    );
    assert_eq!(set(json!("x".repeat(65))).status, 400);
    assert_eq!(set(json!("right\u{202E}txt.exe")).status, 400);
    let cleared = set(json!(null));
    assert_eq!(cleared.status, 200);
    assert!(cleared.body["user"]["display_name"].is_null());
    // Leaving the field out changes nothing else.
    let receipts = bob.patch("/api/me", &json!({"send_read_receipts": false}));
    assert!(receipts.body["user"]["display_name"].is_null());
}

#[test]
fn a_reported_message_reaches_the_admins_in_context_and_they_act_on_it() {
    let server = TestServer::start();
    let (admin, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mallory, mallory_id) = server.user("mallory");
    mallory.send(bob_id, "hi");
    let bad = mallory.send(bob_id, "something abusive")["id"]
        .as_i64()
        .expect("id");
    bob.send(mallory_id, "please stop");

    let own = mallory.post("/api/reports", &json!({"message_id": bad}));
    assert_eq!(own.status, 400, "{}", own.body);
    let stranger = admin.post("/api/reports", &json!({"message_id": bad}));
    assert_eq!(stranger.status, 404, "not alice's conversation");
    let reported = bob.post(
        "/api/reports",
        &json!({"message_id": bad, "reason": "abuse"}),
    );
    assert_eq!(reported.status, 201, "{}", reported.body);
    let report_id = reported.body["report_id"].as_i64().expect("id");
    let twice = bob.post("/api/reports", &json!({"message_id": bad}));
    assert_eq!(twice.body["report_id"], report_id, "the same report");

    assert_eq!(bob.get("/api/admin/reports").status, 403);
    let open = admin.get("/api/admin/reports");
    assert_eq!(open.status, 200);
    let report = &open.body["reports"][0];
    assert_eq!(report["id"], report_id);
    assert_eq!(report["reason"], "abuse");
    assert_eq!(report["sender_nickname"], "mallory");
    assert_eq!(report["message"]["content"], "something abusive");
    let context: Vec<_> = report["context"]
        .as_array()
        .expect("context")
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(context, ["hi", "something abusive", "please stop"]);

    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let resolved = admin.post(
        &format!("/api/admin/reports/{report_id}/resolve"),
        &json!({"resolution": "message_deleted"}),
    );
    assert_eq!(resolved.status, 200, "{}", resolved.body);
    assert_eq!(bob_ws.recv_type("message_deleted")["message_id"], bad);
    let history = bob.get(&format!("/api/messages?user_id={mallory_id}"));
    let tomb = common::message_in(&history.body, &bad).expect("tombstone");
    assert_eq!(tomb["content"], "");
    assert_eq!(
        admin.get("/api/admin/reports").body["reports"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
    let again = admin.post(
        &format!("/api/admin/reports/{report_id}/resolve"),
        &json!({"resolution": "dismissed"}),
    );
    assert_eq!(again.status, 409);

    // Disabling the sender through a report.
    let other = mallory.send(bob_id, "more abuse")["id"]
        .as_i64()
        .expect("id");
    let second = bob.post("/api/reports", &json!({"message_id": other}));
    let second_id = second.body["report_id"].as_i64().expect("id");
    let disabled = admin.post(
        &format!("/api/admin/reports/{second_id}/resolve"),
        &json!({"resolution": "sender_disabled"}),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(mallory.get("/api/me").status, 401);
}
