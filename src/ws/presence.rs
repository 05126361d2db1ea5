//! Presence frames, encoded once and copied, never re-encoded per client.
//!
//! Telling everyone about everyone is quadratic: 10,000 users connecting at
//! once make 100 million (user, other user) facts to deliver. This module
//! keeps that volume down to the facts themselves:
//!
//! - [`OnlineList`] keeps the `online_users` frame's entries encoded and
//!   appends each arrival's, so a new connection costs one copy of the
//!   text. Encoding the list from the hub's map for every connection cost
//!   a string copy and a JSON encoding per online user; in a 10,000-user
//!   storm that was 50 million of each, most of the hub's time
//!   (docs/BENCHMARKS.md).
//! - [`PresenceChange`]s are collected by the hub and handed out once per
//!   connection per flush, each changed user once with their latest state,
//!   in the [`PresenceForm`] the client asked for: the published one (a
//!   `user_online` or `user_offline` frame per user), or, with
//!   `?presence=batch`, one `user_online` frame listing every arrival and
//!   one `user_offline` frame listing every departure. A frame per change
//!   costs a WebSocket frame per fact, which makes a connect storm slow
//!   (docs/BENCHMARKS.md); lists are what our own clients ask for.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use tungstenite::Utf8Bytes;

use super::events::{OnlineUser, ServerEvent};
use crate::models::UserId;

/// The text around the entries of an `online_users` frame. Tests hold the
/// result equal to `ServerEvent::OnlineUsers`.
const ONLINE_USERS_START: &str = r#"{"type":"online_users","users":["#;
const ONLINE_USERS_END: &str = "]}";
/// The text around the entries of `user_online` and `user_offline`. Tests
/// hold the results equal to `ServerEvent::UserOnline` and `UserOffline`.
const USER_ONLINE_START: &str = r#"{"type":"user_online","users":["#;
const USER_OFFLINE_START: &str = r#"{"type":"user_offline","users":["#;
const USERS_END: &str = "]}";

/// How a connection is told of presence changes, chosen when it connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PresenceForm {
    /// One `user_online` / `user_offline` frame per user, with
    /// `from_user_id` and `nickname`: the protocol as first published.
    #[default]
    PerUser,
    /// One frame per batch listing `users` (asked for with
    /// `?presence=batch` on the WebSocket URL).
    Batch,
}

impl PresenceForm {
    /// The form a handshake's query string asks for.
    pub fn from_query(query: Option<&str>) -> PresenceForm {
        let batch = query
            .unwrap_or_default()
            .split('&')
            .any(|pair| pair == "presence=batch");
        if batch {
            PresenceForm::Batch
        } else {
            PresenceForm::PerUser
        }
    }
}

/// The encoded `users` array of `online_users`, in the order users came
/// online (see the module docs).
#[derive(Debug, Default)]
pub struct OnlineList {
    /// `{"id":…,"nickname":…}` entries joined by commas.
    entries: String,
    /// Where each user's entry is in `entries`, without its comma.
    spans: HashMap<UserId, Range<usize>>,
    /// Someone went offline since `entries` was built. Cutting their entry
    /// out would shift every later one, so the list is rebuilt when next
    /// needed instead: one full encoding, as every connection used to cost.
    stale: bool,
}

impl OnlineList {
    /// `user` came online.
    pub fn came_online(&mut self, user: OnlineUser<'_>) {
        if self.stale {
            return; // the rebuild will list them
        }
        let Some(entry) = encode(&user) else {
            return;
        };
        if !self.entries.is_empty() {
            self.entries.push(',');
        }
        let start = self.entries.len();
        self.entries.push_str(&entry);
        self.spans.insert(user.id, start..self.entries.len());
    }

    /// Someone went offline: the kept text is rebuilt when next needed.
    pub fn someone_left(&mut self) {
        self.stale = true;
        self.entries.clear();
        self.spans.clear();
    }

    /// The `online_users` frame for a connection of `user`: everyone online
    /// but `user`. `online` is called only when the kept text is stale, and
    /// must then list everyone online.
    pub fn frame_for<'a>(
        &mut self,
        user: UserId,
        online: impl FnOnce() -> Vec<OnlineUser<'a>>,
    ) -> Utf8Bytes {
        if self.stale {
            self.stale = false;
            for each in online() {
                self.came_online(each);
            }
        }
        let mut frame = String::with_capacity(
            ONLINE_USERS_START.len() + self.entries.len() + ONLINE_USERS_END.len(),
        );
        frame.push_str(ONLINE_USERS_START);
        match self.spans.get(&user) {
            // Another connection of a user already online: cut out their
            // own entry and one comma next to it.
            Some(own) => {
                let before = self.entries[..own.start].trim_end_matches(',');
                let after = self.entries[own.end..].trim_start_matches(',');
                frame.push_str(before);
                if !before.is_empty() && !after.is_empty() {
                    frame.push(',');
                }
                frame.push_str(after);
            }
            None => frame.push_str(&self.entries),
        }
        frame.push_str(ONLINE_USERS_END);
        frame.into()
    }
}

