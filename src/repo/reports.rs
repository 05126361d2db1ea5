//! Storage of reports: a user tells the admins about a message they
//! received, and an admin records what they did about it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::models::{
    Message, MessageId, UserId, serialize_optional_timestamp, serialize_timestamp,
};

/// What an admin did about a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Nothing to act on.
    Dismissed,
    /// The message was deleted for everyone.
    MessageDeleted,
    /// Its sender's account was disabled.
    SenderDisabled,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Dismissed => "dismissed",
            Resolution::MessageDeleted => "message_deleted",
            Resolution::SenderDisabled => "sender_disabled",
        }
    }
}

/// A report as the admin page shows it: the message as the reporter saw
/// it, in its context (the messages just before and after it).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub id: i64,
    pub reporter_id: UserId,
    pub reporter_nickname: String,
    pub sender_id: UserId,
    pub sender_nickname: String,
    pub reason: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<String>,
    /// The reported message as the reporter sees it (`null` if they have
    /// since deleted it for themselves).
    pub message: Option<Message>,
    /// Up to [`REPORT_CONTEXT`] messages before it and after it, oldest
    /// first, the reported one among them.
    pub context: Vec<Message>,
}

/// Messages shown on each side of a reported one.
pub const REPORT_CONTEXT: u32 = 3;

/// The message a report is about, for acting on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reported {
    pub message_id: MessageId,
    pub sender_id: UserId,
    pub resolved: bool,
}

pub trait Reports {
    /// Records that `reporter` reports message `message_id`, which must be
    /// one they received and see ([`super::Refusal::NoSuchMessage`]
    /// otherwise, [`super::Refusal::NotTheSender`]'s opposite: reporting
    /// one's own message is refused as `InvalidReport`). Reporting the same
    /// message again returns the first report's id.
    fn create_report(
        &self,
        reporter: UserId,
        message_id: MessageId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError>;
    /// The reports no admin has resolved, oldest first.
    fn open_reports(&self) -> Result<Vec<Report>, StoreError>;
    fn reported(&self, id: i64) -> Result<Option<Reported>, StoreError>;
    /// Marks report `id` resolved by `admin`; `false` if it was already.
    fn resolve_report(
        &self,
        id: i64,
        admin: UserId,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
