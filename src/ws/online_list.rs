//! The `online_users` frame, kept encoded between connections.
//!
//! Every new connection is first told who else is online. Encoding that
//! list from the hub's map costs a string copy and a JSON encoding per
//! online user, so N users arriving at once cost the hub N²/2 of them:
//! with 10,000 users, 50 million, and most of the hub's time in a storm
//! (`perf`: allocation and `format_escaped_str` made 60% of its samples).
//!
//! [`OnlineList`] keeps the encoded entries and appends each arrival's, so
//! a new connection costs one copy of the text. A departure would leave a
//! hole to cut out, so it marks the text stale instead; the next
//! connection pays for one full encoding, as every connection used to.

use std::collections::HashMap;
use std::ops::Range;

use tungstenite::Utf8Bytes;

use super::events::OnlineUser;
use crate::models::UserId;

/// What comes before the entries in an `online_users` frame (and after:
/// [`FRAME_END`]). A test holds the result equal to `ServerEvent::OnlineUsers`.
const FRAME_START: &str = r#"{"type":"online_users","users":["#;
const FRAME_END: &str = "]}";

/// The encoded `users` array of `online_users`, in the order users came
/// online (see the module docs).
#[derive(Debug, Default)]
pub struct OnlineList {
    /// `{"id":…,"nickname":…}` entries joined by commas.
    entries: String,
    /// Where each user's entry is in `entries`, without its comma.
    spans: HashMap<UserId, Range<usize>>,
    /// Someone went offline since `entries` was built.
    stale: bool,
}

impl OnlineList {
    /// `user` came online.
    pub fn add(&mut self, user: OnlineUser<'_>) {
        if !self.stale {
            self.append(user);
        }
    }

    /// Someone went offline.
    pub fn remove(&mut self) {
        self.stale = true;
        self.entries.clear();
        self.spans.clear();
    }

    /// The `online_users` frame for a connection of `user`: everyone in
    /// `online` but `user`. `online` is consulted only when the kept text
    /// is stale, and must then list everyone online.
    pub fn frame_for<'a>(
        &mut self,
        user: UserId,
        online: impl FnOnce() -> Vec<OnlineUser<'a>>,
    ) -> Utf8Bytes {
        if self.stale {
            self.stale = false;
            for each in online() {
                self.append(each);
            }
        }
        let mut frame =
            String::with_capacity(FRAME_START.len() + self.entries.len() + FRAME_END.len());
        frame.push_str(FRAME_START);
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
        frame.push_str(FRAME_END);
        frame.into()
    }

    fn append(&mut self, user: OnlineUser<'_>) {
        // Encoding an id and a string cannot fail; should it ever, the
        // entry is left out rather than the list broken.
        let entry = match serde_json::to_string(&user) {
            Ok(entry) => entry,
            Err(e) => return log::error!("could not encode online user {}: {e}", user.id),
        };
        if !self.entries.is_empty() {
            self.entries.push(',');
        }
        let start = self.entries.len();
        self.entries.push_str(&entry);
        self.spans.insert(user.id, start..self.entries.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::events::ServerEvent;

    fn user(id: UserId, nickname: &str) -> OnlineUser<'_> {
        OnlineUser { id, nickname }
    }

    /// What the frame must be: the protocol's own encoding.
    fn expected(users: &[OnlineUser<'_>]) -> String {
        ServerEvent::OnlineUsers {
            users: users.to_vec(),
        }
        .to_frame()
        .to_string()
    }

    #[test]
    fn frames_match_the_protocol_encoding() {
        let everyone = [user(1, "ann"), user(2, "b\"o\\b<"), user(3, "日本")];
        let mut list = OnlineList::default();
        assert_eq!(list.frame_for(1, Vec::new).as_str(), expected(&[]));
        for each in everyone.clone() {
            list.add(each);
        }
        // A newcomer sees everyone; a second connection of a user already
        // online sees everyone else, whichever place their entry has.
        assert_eq!(list.frame_for(9, Vec::new).as_str(), expected(&everyone));
        assert_eq!(
            list.frame_for(1, Vec::new).as_str(),
            expected(&everyone[1..])
        );
        assert_eq!(
            list.frame_for(2, Vec::new).as_str(),
            expected(&[everyone[0].clone(), everyone[2].clone()])
        );
        assert_eq!(
            list.frame_for(3, Vec::new).as_str(),
            expected(&everyone[..2])
        );
    }

    #[test]
    fn a_departure_rebuilds_from_the_hubs_view() {
        let mut list = OnlineList::default();
        list.add(user(1, "ann"));
        list.add(user(2, "bob"));
        list.remove();
        // Arrivals while stale are picked up by the rebuild, not twice.
        list.add(user(3, "cy"));
        let now_online = vec![user(2, "bob"), user(3, "cy")];
        assert_eq!(
            list.frame_for(9, || now_online.clone()).as_str(),
            expected(&now_online)
        );
        // Fresh again: no second rebuild, and arrivals append.
        list.add(user(4, "dee"));
        let mut all = now_online.clone();
        all.push(user(4, "dee"));
        assert_eq!(
            list.frame_for(9, || panic!("rebuilt twice")).as_str(),
            expected(&all)
        );
    }
}
