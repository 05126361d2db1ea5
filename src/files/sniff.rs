//! What a file is, from its first bytes.
//!
//! The type decides how a file is served: images we recognise inline,
//! everything else as a download. So it comes from the bytes alone; a
//! client's `Content-Type` and the file's name are never believed (an
//! "image.png" that is HTML must not be shown as a page). An image's width
//! and height come from its header, without decoding it: a
//! decompression bomb is seen for what it is before any pixel is made.

/// Bytes of a file's start that [`sniff`] looks at: enough for every
/// header we read (a JPEG's size can sit after its EXIF block, so more
/// than the magic number).
pub const SNIFF_BYTES: usize = 64 * 1024;

/// What a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// The MIME type: one we recognised, or `application/octet-stream`.
    pub mime: &'static str,
    /// For PNG, JPEG, GIF and WebP: width and height, from the header.
    pub image: Option<(u32, u32)>,
}

impl Sniffed {
    /// Whether browsers may show it inline: the raster images whose header
    /// we read. Everything else (SVG and HTML included: both can run
    /// script) is served as a download.
    pub fn is_inline_image(&self) -> bool {
        self.image.is_some()
    }
}

/// The image types shown inline, by MIME type.
const INLINE_IMAGES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// Whether a file of this (sniffed) type may be shown inline: one of the
/// raster images we read. SVG and HTML can run script: never.
pub fn is_inline_image(mime: &str) -> bool {
    INLINE_IMAGES.contains(&mime)
}

/// Finds the type of a file from its first bytes (at most [`SNIFF_BYTES`]
/// are looked at).
pub fn sniff(head: &[u8]) -> Sniffed {
    let head = &head[..head.len().min(SNIFF_BYTES)];
    let mime = match infer::get(head) {
        Some(kind) => kind.mime_type(),
        None if looks_like_svg(head) => "image/svg+xml",
        None if looks_like_html(head) => "text/html",
        None => "application/octet-stream",
    };
    let image = is_inline_image(mime)
        .then(|| imagesize::blob_size(head).ok())
        .flatten()
        .and_then(|size| {
            let width = u32::try_from(size.width).ok()?;
            let height = u32::try_from(size.height).ok()?;
            (width > 0 && height > 0).then_some((width, height))
        });
    Sniffed { mime, image }
}

/// The start of a text, without a byte-order mark and leading white space,
/// lower-cased: what the markup checks below compare.
fn text_start(head: &[u8]) -> String {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let end = head.len().min(start + 1024);
    String::from_utf8_lossy(&head[start..end]).to_ascii_lowercase()
}

fn looks_like_svg(head: &[u8]) -> bool {
    let text = text_start(head);
    text.starts_with("<svg")
        || ((text.starts_with("<?xml") || text.starts_with("<!doctype svg"))
            && text.contains("<svg"))
}

fn looks_like_html(head: &[u8]) -> bool {
    let text = text_start(head);
    [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
    ]
    .iter()
    .any(|tag| text.starts_with(tag))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest PNG header: signature, then an IHDR chunk of 3 x 2.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend(width.to_be_bytes());
        png.extend(height.to_be_bytes());
        png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn the_type_comes_from_the_bytes_and_images_bring_their_size() {
        let png = sniff(&png_header(3, 2));
        assert_eq!(png.mime, "image/png");
        assert_eq!(png.image, Some((3, 2)));
        assert!(png.is_inline_image());
        // A gigapixel image says so in 33 bytes, before any decoding.
        assert_eq!(
            sniff(&png_header(40_000, 40_000)).image,
            Some((40_000, 40_000))
        );
        let gif = sniff(b"GIF89a\x05\x00\x07\x00\x80\x00\x00");
        assert_eq!((gif.mime, gif.image), ("image/gif", Some((5, 7))));
        let pdf = sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
        assert_eq!((pdf.mime, pdf.image), ("application/pdf", None));
    }

    #[test]
    fn markup_is_never_an_inline_image_whatever_it_is_called() {
        for svg in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"[..],
            b"\xEF\xBB\xBF  <?xml version='1.0'?>\n<svg onload='alert(1)'/>",
        ] {
            let sniffed = sniff(svg);
            assert_eq!(sniffed.mime, "image/svg+xml");
            assert!(!sniffed.is_inline_image());
        }
        let html = sniff(b"\n<!DOCTYPE html><html><script>alert(1)</script>");
        assert_eq!(html.mime, "text/html");
        assert!(!html.is_inline_image());
        assert_eq!(sniff(b"just some text").mime, "application/octet-stream");
        assert_eq!(sniff(b"").mime, "application/octet-stream");
        // A PNG signature with a broken header is a PNG without a size.
        let broken = sniff(b"\x89PNG\r\n\x1a\n\0\0");
        assert_eq!((broken.mime, broken.image), ("image/png", None));
    }
}
