//! Files over REST.
//!
//! - Uploads, `POST /api/attachments?name=NAME` with the file as the body
//!   (or a form's file). By the time a worker runs this, the connection's
//!   own thread has written the body to a file (`super::upload_spool`).
//!   The worker, in order: takes a form's file out of it; finds the type
//!   from the bytes; for an image, has the image workers remove its
//!   metadata and make its thumbnail; copies the result into the file
//!   store (hashing it); and records it, within the uploader's quota.
//! - Downloads, `GET /api/attachments/{id}` and `.../thumbnail`: for
//!   those who may see the file only, with the headers that keep a
//!   hostile file from acting as a page of ours; whole, or the `Range`
//!   asked for; streamed from disk by the connection's thread.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use serde_json::json;

use super::handlers::{chat_error, path_segment};
use super::multipart::{self, MultipartError};
use super::{
    ApiError, FileBody, HttpRequest, HttpResponse, Reply, guards::authenticate, query_text,
};
use crate::app::App;
use crate::chat::ChatError;
use crate::files::image::{ImageError, Prepared, check_pixels};
use crate::files::janitor::remove_if_unused;
use crate::files::name::safe_name;
use crate::files::sniff::{SNIFF_BYTES, is_inline_image, sniff};
use crate::files::store::{FileError, Scratch};
use crate::files::workers::{ImageSource, WorkError};
use crate::models::{NewAttachment, StoredAttachment, StoredThumbnail};
use crate::repo::{Refusal, StoreError};
use tiny_http::SpoolOutcome;

/// Seconds a client is told to wait when too many uploads are being
/// written at once.
const BUSY_RETRY_SECONDS: u64 = 5;

/// `POST /api/attachments`: stores a file for its uploader to send.
pub fn upload(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    app.limits
        .messages
        .check(user.id)
        .map_err(|wait| ApiError::too_many("too many uploads; slow down", wait))?;
    let max = app.config.max_upload;
    let received = received_body(request, max)?;
    // A form's file is taken out of it first; its name is the form's.
    let boundary = request
        .header_values("Content-Type")
        .next()
        .and_then(multipart::form_boundary)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (body, form_name) = match boundary {
        Some(boundary) => {
            let (scratch, name) = file_of_form(app, &received, &boundary)?;
            (Body::Scratch(scratch), Some(name))
        }
        None => (received, None),
    };
    let raw_name = query_text(&request.query, "name")
        .or(form_name)
        .ok_or_else(|| ApiError::bad_request("name is required (?name=FILENAME)"))?;
    let name =
        safe_name(&raw_name).ok_or_else(|| ApiError::bad_request("name must name a file"))?;
    let sniffed = sniff(&body.head().map_err(ApiError::internal)?);
    let image = match sniffed.image {
        Some(size) => prepare_image(app, &body, sniffed.mime, size)?,
        None => None,
    };
    let cleaned = image.as_ref().and_then(|i| i.cleaned.as_deref());
    // Bytes as received are moved into the store, not copied.
    let put = match (cleaned, &body) {
        (Some(cleaned), _) => app.files.put(cleaned, max),
        (None, Body::Spooled(path)) => app.files.adopt(path, max),
        (None, Body::Scratch(scratch)) => app.files.adopt(&scratch.path, max),
        (None, Body::Memory(bytes)) => app.files.put(*bytes, max),
    };
    let put = put.map_err(|e| match e {
        FileError::TooLarge { .. } => too_large(max),
        FileError::Io(e) => ApiError::internal(e),
    })?;
    let thumbnail = match &image {
        Some(image) => Some(
            app.files
                .put(&image.thumbnail.bytes[..], max)
                .map_err(ApiError::internal)?,
        ),
        None => None,
    };
    let new = NewAttachment {
        uploader_id: user.id,
        sha256: put.sha256.clone(),
        name,
        size: put.size,
        mime: sniffed.mime.to_owned(),
        image: image.as_ref().map(|i| i.size),
        thumbnail: image
            .as_ref()
            .zip(thumbnail.as_ref())
            .map(|(i, t)| StoredThumbnail {
                sha256: t.sha256.clone(),
                mime: i.thumbnail.mime.to_owned(),
            }),
    };
    let recorded = app.store.insert_attachment(new, app.config.upload_quota);
    // The row is recorded (or refused): the files may be removed again.
    let digests: Vec<String> = std::iter::once(&put)
        .chain(&thumbnail)
        .map(|p| p.sha256.clone())
        .collect();
    drop((put, thumbnail));
    match recorded {
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
            for sha256 in digests {
                remove_if_unused(&app.store, &app.files, &app.metrics, &sha256);
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

fn too_large(max: u64) -> ApiError {
    ApiError::new(413, format!("the file is larger than {max} bytes")).with_code("too_large")
}

/// Where an upload's bytes are.
enum Body<'a> {
    /// The file the connection's thread wrote the body to.
    Spooled(&'a Path),
    /// The file taken out of a form.
    Scratch(Scratch),
    /// In memory: an empty body, or a request built without a connection
    /// (as in the fuzz target).
    Memory(&'a [u8]),
}

impl Body<'_> {
    fn reader(&self) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Body::Spooled(path) => Box::new(File::open(path)?),
            Body::Scratch(scratch) => Box::new(File::open(&scratch.path)?),
            Body::Memory(bytes) => Box::new(*bytes),
        })
    }

    /// Its first bytes, to find its type from.
    fn head(&self) -> std::io::Result<Vec<u8>> {
        let mut head = Vec::new();
        self.reader()?
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)?;
        Ok(head)
    }
}

