//! Uploads: `POST /api/attachments?name=NAME` with the file as the body.
//!
//! By the time a worker runs this, the connection's own thread has written
//! the body to a file (`super::upload_spool`): the worker copies it into
//! the file store (hashing it), finds its type from its bytes, and records
//! it, within the uploader's quota.

use std::fs::File;

use serde_json::json;

use super::handlers::chat_error;
use super::{ApiError, HttpRequest, Reply, guards::authenticate};
use crate::app::App;
use crate::chat::ChatError;
use crate::files::name::safe_name;
use crate::files::sniff::sniff;
use crate::files::store::FileError;
use crate::models::NewAttachment;
use crate::repo::{Refusal, StoreError};
use tiny_http::SpoolOutcome;

/// Seconds a client is told to wait when too many uploads are being
/// written at once.
const BUSY_RETRY_SECONDS: u64 = 5;

pub fn upload(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    app.limits
        .messages
        .check(user.id)
        .map_err(|wait| ApiError::too_many("too many uploads; slow down", wait))?;
    let raw_name = query_value(&request.query, "name")
        .ok_or_else(|| ApiError::bad_request("name is required (?name=FILENAME)"))?;
    let name =
        safe_name(&raw_name).ok_or_else(|| ApiError::bad_request("name must name a file"))?;
    let max = app.config.max_upload;
    let too_large = || {
        ApiError::new(413, format!("the file is larger than {max} bytes")).with_code("too_large")
    };
    // The body: in a file written by the connection's thread, or (empty,
    // or from a request built without one, as in the fuzz target) in memory.
    let put = match &request.upload {
        Some(upload) => match (upload.outcome, &upload.path) {
            (SpoolOutcome::Whole, Some(path)) => {
                let file = File::open(path).map_err(ApiError::internal)?;
                app.files.put(file, max)
            }
            (SpoolOutcome::TooLarge, _) => return Err(too_large()),
            (SpoolOutcome::Busy, _) => {
                return Err(ApiError::too_busy(
                    "too many uploads at once; retry in a moment",
                    BUSY_RETRY_SECONDS,
                ));
            }
            _ => {
                return Err(ApiError::internal(
                    "the upload could not be written to disk",
                ));
            }
        },
        None if request.body_too_large => return Err(too_large()),
        None => app.files.put(&request.body[..], max),
    };
    let put = match put {
        Ok(put) => put,
        Err(FileError::TooLarge { .. }) => return Err(too_large()),
        Err(FileError::Io(e)) => return Err(ApiError::internal(e)),
    };
    let sniffed = sniff(&put.head);
    let new = NewAttachment {
        uploader_id: user.id,
        sha256: put.sha256.clone(),
        name,
        size: put.size,
        mime: sniffed.mime.to_owned(),
        image: sniffed.image,
    };
    match app.store.insert_attachment(new, app.config.upload_quota) {
        Ok(attachment) => {
            log::info!(
                "user {} uploaded attachment {} ({} bytes)",
                user.id,
                attachment.id,
                attachment.size
            );
            Ok(Reply::with_status(201, json!({ "attachment": attachment })))
        }
        Err(refused) => {
            // Bytes stored only for this upload go with it.
            if !put.existed
                && let Err(e) = app.files.remove(&put.sha256)
            {
                log::warn!("cannot remove a refused upload's file: {e}");
            }
            match refused {
                StoreError::Refused(Refusal::QuotaExceeded) => Err(ApiError::new(
                    413,
                    format!("upload quota of {} bytes reached", app.config.upload_quota),
                )
                .with_code("quota_exceeded")),
                other => Err(chat_error(ChatError::from_store(other))),
            }
        }
    }
}

/// A query parameter, percent-decoded (`+` is a space, as forms send it).
fn query_value(query: &str, name: &str) -> Option<String> {
    let raw = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.replace('+', " "))?;
    Some(
        percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}
