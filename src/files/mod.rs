//! Files that users send: where their bytes live, what they are, what is
//! done to images, and when the bytes go. (The endpoints are in
//! `http/attachments.rs`; the records in the store.)
//!
//! - [`store`]: the bytes, on disk under their SHA-256, each stored once,
//!   written to a temporary file and renamed into place so that a crash
//!   never leaves half a file under a name that a message could refer to.
//! - [`sniff`]: the type, from the bytes only (never from the name or what
//!   the client says), and an image's size from its header, without
//!   decoding it.
//! - [`name`]: the file name a client gave, made safe to show and to put
//!   in a header.
//! - [`image`]: an image's metadata removed (losslessly) and its
//!   thumbnail made, under hard decoding limits.
//! - [`workers`]: the small pool that does that work, so that at most a
//!   few images are decoded at once.
//! - [`janitor`]: the thread that removes files no upload refers to.

pub mod image;
pub mod janitor;
pub mod name;
pub mod sniff;
pub mod store;
pub mod workers;
