//! [`Accounts`] on SQLite: every write goes through the writer thread, so
//! that an invitation or a reset link checked and used in one transaction
//! cannot be used twice by two requests racing each other.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row};

use super::{SqliteStore, constraint_code, millis, optional_timestamp, sql, timestamp, user_at};
use crate::models::{Role, SessionId, StoredThumbnail, User, UserId};
use crate::repo::accounts::{
    AccountSummary, Accounts, Admission, Invite, NewInvite, NotAdmitted, ServerStats, SessionInfo,
    invite_url,
};
use crate::repo::{Refusal, StoreError};

/// Whether `admission` lets one more account in at `now`; the invitation
/// whose use it counts, if any. Runs inside the registering transaction.
fn admit(conn: &Connection, admission: &Admission, now: i64) -> Result<Option<String>, StoreError> {
    let code = match admission {
        Admission::Anyone => return Ok(None),
        Admission::AnyoneUntilAdmin(code) => {
            if !admin_exists(conn)? {
                return Ok(None);
            }
            code
        }
        Admission::Invited(code) => code,
    };
    let Some(code) = code.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
        return Err(StoreError::NotAdmitted(NotAdmitted::InviteRequired));
    };
    let state: Option<(Option<i64>, i64, i64)> = conn
        .prepare_cached(sql::INVITE_STATE)?
        .query_row([code], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    match state {
        None => Err(StoreError::NotAdmitted(NotAdmitted::InviteUnknown)),
        Some((Some(expires_at), _, _)) if expires_at <= now => {
            Err(StoreError::NotAdmitted(NotAdmitted::InviteExpired))
        }
        Some((_, max_uses, uses)) if uses >= max_uses => {
            Err(StoreError::NotAdmitted(NotAdmitted::InviteUsedUp))
        }
        Some(_) => Ok(Some(code.to_owned())),
    }
}

/// Sets `user`'s picture to `attachment` and removes the row of the one it
/// replaces; returns the digests of the files that row held.
fn replace_avatar(
    conn: &Connection,
    user: UserId,
    attachment: Option<i64>,
) -> Result<Vec<String>, StoreError> {
    let current: Option<i64> = conn
        .prepare_cached(sql::CURRENT_AVATAR)?
        .query_row([user], |row| row.get(0))
        .optional()?
        .flatten();
    conn.prepare_cached(sql::SET_AVATAR)?
        .execute((user, attachment))?;
    let mut released = Vec::new();
    if let Some(old) = current.filter(|old| Some(*old) != attachment) {
        let digests = conn
            .prepare_cached(sql::ERASE_ATTACHMENT)?
            .query_row([old], super::digests_at)
            .optional()?;
        released.extend(digests.into_iter().flatten());
    }
    Ok(released)
}

impl SqliteStore {
    /// A write that may stop referring to stored files: once committed,
    /// their digests go to the file remover.
    fn write_releasing<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<(T, Vec<String>), StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let released = self.released.0.clone();
        let (value, digests) = self.write(work)?;
        for sha256 in digests {
            let _ = released.try_send(sha256);
        }
        Ok(value)
    }
}

fn admin_exists(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(sql::ADMIN_EXISTS)?
        .query_row([], |row| row.get(0))?)
}

fn invite_at(row: &Row<'_>) -> rusqlite::Result<Invite> {
    let code: String = row.get(0)?;
    Ok(Invite {
        url: invite_url(&code),
        code,
        created_by_id: row.get(1)?,
        created_by_nickname: row.get(2)?,
        created_at: timestamp(row, 3)?,
        expires_at: optional_timestamp(row, 4)?,
        max_uses: row.get(5)?,
        uses: row.get(6)?,
    })
}