/// The body of an upload as the connection's thread left it, or the
/// answer when it did not keep it.
fn received_body(request: &HttpRequest, max: u64) -> Result<Body<'_>, ApiError> {
    match &request.upload {
        Some(upload) => match (upload.outcome, &upload.path) {
            (SpoolOutcome::Whole, Some(path)) => Ok(Body::Spooled(path)),
            (SpoolOutcome::TooLarge, _) => Err(too_large(max)),
            (SpoolOutcome::Busy, _) => Err(ApiError::too_busy(
                "too many uploads at once; retry in a moment",
                BUSY_RETRY_SECONDS,
            )),
            _ => Err(ApiError::internal(
                "the upload could not be written to disk",
            )),
        },
        None if request.body_too_large => Err(too_large(max)),
        None => Ok(Body::Memory(&request.body)),
    }
}

/// Takes the file out of a `multipart/form-data` body into a temporary
/// file; returns it and the name the form gave it.
fn file_of_form(app: &App, body: &Body<'_>, boundary: &str) -> Result<(Scratch, String), ApiError> {
    let mut scratch = app.files.scratch().map_err(ApiError::internal)?;
    let reader = body.reader().map_err(ApiError::internal)?;
    let mut out = std::io::BufWriter::new(&mut scratch.file);
    let part = multipart::extract_file(reader, boundary, &mut out, app.config.max_upload);
    let flushed = out.flush();
    drop(out);
    let part = part.map_err(|e| match e {
        MultipartError::TooLarge { max } => too_large(max),
        MultipartError::Io(e) => ApiError::internal(e),
        other => ApiError::bad_request(other.to_string()),
    })?;
    flushed.map_err(ApiError::internal)?;
    Ok((scratch, part.file_name))
}

/// Removes an image's metadata and makes its thumbnail, on the image
/// workers. `None` for an image that does not decode (it is kept as a
/// plain file); 400 for one with too many pixels, before any decoding.
fn prepare_image(
    app: &App,
    body: &Body<'_>,
    mime: &str,
    size: (u32, u32),
) -> Result<Option<Prepared>, ApiError> {
    let refuse_pixels =
        |e: ImageError| ApiError::bad_request(e.to_string()).with_code("image_too_large");
    check_pixels(size).map_err(refuse_pixels)?;
    let source = match body {
        Body::Spooled(path) => ImageSource::File(path.to_path_buf()),
        Body::Scratch(scratch) => ImageSource::File(scratch.path.clone()),
        Body::Memory(bytes) => ImageSource::Bytes(bytes.to_vec()),
    };
    match app
        .images
        .prepare(source, mime, app.config.keep_image_metadata)
    {
        Ok(prepared) => Ok(Some(prepared)),
        Err(WorkError::Busy) => Err(ApiError::too_busy(
            "too many images are being processed; retry in a moment",
            BUSY_RETRY_SECONDS,
        )),
        Err(WorkError::Image(e @ ImageError::TooManyPixels { .. })) => Err(refuse_pixels(e)),
        Err(WorkError::Image(ImageError::Undecodable(reason))) => {
            log::debug!("an uploaded {mime} does not decode: {reason}");
            Ok(None)
        }
        Err(WorkError::Io(e)) => Err(ApiError::internal(e)),
    }
}

