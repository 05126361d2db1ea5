//! A self-hosted, real-time 1:1 chat server built from plain OS threads.
//!
//! No async runtime: every WebSocket has a reader thread and a writer
//! thread, one hub thread routes frames between them, and a pool of HTTP
//! workers serves the REST API. `docs/ARCHITECTURE.md` draws the picture.
//!
//! # Where things are
//!
//! Follow one message from the sender's socket to the recipient's:
//!
//! 1. [`ws::reader`] — the sender's reader thread parses the frame
//!    ([`ws::events`]) and its command (`ws/commands/send.rs`) calls
//! 2. [`chat::send_message`] — the single send path (REST uses it too):
//!    validates, then stores through
//! 3. [`repo`] — the [`repo::Store`] trait and its SQLite implementation:
//!    the database writer stores it and gives the change its `seq`; once
//!    committed, the change ([`changes`]) goes on the hub's
//!    private-message channel to
//! 4. [`ws::hub`] — the hub thread, which queues it in the [`ws::outbox`]
//!    of every connection of the recipient and answers the sender; each
//!    connection's
//! 5. writer thread ([`ws::writer`]) writes it to the socket
//!    ([`ws::frame_writer`]).
//!
//! The rest:
//!
//! - [`server`]: [`Server::start`] wires everything; [`ServerHandle`] stops it.
//! - [`http`]: REST endpoints on tiny_http, and the web client (`src/web/`).
//! - [`ws::listener`]: the WebSocket handshake (session cookie, Origin).
//! - [`ws::queries`]: the threads that answer history and sync requests.
//! - [`auth`]: password hashing, session tokens, input rules.
//! - [`accounts`]: registration modes, invitations, admins, disabled
//!   accounts, password changes and reset links.
//! - [`origin`]: which browser origins may call us (CSRF, CSWSH).
//! - [`privacy`]: blocks and read-receipt settings, kept in memory.
//! - [`limits`]: rate limits, login back-off, connection caps.
//! - [`fd_limit`]: the open-file limit, and the caps fitted under it.
//! - [`files`]: sent files: their bytes, types, thumbnails and removal.
//! - [`expiry`]: disappearing messages and `--retention`.
//! - [`search`]: what a search query means and where it matched.
//! - [`push`]: Web Push to people who are not connected.
//! - [`metrics`]: `GET /metrics` in the Prometheus format.
//! - [`models`]: the records and their JSON shapes.
//! - [`config`]: flags and environment variables.
//! - [`cli`]: the `chat-server admin` and `backup` subcommands.
//! - [`backup`]: a consistent copy of the database and its files.
//! - [`app`]: the context shared by all threads.
//! - [`background`]: the lower CPU priority of work that can wait.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod background;
pub mod backup;
pub mod changes;
pub mod chat;
pub mod cli;
pub mod config;
pub mod expiry;
pub mod fd_limit;
pub mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod origin;
pub mod privacy;
pub mod push;
pub mod repo;
pub mod search;
pub mod server;
pub mod ws;

pub use config::Config;
pub use server::{Server, ServerHandle, StartError};
