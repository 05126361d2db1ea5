//! Files over REST.
//!
//! - Uploads, `POST /api/attachments?name=NAME` with the file as the body.
//!   By the time a worker runs this, the connection's own thread has
//!   written the body to a file (`super::upload_spool`): the worker copies
//!   it into the file store (hashing it), finds its type from its bytes,
//!   and records it, within the uploader's quota.
//! - Downloads, `GET /api/attachments/{id}`: for those who may see it
//!   only, with the headers that keep a hostile file from acting as a page
//!   of ours; whole, or the `Range` asked for; streamed from disk by the
//!   connection's thread.

use std::fs::File;

use serde_json::json;

use super::handlers::{chat_error, path_segment};
use super::{
    ApiError, FileBody, HttpRequest, HttpResponse, Reply, guards::authenticate, query_text,
};
use crate::app::App;
use crate::chat::ChatError;
use crate::files::name::safe_name;
use crate::files::sniff::{is_inline_image, sniff};
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
    let raw_name = query_text(&request.query, "name")
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

/// `GET /api/attachments/{id}`: the file, to its uploader and to both
/// sides of a conversation it was sent in; 404 to anyone else, whether it
/// exists or not.
pub fn download(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let missing = || ApiError::not_found("no such attachment");
    let id: i64 = path_segment(request, 3)?.parse().map_err(|_| missing())?;
    let (attachment, sha256) = app.store.attachment(user.id, id)?.ok_or_else(missing)?;
    let path = app
        .files
        .path_of(&sha256)
        .ok_or_else(|| ApiError::internal("a stored digest is not a file name"))?;
    let etag = format!("\"{sha256}\"");
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Content-Type", attachment.mime.clone()),
        // Opened directly, even an HTML file is a sandboxed page of no
        // origin: it cannot run script as ours or read our cookies.
        ("Content-Security-Policy", "sandbox".into()),
        (
            "Content-Disposition",
            disposition(&attachment.mime, &attachment.name),
        ),
        ("ETag", etag.clone()),
        // The bytes behind an id never change.
        (
            "Cache-Control",
            "private, max-age=31536000, immutable".into(),
        ),
        ("Accept-Ranges", "bytes".into()),
    ];
    let respond = |status, headers, file| {
        Reply::raw(HttpResponse {
            status,
            headers,
            body: String::new(),
            file,
        })
    };
    let size = attachment.size;
    if request
        .header_values("If-None-Match")
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*")
    {
        return Ok(respond(304, headers, None));
    }
    let range = request
        .header_values("Range")
        .next()
        .map(|r| byte_range(r, size));
    let (status, offset, len) = match range {
        None | Some(RangeAsked::Ignored) => (200, 0, size),
        Some(RangeAsked::Part(start, end)) => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            (206, start, end - start + 1)
        }
        Some(RangeAsked::Unsatisfiable) => {
            return Err(ApiError::new(416, "the range asked for is not in the file")
                .with_header("Content-Range", format!("bytes */{size}")));
        }
    };
    let file = FileBody { path, offset, len };
    Ok(respond(status, headers, Some(file)))
}

/// A `Range` header, as far as we answer it: one range of bytes.
#[derive(Debug, PartialEq, Eq)]
enum RangeAsked {
    /// Bytes `start..=end` of the file.
    Part(u64, u64),
    /// A range outside the file: 416.
    Unsatisfiable,
    /// Not one range of bytes (several, another unit, malformed): the
    /// whole file is sent, as RFC 9110 allows.
    Ignored,
}

/// Reads `bytes=START-END`, `bytes=START-` and `bytes=-SUFFIX` against a
/// file of `size` bytes.
fn byte_range(header: &str, size: u64) -> RangeAsked {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeAsked::Ignored;
    };
    if spec.contains(',') {
        return RangeAsked::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsked::Ignored;
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), number(first), number(last)) {
        // The last N bytes.
        (true, _, Some(suffix)) if suffix > 0 => {
            (size.saturating_sub(suffix), size.saturating_sub(1))
        }
        (true, _, _) => return RangeAsked::Unsatisfiable,
        (false, Some(start), None) if last.trim().is_empty() => (start, size.saturating_sub(1)),
        (false, Some(start), Some(end)) if start <= end => (start, end.min(size.saturating_sub(1))),
        _ => return RangeAsked::Ignored,
    };
    if size == 0 || start >= size {
        return RangeAsked::Unsatisfiable;
    }
    RangeAsked::Part(start, end)
}

/// `Content-Disposition` (RFC 6266): the raster images we recognised are
/// shown inline, everything else is a download; the name both as plain
/// ASCII (what old clients read) and in UTF-8 (`filename*`).
fn disposition(mime: &str, name: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    /// RFC 8187 `attr-char`: what may stand unencoded in `filename*`.
    const ATTR: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    let kind = if is_inline_image(mime) {
        "inline"
    } else {
        "attachment"
    };
    let ascii: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        utf8_percent_encode(name, ATTR)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_bytes_as_rfc_9110_reads_them() {
        use RangeAsked::*;
        assert_eq!(byte_range("bytes=0-9", 100), Part(0, 9));
        assert_eq!(byte_range("bytes=90-", 100), Part(90, 99));
        assert_eq!(byte_range("bytes=-10", 100), Part(90, 99));
        assert_eq!(byte_range("bytes=-1000", 100), Part(0, 99));
        assert_eq!(byte_range("bytes=50-1000", 100), Part(50, 99));
        assert_eq!(byte_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(byte_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(byte_range("bytes=0-0", 0), Unsatisfiable);
        assert_eq!(byte_range("bytes=5-1", 100), Ignored);
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ignored);
        assert_eq!(byte_range("items=0-1", 100), Ignored);
        assert_eq!(byte_range("bytes=x-y", 100), Ignored);
    }

    #[test]
    fn only_recognised_images_are_inline_and_names_are_quoted_safely() {
        assert_eq!(
            disposition("image/png", "a.png"),
            "inline; filename=\"a.png\"; filename*=UTF-8''a.png"
        );
        assert_eq!(
            disposition("text/html", "x\".html"),
            "attachment; filename=\"x_.html\"; filename*=UTF-8''x%22.html"
        );
        assert_eq!(
            disposition("image/svg+xml", "résumé.svg"),
            "attachment; filename=\"r_sum_.svg\"; filename*=UTF-8''r%C3%A9sum%C3%A9.svg"
        );
    }
}
