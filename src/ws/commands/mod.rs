//! What a client's frames do, one file per kind of frame (as mini-redis has
//! one per command). Each `apply` runs on the connection's reader thread
//! with the [`Reader`](super::reader::Reader) that read the frame, and
//! returns whether the connection goes on. A new kind of frame is a variant
//! of [`ClientEvent`](super::events::ClientEvent), a file here, and one arm
//! in `Reader::on_text`.

pub(super) mod history;
pub(super) mod mark_read;
pub(super) mod send;
pub(super) mod sync;
