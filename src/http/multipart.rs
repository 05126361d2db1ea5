//! `multipart/form-data` (RFC 7578): the file out of a plain HTML form's
//! upload, streamed.
//!
//! A form posts its fields as parts separated by a boundary line that the
//! browser chose. We want the first part that is a file: its bytes are
//! copied to `out` as they are read, never the whole body in memory; the
//! other fields are skipped (each at most [`MAX_FIELD_BYTES`]). Anything
//! malformed is a [`MultipartError`] with a reason a client can act on.

use std::io::{self, Read, Write};

use memchr::memmem::Finder;

/// Bytes of one part's headers, at most.
const MAX_PART_HEAD_BYTES: usize = 8 * 1024;
/// Bytes of a field that is not a file, at most (form fields are short;
/// a long one is a client that sends its file in the wrong field).
pub const MAX_FIELD_BYTES: u64 = 64 * 1024;
/// Parts in one body, at most.
const MAX_PARTS: usize = 32;
/// What the body may hold besides the file: boundaries, part headers and
/// fields. The size limit of an upload sent as a form is the file's limit
/// plus this.
pub const FORM_OVERHEAD_BYTES: u64 = 256 * 1024;
/// Bytes read at a time.
const CHUNK_BYTES: usize = 64 * 1024;

/// Why a form body was refused.
#[derive(Debug, thiserror::Error)]
pub enum MultipartError {
    #[error("Content-Type multipart/form-data needs a boundary of 1 to 70 characters")]
    NoBoundary,
    #[error("malformed multipart body: {0}")]
    Malformed(&'static str),
    #[error("the form holds no file (a part with a filename)")]
    NoFile,
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: u64 },
    #[error("reading or writing the upload failed: {0}")]
    Io(#[from] io::Error),
}

/// The file part that was copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    /// The `filename` the browser gave (may be empty).
    pub file_name: String,
    pub size: u64,
}

/// The boundary of a `multipart/form-data` content type, if it is one.
/// `None` for other types; `Some(Err)` for a form without a valid boundary.
pub fn form_boundary(content_type: &str) -> Option<Result<String, MultipartError>> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params
        .filter_map(|param| param.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, value)| value.trim().trim_matches('"').to_owned())
        .filter(|b| (1..=70).contains(&b.len()) && b.bytes().all(|c| (b' '..=b'~').contains(&c)));
    Some(boundary.ok_or(MultipartError::NoBoundary))
}

/// Copies the first file part of `body` (a form with `boundary`) to `out`,
/// at most `max_bytes` of it.
pub fn extract_file(
    body: impl Read,
    boundary: &str,
    out: &mut impl Write,
    max_bytes: u64,
) -> Result<FilePart, MultipartError> {
    let mut reader = Scanner::new(body);
    // The body starts with the first boundary line; a preamble before it
    // is allowed and ignored. Reading as if a line break came first lets
    // one delimiter (CRLF "--" boundary) find both.
    reader.buffer.extend_from_slice(b"\r\n");
    let delimiter = format!("\r\n--{boundary}").into_bytes();
    let finder = Finder::new(&delimiter);
    reader.copy_until(&finder, &mut io::sink(), u64::MAX, || {
        MultipartError::Malformed("no opening boundary")
    })?;
    let mut found: Option<FilePart> = None;
    for _ in 0..MAX_PARTS {
        // After a delimiter: "--" ends the body; otherwise the line ends.
        let after = reader.take(2)?;
        if after == b"--" {
            return found.ok_or(MultipartError::NoFile);
        }
        if after != b"\r\n" {
            return Err(MultipartError::Malformed("a boundary line does not end"));
        }
        let head = reader.part_head()?;
        let file_name = if found.is_none() {
            file_name(&head)
        } else {
            None
        };
        match file_name {
            Some(file_name) => {
                let too_large = || MultipartError::TooLarge { max: max_bytes };
                let size = reader.copy_until(&finder, out, max_bytes, || {
                    MultipartError::Malformed("the file part does not end")
                });
                let size = match size {
                    Err(MultipartError::TooLarge { .. }) => return Err(too_large()),
                    other => other?,
                };
                found = Some(FilePart { file_name, size });
            }
            None => {
                reader
                    .copy_until(&finder, &mut io::sink(), MAX_FIELD_BYTES, || {
                        MultipartError::Malformed("a part does not end")
                    })
                    .map_err(|e| match e {
                        MultipartError::TooLarge { .. } => {
                            MultipartError::Malformed("a field that is not a file is too long")
                        }
                        other => other,
                    })?;
            }
        }
    }
    Err(MultipartError::Malformed("too many parts"))
}

