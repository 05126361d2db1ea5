//! Real-time chat over WebSocket.
//!
//! - [`listener`]: accepts sockets and checks the handshake (cookie, Origin).
//! - [`client`]: one connection = one reader thread + one writer thread:
//!   [`reader`] and [`writer`], with [`exactly_once`] for sync.
//! - `commands`: what each kind of client frame does, a file each.
//! - [`reader_socket`]: the reader's side of the socket (handshake deadline).
//! - [`frame_writer`]: how the writer thread puts frames on the socket.
//! - [`hub`]: one thread that routes committed changes to connections.
//! - [`queries`]: the threads that answer history and sync requests.
//! - [`outbound`]: what a writer is asked to send, and why a connection closes.
//! - [`outbox`]: the queue between the hub and a connection's writer.
//! - [`events`]: the JSON frames of the protocol.
//! - [`presence`]: who is online, encoded once for every client.

pub mod client;
mod commands;
pub mod events;
pub mod exactly_once;
pub mod frame_writer;
pub mod hub;
pub mod listener;
pub mod outbound;
pub mod outbox;
pub mod presence;
pub mod queries;
pub mod reader;
pub mod reader_socket;
pub mod typing;
pub mod writer;
