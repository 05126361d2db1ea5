//! Push notifications for people who are not connected (Web Push).
//!
//! Browsers and UnifiedPush distributors (ntfy, say) speak the same open
//! protocol, so no vendor account is needed:
//!
//! - [`vapid`]: the server's key pair, and the signed token each push
//!   carries so that a push service knows who sends it (RFC 8292).
//! - [`ece`]: the payload, encrypted for the one browser that subscribed
//!   (RFC 8291).
//! - [`endpoint`] and [`address`]: where the server may send a push at
//!   all: endpoints are URLs chosen by clients, so private addresses are
//!   refused.
//! - [`delivery`]: the threads that send pushes, coalesce bursts, retry
//!   and forget subscriptions that are gone; the hub only offers them
//!   messages ([`PushQueue`]). Inside: [`dispatcher`] (when), [`sender`]
//!   (one push), [`client`] (the HTTP client).

pub mod address;
pub mod client;
pub mod delivery;
pub mod dispatcher;
pub mod ece;
pub mod endpoint;
pub mod sender;
pub mod vapid;

pub use delivery::{PushQueue, PushSettings, Pusher};
