//! What is done to an uploaded image before it is stored: its metadata
//! removed, and a thumbnail made.
//!
//! Photos carry EXIF (GPS position, camera serial number, time) and XMP;
//! sending a photo must not send where it was taken. The metadata blocks
//! are cut out of the file, and the picture data is copied untouched
//! (lossless: no pixel is decoded or re-encoded). Only the orientation
//! stays, rewritten as the one field of a new EXIF block, so that a photo
//! taken upright is still shown upright.
//!
//! Decoding is where a hostile file could hurt: a few KiB of PNG can
//! claim a gigapixel. So the size from the header is checked first
//! ([`check_pixels`]), and the decoder gets hard limits on top.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::{Bytes, ImageEXIF, jpeg::Jpeg, png::Png, webp::WebP};

/// The longest side of a thumbnail, in pixels.
pub const THUMBNAIL_SIDE: u32 = 320;

/// The most pixels an image may have (64 megapixels: a 12 MP phone photo
/// five times over). A larger one is refused before it is decoded.
pub const MAX_IMAGE_PIXELS: u64 = 64_000_000;

/// Bytes the decoder may allocate for one image: its pixels at 4 bytes
/// each, and room for the decoder's own tables.
const MAX_DECODE_BYTES: u64 = MAX_IMAGE_PIXELS * 4 + 64 * 1024 * 1024;

/// JPEG quality of thumbnails (1-100): small files, no visible blocks at
/// thumbnail size.
const THUMBNAIL_JPEG_QUALITY: u8 = 80;

/// Why an image was refused, or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// More pixels than [`MAX_IMAGE_PIXELS`] (a decompression bomb, or a
    /// photo too large for this server): refused.
    #[error("the image is {width}x{height}, more than {max} pixels")]
    TooManyPixels { width: u32, height: u32, max: u64 },
    /// The bytes start like an image but do not decode: it is kept as a
    /// plain file, without a thumbnail.
    #[error("the image cannot be decoded: {0}")]
    Undecodable(String),
}

/// An image's thumbnail: its bytes and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    pub bytes: Vec<u8>,
    /// `image/jpeg`, or `image/png` for an image with transparency.
    pub mime: &'static str,
}

/// An image ready to store.
#[derive(Debug)]
pub struct Prepared {
    /// The file without its metadata; `None` when nothing was removed
    /// (the file is stored as it came).
    pub cleaned: Option<Vec<u8>>,
    /// Width and height as shown, the orientation applied (a portrait
    /// photo stored sideways is taller than wide).
    pub size: (u32, u32),
    pub thumbnail: Thumbnail,
}

/// Refuses an image whose header claims more than [`MAX_IMAGE_PIXELS`].
pub fn check_pixels((width, height): (u32, u32)) -> Result<(), ImageError> {
    if u64::from(width) * u64::from(height) > MAX_IMAGE_PIXELS {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            max: MAX_IMAGE_PIXELS,
        });
    }
    Ok(())
}

/// Removes the metadata of the image in `bytes` (of the sniffed type
/// `mime`) unless `keep_metadata`, and makes its thumbnail.
pub fn prepare(bytes: Vec<u8>, mime: &str, keep_metadata: bool) -> Result<Prepared, ImageError> {
    let cleaned = if keep_metadata {
        None
    } else {
        strip_metadata(&bytes, mime)
    };
    let image = decode(cleaned.as_deref().unwrap_or(&bytes), mime)?;
    let size = (image.width(), image.height());
    let thumbnail = thumbnail(&image)?;
    Ok(Prepared {
        cleaned,
        size,
        thumbnail,
    })
}

/// Decodes an image within the limits, turned as its orientation says.
fn decode(bytes: &[u8], mime: &str) -> Result<DynamicImage, ImageError> {
    let undecodable = |e: image::ImageError| ImageError::Undecodable(e.to_string());
    let format = ImageFormat::from_mime_type(mime)
        .ok_or_else(|| ImageError::Undecodable(format!("{mime} is not an image type")))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    let side = u32::try_from(MAX_IMAGE_PIXELS).unwrap_or(u32::MAX);
    limits.max_image_width = Some(side);
    limits.max_image_height = Some(side);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(undecodable)?;
    let (width, height) = decoder.dimensions();
    check_pixels((width, height))?;
    let orientation = decoder.orientation().map_err(undecodable)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(undecodable)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// A thumbnail no larger than [`THUMBNAIL_SIDE`] either way: JPEG, or PNG
/// when the image has transparency to keep.
fn thumbnail(image: &DynamicImage) -> Result<Thumbnail, ImageError> {
    let small = if image.width() > THUMBNAIL_SIDE || image.height() > THUMBNAIL_SIDE {
        image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    } else {
        image.clone()
    };
    let mut bytes = Vec::new();
    let encoded = if small.color().has_alpha() {
        small
            .to_rgba8()
            .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
            .map(|()| "image/png")
    } else {
        let encoder =
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, THUMBNAIL_JPEG_QUALITY);
        small
            .to_rgb8()
            .write_with_encoder(encoder)
            .map(|()| "image/jpeg")
    };
    let mime = encoded.map_err(|e| ImageError::Undecodable(e.to_string()))?;
    Ok(Thumbnail { bytes, mime })
}

