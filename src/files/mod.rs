//! Files that users send (issue 15, in progress): where their bytes live
//! and what they are.
//!
//! - [`store`]: the bytes, on disk under their SHA-256, each stored once,
//!   written to a temporary file and renamed into place so that a crash
//!   never leaves half a file under a name that a message could refer to.
//! - [`sniff`]: the type, from the bytes only (never from the name or what
//!   the client says), and an image's size from its header, without
//!   decoding it.
//!
//! Not yet here: the upload and download endpoints, the body streaming
//! that keeps slow uploaders off the REST workers, thumbnails and metadata
//! removal. See the issue tracker.

pub mod name;
pub mod sniff;
pub mod store;
