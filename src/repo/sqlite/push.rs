//! [`PushSubscriptions`] on SQLite.

use chrono::{DateTime, Utc};

use super::{SqliteStore, millis, sql};
use crate::models::{SessionId, UserId};
use crate::repo::StoreError;
use crate::repo::push::{PushSubscriptions, Subscribed, Subscription};

impl PushSubscriptions for SqliteStore {
    fn subscribe(
        &self,
        user: UserId,
        session: SessionId,
        subscription: Subscription,
        max_per_user: u32,
        now: DateTime<Utc>,
    ) -> Result<Subscribed, StoreError> {
        self.write(move |conn| {
            let others: u32 = conn
                .prepare_cached(sql::OTHER_PUSH_SUBSCRIPTIONS)?
                .query_row((user, &subscription.endpoint), |row| row.get(0))?;
            if others >= max_per_user {
                return Ok(Subscribed::TooMany);
            }
            conn.prepare_cached(sql::UPSERT_PUSH_SUBSCRIPTION)?
                .execute((
                    user,
                    session,
                    &subscription.endpoint,
                    &subscription.p256dh,
                    &subscription.auth,
                    millis(now),
                ))?;
            Ok(Subscribed::Stored)
        })
    }

    fn unsubscribe(&self, user: UserId, endpoint: &str) -> Result<bool, StoreError> {
        let endpoint = endpoint.to_owned();
        self.write(move |conn| {
            let removed = conn
                .prepare_cached(sql::DELETE_PUSH_SUBSCRIPTION)?
                .execute((user, &endpoint))?;
            Ok(removed > 0)
        })
    }

    fn subscriptions_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Subscription>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::PUSH_SUBSCRIPTIONS_OF)?
                .query_map((user, millis(now)), |row| {
                    Ok(Subscription {
                        endpoint: row.get(0)?,
                        p256dh: row.get(1)?,
                        auth: row.get(2)?,
                    })
                })?
                .collect()
        })
    }

    fn forget_subscription(&self, endpoint: &str) -> Result<(), StoreError> {
        let endpoint = endpoint.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(sql::FORGET_PUSH_SUBSCRIPTION)?
                .execute([&endpoint])?;
            Ok(())
        })
    }

    fn server_secret(&self, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let name = name.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(sql::KEEP_SERVER_SECRET)?
                .execute((&name, &fresh))?;
            Ok(conn
                .prepare_cached(sql::SERVER_SECRET)?
                .query_row([&name], |row| row.get(0))?)
        })
    }
}