/// `GET /api/attachments/{id}`: the file, to its uploader and to both
/// sides of a conversation it was sent in; 404 to anyone else, whether it
/// exists or not.
pub fn download(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let stored = viewable(app, request)?;
    let attachment = &stored.attachment;
    let served = Served {
        sha256: &stored.sha256,
        mime: &attachment.mime,
        name: &attachment.name,
        size: attachment.size,
    };
    serve(app, request, served)
}

/// `GET /api/attachments/{id}/thumbnail`: an image's thumbnail, to whoever
/// may see the image; 404 for files that have none.
pub fn thumbnail(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let stored = viewable(app, request)?;
    let thumbnail = stored
        .thumbnail
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this attachment has no thumbnail"))?;
    let name = format!("thumbnail-{}", stored.attachment.name);
    serve_thumbnail(app, request, thumbnail, &name)
}

/// Answers with a stored thumbnail (an image's, or a user's picture).
fn serve_thumbnail(
    app: &App,
    request: &HttpRequest,
    thumbnail: &StoredThumbnail,
    name: &str,
) -> Result<Reply, ApiError> {
    let path = app
        .files
        .path_of(&thumbnail.sha256)
        .ok_or_else(|| ApiError::internal("a stored digest is not a file name"))?;
    let size = std::fs::metadata(path).map_err(ApiError::internal)?.len();
    let served = Served {
        sha256: &thumbnail.sha256,
        mime: &thumbnail.mime,
        name,
        size,
    };
    serve(app, request, served)
}

/// `GET /api/users/{id}/avatar`: a user's picture, for anyone logged in.
/// Its URL carries the upload's id (`?v=`), so a new picture is a new URL
/// and the long cache of [`serve`] never shows an old one.
pub fn avatar(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate(app, request)?;
    let missing = || ApiError::not_found("no such picture");
    let user: i64 = path_segment(request, 3)?.parse().map_err(|_| missing())?;
    let picture = app.store.avatar(user)?.ok_or_else(missing)?;
    serve_thumbnail(app, request, &picture, &format!("avatar-{user}"))
}

/// The attachment named by the path, if the caller may see it.
fn viewable(app: &App, request: &HttpRequest) -> Result<StoredAttachment, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let missing = || ApiError::not_found("no such attachment");
    let id: i64 = path_segment(request, 3)?.parse().map_err(|_| missing())?;
    app.store.attachment(user.id, id)?.ok_or_else(missing)
}

/// A stored file about to be sent.
struct Served<'a> {
    sha256: &'a str,
    mime: &'a str,
    name: &'a str,
    size: u64,
}

/// Answers with a stored file, whole or the range asked for, with the
/// headers that keep a hostile file from acting as a page of ours.
fn serve(app: &App, request: &HttpRequest, file: Served<'_>) -> Result<Reply, ApiError> {
    let path = app
        .files
        .path_of(file.sha256)
        .ok_or_else(|| ApiError::internal("a stored digest is not a file name"))?;
    let etag = format!("\"{}\"", file.sha256);
    let mut headers: Vec<(&'static str, String)> = vec![
        ("Content-Type", file.mime.to_owned()),
        // Opened directly, even an HTML file is a sandboxed page of no
        // origin: it cannot run script as ours or read our cookies.
        ("Content-Security-Policy", "sandbox".into()),
        ("Content-Disposition", disposition(file.mime, file.name)),
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
    let size = file.size;
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
    let body = FileBody { path, offset, len };
    Ok(respond(status, headers, Some(body)))
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