/// JPEG markers of metadata segments: APP1 (EXIF, XMP), APP12 (camera
/// notes), APP13 (Photoshop, IPTC) and comments. APP0 (JFIF), APP2 (ICC
/// colour profile, multi-picture index) and APP14 (Adobe colour
/// transform) stay: without them colours would change.
const JPEG_METADATA_MARKERS: [u8; 4] = [0xE1, 0xEC, 0xED, 0xFE];

/// PNG chunks of metadata: EXIF, text (which holds XMP too) and time.
const PNG_METADATA_CHUNKS: [[u8; 4]; 5] = [*b"eXIf", *b"tEXt", *b"zTXt", *b"iTXt", *b"tIME"];

/// The file without its metadata, or `None` when it had none (or is of
/// a type whose metadata we do not edit: GIF carries no position).
pub fn strip_metadata(bytes: &[u8], mime: &str) -> Option<Vec<u8>> {
    let original = Bytes::copy_from_slice(bytes);
    let bytes = original.clone();
    let encoded = match mime {
        "image/jpeg" => {
            let mut jpeg = Jpeg::from_bytes(bytes).ok()?;
            let orientation = orientation_of(jpeg.exif());
            jpeg.segments_mut()
                .retain(|segment| !JPEG_METADATA_MARKERS.contains(&segment.marker()));
            jpeg.set_exif(orientation.map(orientation_exif));
            jpeg.encoder().bytes()
        }
        "image/png" => {
            let mut png = Png::from_bytes(bytes).ok()?;
            let orientation = orientation_of(png.exif());
            png.chunks_mut()
                .retain(|chunk| !PNG_METADATA_CHUNKS.contains(&chunk.kind()));
            png.set_exif(orientation.map(orientation_exif));
            png.encoder().bytes()
        }
        "image/webp" => {
            let mut webp = WebP::from_bytes(bytes).ok()?;
            let orientation = orientation_of(webp.exif());
            webp.remove_chunks_by_id(img_parts::webp::CHUNK_XMP);
            webp.set_exif(orientation.map(orientation_exif));
            webp.encoder().bytes()
        }
        _ => return None,
    };
    (encoded != original).then(|| encoded.to_vec())
}

/// The EXIF orientation (2-8) of an image, if it is not the default (1).
fn orientation_of(exif: Option<Bytes>) -> Option<u16> {
    let exif = exif::Reader::new().read_raw(exif?.to_vec()).ok()?;
    let field = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?;
    let value = u16::try_from(field.value.get_uint(0)?).ok()?;
    (2..=8).contains(&value).then_some(value)
}

/// A new EXIF block that holds the orientation and nothing else: a TIFF
/// header (big-endian) and one directory of one entry.
fn orientation_exif(orientation: u16) -> Bytes {
    /// TIFF tag 274, type SHORT (3).
    const ORIENTATION_TAG: u16 = 0x0112;
    const SHORT: u16 = 3;
    let mut tiff = b"MM\0\x2a".to_vec();
    tiff.extend(8u32.to_be_bytes()); // the directory follows the header
    tiff.extend(1u16.to_be_bytes()); // one entry
    tiff.extend(ORIENTATION_TAG.to_be_bytes());
    tiff.extend(SHORT.to_be_bytes());
    tiff.extend(1u32.to_be_bytes()); // one value,
    tiff.extend(orientation.to_be_bytes()); // held in the entry,
    tiff.extend([0, 0]); // padded to 4 bytes
    tiff.extend(0u32.to_be_bytes()); // no further directory
    Bytes::from(tiff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orientation_block_reads_back_as_that_orientation_alone() {
        for orientation in 2..=8u16 {
            let block = orientation_exif(orientation);
            assert_eq!(orientation_of(Some(block.clone())), Some(orientation));
            let exif = exif::Reader::new()
                .read_raw(block.to_vec())
                .expect("valid EXIF");
            assert_eq!(exif.fields().count(), 1);
        }
        // The default orientation needs no block.
        assert_eq!(orientation_of(Some(orientation_exif(1))), None);
        assert_eq!(orientation_of(Some(Bytes::from_static(b"junk"))), None);
    }

    #[test]
    fn pixels_are_counted_before_anything_is_decoded() {
        assert!(check_pixels((8000, 8000)).is_ok());
        assert!(check_pixels((8000, 8001)).is_err());
        assert!(matches!(
            check_pixels((u32::MAX, u32::MAX)),
            Err(ImageError::TooManyPixels { .. })
        ));
    }
}