/// One user coming online or going offline, encoded once for everyone.
#[derive(Debug)]
pub struct PresenceChange {
    pub user: UserId,
    pub online: bool,
    /// The user's `{"id":…,"nickname":…}` entry, for the batch form.
    entry: String,
    /// The whole frame of the per-user form.
    single: Utf8Bytes,
    /// Orders changes and registrations: a connection needs only the
    /// changes made after it registered (its `online_users` has the rest).
    pub tick: u64,
}

/// Presence changes waiting for the hub's next flush.
#[derive(Debug, Default)]
pub struct PendingPresence(Vec<PresenceChange>);

impl PresenceChange {
    /// `user` came online (`online`) or went offline, encoded in both forms.
    pub fn new(user: OnlineUser<'_>, online: bool, tick: u64) -> Option<PresenceChange> {
        let (from_user_id, nickname) = (user.id, user.nickname);
        let single = if online {
            ServerEvent::UserCameOnline {
                from_user_id,
                nickname,
            }
        } else {
            ServerEvent::UserWentOffline {
                from_user_id,
                nickname,
            }
        };
        Some(PresenceChange {
            user: user.id,
            online,
            entry: encode(&user)?,
            single: single.to_frame(),
            tick,
        })
    }
}

impl PendingPresence {
    pub fn push(&mut self, user: OnlineUser<'_>, online: bool, tick: u64) {
        self.0.extend(PresenceChange::new(user, online, tick));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Takes the pending changes: each user's latest only, oldest first.
    /// A client told only the latest state ends in the same place as one
    /// told every step, and a frame never names a user twice.
    pub fn take(&mut self) -> Arc<[PresenceChange]> {
        let mut seen = HashSet::new();
        let mut latest: Vec<PresenceChange> = std::mem::take(&mut self.0)
            .into_iter()
            .rev()
            .filter(|change| seen.insert(change.user))
            .collect();
        latest.reverse();
        latest.into()
    }
}

/// The frames that tell a connection of `own_user` about `changes` (theirs
/// excluded, and arrivals of users it is kept `apart` from: see
/// [`crate::privacy`]), in its `form`. Per user: a frame per change, in order. Batch:
/// a `user_online` frame if anyone else came online, then a `user_offline`
/// frame if anyone else went offline; a user is in at most one of them
/// ([`PendingPresence::take`]), so their order does not matter.
pub fn presence_frames(
    changes: &[PresenceChange],
    own_user: UserId,
    form: PresenceForm,
    apart: &HashSet<UserId>,
) -> Vec<Utf8Bytes> {
    // A departure of someone kept apart is harmless (they are not listed)
    // and is how a block takes them off the list.
    let shown = |c: &&PresenceChange| c.user != own_user && !(c.online && apart.contains(&c.user));
    match form {
        PresenceForm::PerUser => changes
            .iter()
            .filter(shown)
            .map(|c| c.single.clone())
            .collect(),
        PresenceForm::Batch => batch_frames(changes, shown).collect(),
    }
}

fn batch_frames<'c>(
    changes: &'c [PresenceChange],
    shown: impl Fn(&&PresenceChange) -> bool + Copy + 'c,
) -> impl Iterator<Item = Utf8Bytes> + 'c {
    [(true, USER_ONLINE_START), (false, USER_OFFLINE_START)]
        .into_iter()
        .filter_map(move |(online, start)| {
            let listed = || {
                changes
                    .iter()
                    .filter(move |c| c.online == online && shown(c))
            };
            listed().next()?;
            let entries: usize = listed().map(|c| c.entry.len() + 1).sum();
            let mut frame = String::with_capacity(start.len() + entries + USERS_END.len());
            frame.push_str(start);
            for (i, change) in listed().enumerate() {
                if i > 0 {
                    frame.push(',');
                }
                frame.push_str(&change.entry);
            }
            frame.push_str(USERS_END);
            Some(frame.into())
        })
}