/// The `filename` of a part's `Content-Disposition: form-data`, if it is
/// a file.
fn file_name(head: &str) -> Option<String> {
    let disposition = head.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-disposition")
            .then_some(value)
    })?;
    disposition.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("filename") {
            return None;
        }
        let value = value.trim();
        // Browsers quote the name and write a quote inside it as %22.
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some(unquoted.replace("%22", "\""))
    })
}

/// A body read in chunks, with what was read but not yet used.
struct Scanner<R> {
    body: R,
    buffer: Vec<u8>,
    ended: bool,
}

impl<R: Read> Scanner<R> {
    fn new(body: R) -> Self {
        Scanner {
            body,
            buffer: Vec::with_capacity(2 * CHUNK_BYTES),
            ended: false,
        }
    }

    /// Reads one more chunk; false at the end of the body.
    fn fill(&mut self) -> io::Result<bool> {
        if self.ended {
            return Ok(false);
        }
        let start = self.buffer.len();
        self.buffer.resize(start + CHUNK_BYTES, 0);
        let n = loop {
            match self.body.read(&mut self.buffer[start..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = n.inspect_err(|_| self.buffer.truncate(start))?;
        self.buffer.truncate(start + n);
        self.ended = n == 0;
        Ok(n > 0)
    }

    /// The next `n` bytes (fewer only at the end of the body).
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buffer.len() < n && self.fill()? {}
        let n = n.min(self.buffer.len());
        Ok(self.buffer.drain(..n).collect())
    }

    /// A part's headers, up to and without the blank line that ends them.
    fn part_head(&mut self) -> Result<String, MultipartError> {
        let end = Finder::new(b"\r\n\r\n");
        loop {
            // A part with no headers at all: the blank line comes at once.
            if self.buffer.starts_with(b"\r\n") {
                self.buffer.drain(..2);
                return Ok(String::new());
            }
            if let Some(at) = end.find(&self.buffer) {
                let head = String::from_utf8_lossy(&self.buffer[..at]).into_owned();
                self.buffer.drain(..at + 4);
                return Ok(head);
            }
            if self.buffer.len() > MAX_PART_HEAD_BYTES {
                return Err(MultipartError::Malformed("a part's headers are too long"));
            }
            if !self.fill()? {
                return Err(MultipartError::Malformed("a part's headers do not end"));
            }
        }
    }

    /// Copies bytes to `out` up to the next `delimiter`, which is consumed;
    /// at most `max` bytes. Returns how many were copied.
    fn copy_until(
        &mut self,
        delimiter: &Finder<'_>,
        out: &mut impl Write,
        max: u64,
        unterminated: impl Fn() -> MultipartError,
    ) -> Result<u64, MultipartError> {
        let keep = delimiter.needle().len().saturating_sub(1);
        let mut copied: u64 = 0;
        let mut emit = |bytes: &[u8], out: &mut dyn Write| -> Result<(), MultipartError> {
            copied += bytes.len() as u64;
            if copied > max {
                return Err(MultipartError::TooLarge { max });
            }
            out.write_all(bytes)?;
            Ok(())
        };
        loop {
            if let Some(at) = delimiter.find(&self.buffer) {
                emit(&self.buffer[..at], out)?;
                self.buffer.drain(..at + delimiter.needle().len());
                return Ok(copied);
            }
            // All but a tail that could be the start of the delimiter.
            if self.buffer.len() > keep {
                let safe = self.buffer.len() - keep;
                emit(&self.buffer[..safe], out)?;
                self.buffer.drain(..safe);
            }
            if !self.fill()? {
                return Err(unterminated());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, &[u8])], boundary: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for (head, content) in parts {
            body.extend(format!("--{boundary}\r\n{head}\r\n\r\n").as_bytes());
            body.extend(*content);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").as_bytes());
        body
    }

    fn extract(
        body: &[u8],
        boundary: &str,
        max: u64,
    ) -> Result<(FilePart, Vec<u8>), MultipartError> {
        let mut out = Vec::new();
        let part = extract_file(body, boundary, &mut out, max)?;
        Ok((part, out))
    }

    #[test]
    fn the_boundary_comes_from_the_content_type() {
        assert_eq!(
            form_boundary("multipart/form-data; boundary=----abc").map(|b| b.ok()),
            Some(Some("----abc".into()))
        );
        assert_eq!(
            form_boundary("Multipart/Form-Data; charset=utf-8; boundary=\"a b\"").map(|b| b.ok()),
            Some(Some("a b".into()))
        );
        assert!(form_boundary("application/octet-stream").is_none());
        assert!(matches!(
            form_boundary("multipart/form-data"),
            Some(Err(MultipartError::NoBoundary))
        ));
        let too_long = format!("multipart/form-data; boundary={}", "x".repeat(71));
        assert!(matches!(form_boundary(&too_long), Some(Err(_))));
    }

    #[test]
    fn the_first_file_comes_out_whole_whatever_the_chunks() {
        // Contents that hold the boundary's start, line breaks and every
        // byte value, across chunk edges.
        let mut content: Vec<u8> = (0..=255u8).cycle().take(3 * CHUNK_BYTES + 17).collect();
        content.extend(b"\r\n--Boundar\r\n-");
        let boundary = "Boundary42";
        let body = form(
            &[
                ("Content-Disposition: form-data; name=\"caption\"", b"hi"),
                (
                    "Content-Disposition: form-data; name=\"file\"; filename=\"a \"%22b.png\"\r\nContent-Type: image/png",
                    &content,
                ),
                (
                    "Content-Disposition: form-data; name=\"other\"; filename=\"second.txt\"",
                    b"ignored",
                ),
            ],
            boundary,
        );
        let (part, out) = extract(&body, boundary, u64::MAX).expect("extract");
        assert_eq!(out, content);
        assert_eq!(part.size, content.len() as u64);
        assert_eq!(part.file_name, "a \"\"b.png");
        // An empty file is a file.
        let empty = form(
            &[(
                "Content-Disposition: form-data; name=\"f\"; filename=\"e\"",
                b"",
            )],
            boundary,
        );
        assert_eq!(extract(&empty, boundary, 0).expect("empty").1, b"");
    }

    #[test]
    fn bad_forms_are_refused_with_a_reason() {
        let b = "xyz";
        let file = "Content-Disposition: form-data; name=\"f\"; filename=\"f.bin\"";
        let good = form(&[(file, b"0123456789")], b);
        assert!(matches!(
            extract(&good, b, 9),
            Err(MultipartError::TooLarge { max: 9 })
        ));
        assert!(extract(&good, b, 10).is_ok());
        let no_file = form(&[("Content-Disposition: form-data; name=\"a\"", b"1")], b);
        assert!(matches!(
            extract(&no_file, b, 100),
            Err(MultipartError::NoFile)
        ));
        let cut = &good[..good.len() - 12];
        assert!(matches!(
            extract(cut, b, 100),
            Err(MultipartError::Malformed(_))
        ));
        assert!(matches!(
            extract(b"no boundary at all", b, 100),
            Err(MultipartError::Malformed(_))
        ));
        let long_field = form(
            &[(
                "Content-Disposition: form-data; name=\"a\"",
                &vec![b'a'; MAX_FIELD_BYTES as usize + 1],
            )],
            b,
        );
        assert!(matches!(
            extract(&long_field, b, 100),
            Err(MultipartError::Malformed(_))
        ));
        let endless_head = format!("--{b}\r\n{}", "h".repeat(MAX_PART_HEAD_BYTES * 2));
        assert!(matches!(
            extract(endless_head.as_bytes(), b, 100),
            Err(MultipartError::Malformed(_))
        ));
        let many: Vec<(&str, &[u8])> = (0..MAX_PARTS + 1)
            .map(|_| ("Content-Disposition: form-data; name=\"a\"", &b"1"[..]))
            .collect();
        assert!(matches!(
            extract(&form(&many, b), b, 100),
            Err(MultipartError::Malformed(_))
        ));
    }
}
