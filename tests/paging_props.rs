//! Property tests for paging: whatever the page size, and with messages
//! arriving between page requests, every message appears exactly once.
//! Runs against the real SQLite store on a real file.

use chat_server::config::Durability;
use chat_server::models::{Cursor, NewMessage, Page};
use chat_server::repo::{Accounts, Admission, SqliteStore, Store, insert_message_and_wait};
use proptest::prelude::*;

const ALICE: i64 = 1;
const BOB: i64 = 2;
const CAROL: i64 = 3;
const DAVE: i64 = 4;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(
        &dir.path().join("p.db"),
        Durability::Normal,
        chat_server::changes::nowhere(),
    )
    .expect("open");
    for name in ["alice", "bob", "carol", "dave"] {
        store
            .create_user(name, &format!("{name}@x"), "hash", Admission::Anyone)
            .expect("user");
    }
    (dir, store)
}

fn send(store: &SqliteStore, from: i64, to: i64) -> i64 {
    let new = NewMessage {
        sender_id: from,
        receiver_id: to,
        content: "m".into(),
        // Equal timestamps on purpose: order must come from ids alone.
        created_at: chrono::DateTime::from_timestamp_millis(1_700_000_000_000).expect("time"),
        client_id: None,
        sender_nickname: String::new(),
        reply_to_id: None,
        attachment_id: None,
    };
    insert_message_and_wait(store, new)
        .expect("insert")
        .message
        .id
}

/// (from, to) for each initial message: alice↔bob, with carol and dave as
/// noise for history and as bob's other partners for sync.
fn traffic() -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec(
        prop::sample::select(vec![
            (ALICE, BOB),
            (BOB, ALICE),
            (CAROL, BOB),
            (ALICE, CAROL),
            (BOB, DAVE),
            (DAVE, BOB),
        ]),
        0..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn history_pages_by_before_id_hold_every_message_once(
        traffic in traffic(),
        limit in 1u32..=25,
        arrivals in prop::collection::vec(0usize..4, 0..40),
    ) {
        let (_dir, store) = store();
        let mut conversation = Vec::new();
        for (from, to) in traffic {
            let id = send(&store, from, to);
            if (from == ALICE && to == BOB) || (from == BOB && to == ALICE) {
                conversation.push(id);
            }
        }
        let mut seen = Vec::new();
        let mut cursor = Cursor::Offset(0);
        let mut arrivals = arrivals.into_iter();
        loop {
            let page = store.history(ALICE, BOB, Page { limit, cursor }).expect("page");
            // New messages arrive between requests; they are newer than
            // anything still to page through.
            for _ in 0..arrivals.next().unwrap_or(0) {
                send(&store, BOB, ALICE);
            }
            let Some(oldest) = page.first() else { break };
            cursor = Cursor::BeforeId(oldest.id);
            let ids: Vec<i64> = page.iter().map(|m| m.id).collect();
            prop_assert!(ids.windows(2).all(|w| w[0] < w[1]), "a page is oldest first");
            seen.splice(0..0, ids);
        }
        prop_assert_eq!(seen, conversation);
    }

    #[test]
    fn sync_pages_hold_every_message_of_the_user_once(
        traffic in traffic(),
        limit in 1u32..=25,
        arrivals in prop::collection::vec(0usize..4, 0..40),
    ) {
        let (_dir, store) = store();
        let mut expected = Vec::new();
        for (from, to) in traffic {
            let id = send(&store, from, to);
            if from == BOB || to == BOB {
                expected.push(id);
            }
        }
        let mut seen = Vec::new();
        let mut after = 0;
        let mut arrivals = arrivals.into_iter();
        loop {
            let (page, has_more) = store.sync(BOB, after, limit).expect("page");
            seen.extend(page.iter().map(|m| m.id));
            if !has_more {
                break;
            }
            after = page.last().map_or(after, |m| m.id);
            // Messages keep arriving while the client catches up.
            for _ in 0..arrivals.next().unwrap_or(0) {
                expected.push(send(&store, CAROL, BOB));
            }
        }
        prop_assert_eq!(seen, expected);
    }
}