fn encode(user: &OnlineUser<'_>) -> Option<String> {
    // An id and a string cannot fail to encode; should it ever, the entry
    // is left out rather than the frame broken.
    serde_json::to_string(user)
        .map_err(|e| log::error!("could not encode online user {}: {e}", user.id))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::events::ServerEvent;

    fn user(id: UserId, nickname: &str) -> OnlineUser<'_> {
        OnlineUser { id, nickname }
    }

    /// The protocol's own encoding of `online_users`.
    fn online_users(users: &[OnlineUser<'_>]) -> String {
        let users = users.to_vec();
        ServerEvent::OnlineUsers { users }.to_frame().to_string()
    }

    #[test]
    fn online_users_frames_match_the_protocol_encoding() {
        let everyone = [user(1, "ann"), user(2, "b\"o\\b<"), user(3, "日本")];
        let mut list = OnlineList::default();
        assert_eq!(list.frame_for(1, Vec::new).as_str(), online_users(&[]));
        for each in everyone.clone() {
            list.came_online(each);
        }
        // A newcomer sees everyone; a second connection of a user already
        // online sees everyone else, whichever place their entry has.
        let frame = |list: &mut OnlineList, id| list.frame_for(id, Vec::new).to_string();
        assert_eq!(frame(&mut list, 9), online_users(&everyone));
        assert_eq!(frame(&mut list, 1), online_users(&everyone[1..]));
        let (ann, cy) = (everyone[0].clone(), everyone[2].clone());
        assert_eq!(frame(&mut list, 2), online_users(&[ann, cy]));
        assert_eq!(frame(&mut list, 3), online_users(&everyone[..2]));
    }

    #[test]
    fn a_departure_rebuilds_the_list_from_the_hubs_view() {
        let mut list = OnlineList::default();
        list.came_online(user(1, "ann"));
        list.came_online(user(2, "bob"));
        list.someone_left();
        // Arrivals while stale are picked up by the rebuild, not twice.
        list.came_online(user(3, "cy"));
        let now_online = vec![user(2, "bob"), user(3, "cy")];
        let frame = list.frame_for(9, || now_online.clone());
        assert_eq!(frame.as_str(), online_users(&now_online));
        // Fresh again: no second rebuild, and arrivals append.
        list.came_online(user(4, "dee"));
        let frame = list.frame_for(9, || panic!("rebuilt twice"));
        let mut all = now_online.clone();
        all.push(user(4, "dee"));
        assert_eq!(frame.as_str(), online_users(&all));
    }

    #[test]
    fn presence_frames_name_each_user_once_with_their_latest_state() {
        let mut pending = PendingPresence::default();
        pending.push(user(1, "ann"), true, 1);
        pending.push(user(2, "b\"o\\b"), true, 2);
        pending.push(user(1, "ann"), false, 3);
        pending.push(user(3, "cy"), true, 4);
        pending.push(user(3, "cy"), false, 5);
        pending.push(user(3, "cy"), true, 6);
        let changes = pending.take();
        assert!(pending.is_empty());
        let order: Vec<(UserId, bool, u64)> =
            changes.iter().map(|c| (c.user, c.online, c.tick)).collect();
        assert_eq!(order, [(2, true, 2), (1, false, 3), (3, true, 6)]);

        let frames = |changes: &[PresenceChange], own| -> Vec<Utf8Bytes> {
            presence_frames(changes, own, PresenceForm::Batch, &HashSet::new())
        };
        let online = |users| ServerEvent::UserOnline { users }.to_frame();
        let offline = |users| ServerEvent::UserOffline { users }.to_frame();
        assert_eq!(
            frames(&changes, 9),
            [
                online(vec![user(2, "b\"o\\b"), user(3, "cy")]),
                offline(vec![user(1, "ann")])
            ]
        );
        // Nobody is told about themselves, and a frame with nobody to tell
        // about is not sent.
        assert_eq!(
            frames(&changes, 3),
            [
                online(vec![user(2, "b\"o\\b")]),
                offline(vec![user(1, "ann")])
            ]
        );
        assert_eq!(frames(&changes[..2], 1), [online(vec![user(2, "b\"o\\b")])]);
        assert_eq!(frames(&changes[1..2], 9), [offline(vec![user(1, "ann")])]);
        assert!(frames(&changes[2..], 3).is_empty());
        assert!(frames(&[], 3).is_empty());

        // The published form: a frame per user, in order, never about
        // oneself.
        let came = |from_user_id, nickname| {
            ServerEvent::UserCameOnline {
                from_user_id,
                nickname,
            }
            .to_frame()
        };
        let went = |from_user_id, nickname| {
            ServerEvent::UserWentOffline {
                from_user_id,
                nickname,
            }
            .to_frame()
        };
        assert_eq!(
            presence_frames(&changes, 3, PresenceForm::PerUser, &HashSet::new()),
            [came(2, "b\"o\\b"), went(1, "ann")]
        );
        assert_eq!(
            came(2, "bob").as_str(),
            r#"{"type":"user_online","from_user_id":2,"nickname":"bob"}"#
        );
        assert_eq!(
            went(1, "ann").as_str(),
            r#"{"type":"user_offline","from_user_id":1,"nickname":"ann"}"#
        );
    }

    #[test]
    fn the_form_is_chosen_by_the_query_string() {
        assert_eq!(PresenceForm::from_query(None), PresenceForm::PerUser);
        assert_eq!(PresenceForm::from_query(Some("")), PresenceForm::PerUser);
        assert_eq!(
            PresenceForm::from_query(Some("presence=batch")),
            PresenceForm::Batch
        );
        assert_eq!(
            PresenceForm::from_query(Some("x=1&presence=batch")),
            PresenceForm::Batch
        );
        assert_eq!(
            PresenceForm::from_query(Some("presence=batches")),
            PresenceForm::PerUser
        );
    }
}
