//! [`Reports`] on SQLite.

use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;

use super::{SqliteStore, actions, millis, optional_timestamp, sql, timestamp};
use crate::models::{MessageId, UserId};
use crate::repo::reports::{REPORT_CONTEXT, Report, Reported, Reports, Resolution};
use crate::repo::{Refusal, StoreError};

impl Reports for SqliteStore {
    fn create_report(
        &self,
        reporter: UserId,
        message_id: MessageId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let reason = reason.to_owned();
        self.write(move |conn| {
            let facts = actions::facts(conn, message_id, reporter)?;
            if facts.sender_id == reporter {
                return Err(StoreError::Refused(Refusal::OwnMessage));
            }
            conn.prepare_cached(sql::INSERT_REPORT)?.execute((
                reporter,
                message_id,
                &reason,
                millis(now),
            ))?;
            Ok(conn
                .prepare_cached(sql::REPORT_ID)?
                .query_row((reporter, message_id), |row| row.get(0))?)
        })
    }

    fn open_reports(&self) -> Result<Vec<Report>, StoreError> {
        self.read(|conn| {
            let rows: Vec<(Report, MessageId, UserId)> = conn
                .prepare_cached(sql::OPEN_REPORTS)?
                .query_map([], |row| {
                    Ok((
                        Report {
                            id: row.get(0)?,
                            reporter_id: row.get(1)?,
                            reporter_nickname: row.get(2)?,
                            sender_id: row.get(3)?,
                            sender_nickname: row.get(4)?,
                            reason: row.get(5)?,
                            created_at: timestamp(row, 6)?,
                            resolved_at: optional_timestamp(row, 7)?,
                            resolution: row.get(8)?,
                            message: None,
                            context: Vec::new(),
                        },
                        row.get(9)?,
                        row.get(10)?,
                    ))
                })?
                .collect::<Result<_, _>>()?;
            let mut reports = Vec::with_capacity(rows.len());
            for (mut report, message_id, receiver) in rows {
                let context = super::page_around(
                    conn,
                    (report.sender_id, receiver),
                    message_id,
                    report.reporter_id,
                    2 * REPORT_CONTEXT + 1,
                )?;
                report.message = context.iter().find(|m| m.id == message_id).cloned();
                report.context = context;
                reports.push(report);
            }
            Ok(reports)
        })
    }

    fn reported(&self, id: i64) -> Result<Option<Reported>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::REPORTED)?
                .query_row([id], |row| {
                    Ok(Reported {
                        message_id: row.get(0)?,
                        sender_id: row.get(1)?,
                        resolved: row.get(2)?,
                    })
                })
                .optional()
        })
    }

    fn resolve_report(
        &self,
        id: i64,
        admin: UserId,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            Ok(conn.prepare_cached(sql::RESOLVE_REPORT)?.execute((
                id,
                admin,
                millis(now),
                resolution.as_str(),
            ))? == 1)
        })
    }
}