impl Accounts for SqliteStore {
    fn create_user(
        &self,
        nickname: &str,
        email: &str,
        password_hash: &str,
        admission: Admission,
    ) -> Result<User, StoreError> {
        let (nickname, email, hash) = (
            nickname.to_owned(),
            email.to_owned(),
            password_hash.to_owned(),
        );
        self.write(move |conn| {
            let now = millis(Utc::now());
            let invite = admit(conn, &admission, now)?;
            let retired: bool = conn
                .prepare_cached(sql::NICKNAME_RETIRED)?
                .query_row((&nickname, now), |row| row.get(0))?;
            if retired {
                return Err(StoreError::Taken("nickname"));
            }
            let inserted = conn
                .prepare_cached(sql::INSERT_USER)?
                .execute((&nickname, &email, &hash, now));
            match inserted {
                Ok(_) => {}
                Err(e) if constraint_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) => {
                    // SQLite names the column: "UNIQUE constraint failed: users.email".
                    let column = if e.to_string().contains("users.email") {
                        "email"
                    } else {
                        "nickname"
                    };
                    return Err(StoreError::Taken(column));
                }
                Err(e) => return Err(e.into()),
            }
            let id = conn.last_insert_rowid();
            if let Some(code) = invite {
                conn.prepare_cached(sql::USE_INVITE)?.execute([code])?;
            }
            Ok(conn
                .prepare_cached(sql::USER_BY_ID)?
                .query_row([id], |row| user_at(row, 0))?)
        })
    }

    fn admin_exists(&self) -> Result<bool, StoreError> {
        let reader = self.readers.get()?;
        let conn = reader.conn.as_ref().ok_or(StoreError::Closed)?;
        admin_exists(conn)
    }

    fn admin_count(&self) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::ADMIN_COUNT)?
                .query_row([], |row| row.get(0))
        })
    }

    fn user_by_nickname(&self, nickname: &str) -> Result<Option<User>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::USER_BY_NICKNAME)?
                .query_row([nickname], |row| user_at(row, 0))
                .optional()
        })
    }

    fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let now = millis(Utc::now());
        self.read(|conn| {
            conn.prepare_cached(sql::ACCOUNTS)?
                .query_map([now], |row| {
                    Ok(AccountSummary {
                        id: row.get(0)?,
                        nickname: row.get(1)?,
                        email: row.get(2)?,
                        role: Role::from_column(&row.get::<_, String>(3)?),
                        created_at: timestamp(row, 4)?,
                        last_seen_at: optional_timestamp(row, 5)?,
                        disabled: row.get(6)?,
                        sessions: row.get(7)?,
                        display_name: row.get(8)?,
                    })
                })?
                .collect()
        })
    }

    fn set_role(&self, user: UserId, role: Role) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(sql::SET_ROLE)?
                .execute((user, role.as_str()))?
                == 1)
        })
    }

    fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let since = disabled.then(|| millis(now));
        self.write(move |conn| {
            let found = conn
                .prepare_cached(sql::SET_DISABLED)?
                .execute((user, since))?
                == 1;
            if found && disabled {
                conn.prepare_cached(sql::DELETE_USER_SESSIONS)?
                    .execute([user])?;
            }
            Ok(found)
        })
    }

    fn disabled_users(&self) -> Result<Vec<UserId>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::DISABLED_USERS)?
                .query_map([], |row| row.get(0))?
                .collect()
        })
    }

    fn create_invite(&self, invite: NewInvite) -> Result<Invite, StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(sql::INSERT_INVITE)?.execute((
                &invite.code,
                invite.created_by,
                millis(invite.now),
                invite.expires_at.map(millis),
                invite.max_uses,
            ))?;
            let created_by_nickname = match invite.created_by {
                Some(id) => conn
                    .prepare_cached(sql::USER_BY_ID)?
                    .query_row([id], |row| user_at(row, 0))
                    .optional()?
                    .map(|user| user.nickname),
                None => None,
            };
            Ok(Invite {
                url: invite_url(&invite.code),
                code: invite.code,
                created_by_id: invite.created_by,
                created_by_nickname,
                // As stored: to the millisecond.
                created_at: super::from_millis(millis(invite.now)),
                expires_at: invite.expires_at.map(|t| super::from_millis(millis(t))),
                max_uses: invite.max_uses,
                uses: 0,
            })
        })
    }

    fn invites(&self, created_by: Option<UserId>) -> Result<Vec<Invite>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::INVITES)?
                .query_map([created_by], invite_at)?
                .collect()
        })
    }

    fn delete_invite(&self, code: &str, created_by: Option<UserId>) -> Result<bool, StoreError> {
        let code = code.to_owned();
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(sql::DELETE_INVITE)?
                .execute((code, created_by))?
                == 1)
        })
    }

    fn sessions_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::SESSIONS_OF)?
                .query_map((user, millis(now)), |row| {
                    Ok(SessionInfo {
                        id: row.get(0)?,
                        created_at: timestamp(row, 1)?,
                        last_seen_at: timestamp(row, 2)?,
                        expires_at: timestamp(row, 3)?,
                        address: row.get(4)?,
                        device: row.get(5)?,
                    })
                })?
                .collect()
        })
    }

    fn end_session(&self, user: UserId, id: SessionId) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(sql::DELETE_USER_SESSION)?
                .execute((user, id))?
                == 1)
        })
    }

    fn end_other_sessions(&self, user: UserId, keep: SessionId) -> Result<usize, StoreError> {
        self.write(move |conn| {
            Ok(conn
                .prepare_cached(sql::DELETE_OTHER_SESSIONS)?
                .execute((user, keep))?)
        })
    }

    fn touch_session(&self, id: SessionId, user: UserId, now: DateTime<Utc>) {
        let now = millis(now);
        self.writer.submit(
            move |conn| {
                conn.prepare_cached(sql::TOUCH_SESSION)?
                    .execute((id, now))?;
                conn.prepare_cached(sql::TOUCH_USER)?.execute((user, now))?;
                Ok(())
            },
            |outcome| {
                if let Err(e) = outcome {
                    log::warn!("recording when a session was last used: {e}");
                }
            },
        );
    }

    fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
    ) -> Result<(), StoreError> {
        let hash = password_hash.to_owned();
        self.write(move |conn| {
            conn.prepare_cached(sql::SET_PASSWORD)?
                .execute((user, &hash))?;
            match keep {
                Some(keep) => conn
                    .prepare_cached(sql::DELETE_OTHER_SESSIONS)?
                    .execute((user, keep))?,
                None => conn
                    .prepare_cached(sql::DELETE_USER_SESSIONS)?
                    .execute([user])?,
            };
            conn.prepare_cached(sql::DELETE_USER_RESETS)?
                .execute([user])?;
            Ok(())
        })
    }

    fn create_password_reset(
        &self,
        user: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            conn.prepare_cached(sql::DELETE_USER_RESETS)?
                .execute([user])?;
            conn.prepare_cached(sql::INSERT_RESET)?.execute((
                &token_hash,
                user,
                millis(expires_at),
            ))?;
            Ok(())
        })
    }

    fn use_password_reset(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError> {
        let (token_hash, hash, now) = (token_hash.to_vec(), password_hash.to_owned(), millis(now));
        self.write(move |conn| {
            let taken: Option<(UserId, i64)> = conn
                .prepare_cached(sql::TAKE_RESET)?
                .query_row([&token_hash], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            let Some((user, _)) = taken.filter(|(_, expires_at)| *expires_at > now) else {
                return Ok(None);
            };
            conn.prepare_cached(sql::SET_PASSWORD)?
                .execute((user, &hash))?;
            conn.prepare_cached(sql::DELETE_USER_SESSIONS)?
                .execute([user])?;
            conn.prepare_cached(sql::DELETE_USER_RESETS)?
                .execute([user])?;
            Ok(Some(user))
        })
    }

    fn stats(&self, now: DateTime<Utc>) -> Result<ServerStats, StoreError> {
        let mut stats = self.read(|conn| {
            conn.prepare_cached(sql::STATS)?
                .query_row([millis(now)], |row| {
                    Ok(ServerStats {
                        users: row.get(0)?,
                        admins: row.get(1)?,
                        disabled_users: row.get(2)?,
                        live_sessions: row.get(3)?,
                        messages: row.get(4)?,
                        attachments: row.get(5)?,
                        attachment_bytes: row.get(6)?,
                        open_invites: row.get(7)?,
                        database_bytes: 0,
                    })
                })
        })?;
        stats.database_bytes = i64::try_from(self.database_bytes()).unwrap_or(i64::MAX);
        Ok(stats)
    }

    fn set_display_name(&self, user: UserId, name: Option<&str>) -> Result<(), StoreError> {
        let name = name.map(str::to_owned);
        self.write(move |conn| {
            conn.prepare_cached(sql::SET_DISPLAY_NAME)?
                .execute((user, name))?;
            Ok(())
        })
    }

    fn other_names(&self, user: UserId) -> Result<Vec<(String, Option<String>)>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::OTHER_NAMES)?
                .query_map([user], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
    }

    fn delete_sent_messages(
        &self,
        user: UserId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        self.delete_for_everyone(
            move |conn| {
                Ok(conn
                    .prepare_cached(sql::UNDELETED_SENT)?
                    .query_map((user, limit), |row| Ok((row.get(0)?, user)))?
                    .collect::<Result<_, _>>()?)
            },
            now,
        )
    }

    fn erase_account(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        retired_until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (now, until) = (millis(now), millis(retired_until));
        self.write_releasing(move |conn| {
            let nickname: Option<String> = conn
                .prepare_cached(sql::USER_BY_ID)?
                .query_row([user], |row| row.get(1))
                .optional()?;
            let Some(nickname) = nickname else {
                return Ok((false, Vec::new()));
            };
            conn.prepare_cached(sql::RETIRE_NICKNAME)?
                .execute((&nickname, until))?;
            let released = replace_avatar(conn, user, None)?;
            conn.prepare_cached(sql::ERASE_ACCOUNT)?
                .execute((user, now))?;
            conn.prepare_cached(sql::DELETE_USER_SESSIONS)?
                .execute([user])?;
            conn.prepare_cached(sql::DELETE_USER_RESETS)?
                .execute([user])?;
            conn.prepare_cached(sql::DELETE_USER_INVITES)?
                .execute([user])?;
            Ok((true, released))
        })
    }

    fn set_avatar(&self, user: UserId, attachment: Option<i64>) -> Result<(), StoreError> {
        self.write_releasing(move |conn| {
            if let Some(id) = attachment {
                let usable = conn
                    .prepare_cached(sql::AVATAR_CANDIDATE)?
                    .exists((id, user))?;
                if !usable {
                    return Err(StoreError::Refused(Refusal::InvalidAttachment));
                }
            }
            Ok(((), replace_avatar(conn, user, attachment)?))
        })
    }

    fn avatar(&self, user: UserId) -> Result<Option<StoredThumbnail>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::AVATAR_FILE)?
                .query_row([user], |row| {
                    Ok(StoredThumbnail {
                        sha256: row.get(0)?,
                        mime: row.get(1)?,
                    })
                })
                .optional()
        })
    }
}
