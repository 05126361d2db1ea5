//! Noticing accounts disabled by another process.
//!
//! `chat-server admin disable` writes to the database file from the
//! operator's shell while the server runs. The disabled account's sessions
//! are gone with that transaction, so no new request or connection gets
//! in; but connections already open do not ask the database again. This
//! thread looks at the (few) disabled accounts a few times a second and
//! has the hub close the connections of each one that is new. An admin
//! who disables over REST closes them at once, and this thread then finds
//! nothing to do.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::models::UserId;
use crate::repo::Store;
use crate::ws::hub::{Control, HubHandle};
use crate::ws::outbound::CloseReason;

/// How often the disabled accounts are read: a connection of an account
/// disabled from the shell closes within this (well inside a second). The
/// query reads a partial index of the disabled accounts only.
pub const WATCH_PERIOD: Duration = Duration::from_millis(200);

/// The watching thread; stopped by [`DisabledWatch::stop`].
pub struct DisabledWatch {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl DisabledWatch {
    pub fn spawn(store: Arc<dyn Store>, hub: HubHandle) -> std::io::Result<DisabledWatch> {
        let (stop, stopped) = bounded(1);
        let thread = thread::Builder::new()
            .name("disabled-watch".into())
            .spawn(move || watch(&*store, &hub, &stopped))?;
        Ok(DisabledWatch { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn watch(store: &dyn Store, hub: &HubHandle, stopped: &Receiver<()>) {
    // Those disabled before the start have no sessions and no connections.
    let mut known: HashSet<UserId> = match store.disabled_users() {
        Ok(users) => users.into_iter().collect(),
        Err(e) => {
            log::error!("reading the disabled accounts: {e}");
            HashSet::new()
        }
    };
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WATCH_PERIOD) {
        let now: HashSet<UserId> = match store.disabled_users() {
            Ok(users) => users.into_iter().collect(),
            Err(e) => {
                log::warn!("reading the disabled accounts: {e}");
                continue;
            }
        };
        for &user in now.difference(&known) {
            // Not waited for: the hub closes them in its own time.
            let (closed, _) = bounded(1);
            hub.control(Control::CloseUser {
                user,
                keep: None,
                reason: CloseReason::AccountDisabled,
                closed,
            });
        }
        known = now;
    }
}
