//! Everything an operator can set, from flags or `CHAT_*` environment
//! variables, with the defaults a small self-hosted box wants.
//!
//! Tests build a [`Config`] with [`Config::for_tests`] and change the fields
//! they care about (port 0, a temp database, short timeouts).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Server settings. Every flag has an environment variable of the same name
/// in upper case with a `CHAT_` prefix (`--db` ↔ `CHAT_DB`).
#[derive(Debug, Clone, Parser)]
#[command(name = "chat-server", version, about = "A self-hosted 1:1 chat server")]
pub struct Config {
    /// Address of the HTTP server (REST API and web client). Port 0 picks a
    /// free port.
    #[arg(long, env = "CHAT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Address of the WebSocket listener. Default: the HTTP host with the
    /// HTTP port + 1 (port 0 stays 0).
    #[arg(long, env = "CHAT_WS_ADDR")]
    pub ws_addr: Option<String>,

    /// The WebSocket URL that `GET /api/config` hands to clients, for
    /// deployments behind a reverse proxy (e.g. `wss://chat.example.org/ws`).
    /// Default: `ws://<host the client used>:<WebSocket port>/ws`.
    #[arg(long, env = "CHAT_PUBLIC_WS_URL")]
    pub public_ws_url: Option<String>,

    /// SQLite database file; created with the schema on first start.
    #[arg(long, env = "CHAT_DB", default_value = "chat.db", global = true)]
    pub db: PathBuf,

    /// Folder of the files users send (default: `NAME-files` beside the
    /// database file `NAME.db`).
    #[arg(long, env = "CHAT_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Who may create an account: `open` (anyone), `invite` (with an
    /// invitation from an admin) or `closed` (nobody). Default: `open`
    /// until the first account (the admin) exists, `invite` after.
    #[arg(long, env = "CHAT_REGISTRATION", value_enum)]
    pub registration: Option<RegistrationMode>,

    /// Keep a full-text index of messages for search (`on`), or none
    /// (`off`: the index is dropped, and search answers 503).
    #[arg(long, env = "CHAT_SEARCH", value_enum, default_value_t = Switch::On)]
    pub search: Switch,

    /// The shortest disappearing-messages timer users may set.
    #[arg(long, env = "CHAT_MIN_EXPIRY", default_value = "30s", value_parser = parse_duration)]
    pub min_expiry: Duration,

    /// Delete every message older than this, for everyone (e.g. `90d`),
    /// for operators who must not keep chat history. Default: keep all.
    #[arg(long, env = "CHAT_RETENTION", value_parser = parse_duration)]
    pub retention: Option<Duration>,

    /// Push notifications show the first 100 characters of a message
    /// (`on`), or only who sent it (`off`).
    #[arg(long, env = "CHAT_PUSH_PREVIEW", value_enum, default_value_t = Switch::On)]
    pub push_preview: Switch,

    /// Accept push endpoints on private and loopback addresses, and over
    /// plain `http` (tests; a push service on the LAN).
    #[arg(long, env = "CHAT_PUSH_ALLOW_PRIVATE_ENDPOINTS")]
    pub push_allow_private_endpoints: bool,

    /// After a push to someone, how long further messages to them wait, to
    /// be pushed as one.
    #[arg(long, env = "CHAT_PUSH_COALESCE", default_value = "60s", value_parser = parse_duration)]
    pub push_coalesce: Duration,

    /// A PEM file of certificates to trust for push services, besides the
    /// public ones: a push service on the LAN with its own certificate.
    #[arg(long, env = "CHAT_PUSH_CA_FILE")]
    pub push_ca_file: Option<PathBuf>,

    /// Pushes that may wait for the push threads; beyond that, pushes are
    /// dropped (and counted), never messages.
    #[arg(long, env = "CHAT_PUSH_QUEUE", default_value_t = 4096)]
    pub push_queue: usize,

    /// A contact push services can reach the operator at (`mailto:` or
    /// `https:` URL), named in every push.
    #[arg(long, env = "CHAT_PUSH_CONTACT")]
    pub push_contact: Option<String>,

    /// The VAPID private key (32 bytes, base64url). Default: a key made on
    /// first start and kept in the database.
    #[arg(long, env = "CHAT_VAPID_KEY_FILE")]
    pub vapid_key_file: Option<PathBuf>,

    /// Let every member create invitations, not only admins.
    #[arg(long, env = "CHAT_MEMBERS_CAN_INVITE")]
    pub members_can_invite: bool,

    /// A tool instead of the server (see `chat-server help admin`).
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Largest file a user may upload, e.g. `25MiB`, `100KiB`, or bytes.
    #[arg(long, env = "CHAT_MAX_UPLOAD", default_value = "25MiB", value_parser = parse_size)]
    pub max_upload: u64,

    /// Bytes of uploads each user may keep, e.g. `1GiB`.
    #[arg(long, env = "CHAT_UPLOAD_QUOTA", default_value = "1GiB", value_parser = parse_size)]
    pub upload_quota: u64,

    /// Keep images' metadata (EXIF with the GPS position and camera serial,
    /// XMP, comments). By default it is removed before an image is stored.
    #[arg(long, env = "CHAT_KEEP_IMAGE_METADATA")]
    pub keep_image_metadata: bool,

    /// An upload that no message carries after this long is removed, e.g.
    /// `24h`.
    #[arg(long, env = "CHAT_UNSENT_UPLOAD_LIFETIME", default_value = "24h", value_parser = parse_duration)]
    pub unsent_upload_lifetime: Duration,

    /// Threads that remove images' metadata and make thumbnails (at most
    /// this many images are decoded at once, which bounds the memory).
    #[arg(long, env = "CHAT_IMAGE_THREADS", default_value_t = 2)]
    pub image_threads: usize,

    /// A browser origin allowed to open WebSockets, besides the server's
    /// own (e.g. `https://chat.example.org`). Repeatable; comma-separated
    /// in the environment variable.
    #[arg(
        long = "allowed-origin",
        env = "CHAT_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Log level: off, error, warn, info, debug, trace.
    #[arg(long, env = "CHAT_LOG_LEVEL", default_value = "info")]
    pub log_level: log::LevelFilter,

    /// Mark the session cookie `Secure` (set this when served over HTTPS).
    #[arg(long, env = "CHAT_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// How long a login stays valid, e.g. `30d`, `12h`.
    #[arg(long, env = "CHAT_SESSION_TTL", default_value = "30d", value_parser = parse_duration)]
    pub session_ttl: Duration,

    /// How long after sending a message its sender may edit it or delete it
    /// for everyone, e.g. `48h`, `15m`; `0`: no limit.
    #[arg(long, env = "CHAT_EDIT_WINDOW", default_value = "48h", value_parser = parse_duration)]
    pub edit_window: Duration,

    /// A WebSocket from which no complete frame (not even a pong) arrives
    /// for this long is closed. Must be longer than `--ping-interval`.
    #[arg(long, env = "CHAT_PONG_WAIT", default_value = "60s", value_parser = parse_duration)]
    pub pong_wait: Duration,

    /// How often the server pings each WebSocket. Default: 9/10 of the pong
    /// wait (54 s), so that a pong has time to arrive before the deadline;
    /// see [`Config::ping_period`].
    #[arg(long, env = "CHAT_PING_INTERVAL", value_parser = parse_duration)]
    pub ping_interval: Option<Duration>,

    /// Outbound frames queued per WebSocket. A client that falls this far
    /// behind is disconnected, so it cannot hold up the hub or use memory
    /// without bound; its messages stay stored for history.
    #[arg(long, env = "CHAT_OUTBOX_CAPACITY", default_value_t = 256)]
    pub outbox_capacity: usize,

    /// When a message counts as stored: `normal` survives a crash of the
    /// server process, `full` also a power loss (one fsync per commit;
    /// commits are grouped, so not one per message).
    #[arg(long, env = "CHAT_DURABILITY", value_enum, default_value_t = Durability::Normal)]
    pub durability: Durability,

    /// Messages a user may send per second, on average (0 = no limit).
    #[arg(long, env = "CHAT_MESSAGE_RATE", default_value_t = 10.0)]
    pub message_rate: f64,

    /// Messages a user may send at once before the rate applies.
    #[arg(long, env = "CHAT_MESSAGE_BURST", default_value_t = 30)]
    pub message_burst: u32,

    /// Login attempts per client address per minute (0 = no limit).
    #[arg(long, env = "CHAT_LOGIN_RATE", default_value_t = 30.0)]
    pub login_rate: f64,

    /// Failed logins (per account and per address) before each further one
    /// doubles a wait, starting at one second.
    #[arg(long, env = "CHAT_LOGIN_FREE_FAILURES", default_value_t = 5)]
    pub login_free_failures: u32,

    /// The longest wait after failed logins.
    #[arg(long, env = "CHAT_LOGIN_MAX_BACKOFF", default_value = "15m", value_parser = parse_duration)]
    pub login_max_backoff: Duration,

    /// Registrations per client address per hour (0 = no limit).
    #[arg(long, env = "CHAT_REGISTER_RATE", default_value_t = 20.0)]
    pub register_rate: f64,

    /// Open WebSockets in total; more are refused with 503. Each takes two
    /// threads and two file descriptors: see the README's deployment notes.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Open WebSockets per user (tabs, devices); more are refused with 429.
    #[arg(long, env = "CHAT_MAX_CONNECTIONS_PER_USER", default_value_t = 20)]
    pub max_connections_per_user: usize,

    /// A WebSocket handshake, and the head of an HTTP request, must arrive
    /// whole within this time (a deadline, not a per-read timeout);
    /// otherwise a client that sends a byte now and then would pin a thread.
    #[arg(long, env = "CHAT_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub handshake_timeout: Duration,

    /// Open HTTP connections in total; more get 503 at once, without a
    /// thread. Each open one takes a thread and a file descriptor.
    #[arg(long, env = "CHAT_MAX_HTTP_CONNECTIONS", default_value_t = 1024)]
    pub max_http_connections: usize,

    /// A kept-alive HTTP connection with no new request for this long is
    /// closed.
    #[arg(long, env = "CHAT_KEEP_ALIVE_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Required as `Authorization: Bearer TOKEN` by `GET /metrics`. Without
    /// it, `/metrics` answers loopback clients only.
    #[arg(long, env = "CHAT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Take the client address from `X-Forwarded-For` when the request comes
    /// from a loopback address (set this behind a local reverse proxy, or
    /// every client shares the proxy's address in the per-address limits).
    #[arg(long, env = "CHAT_TRUST_PROXY")]
    pub trust_proxy: bool,

    /// Threads serving HTTP requests.
    #[arg(long, env = "CHAT_HTTP_THREADS", default_value_t = 8)]
    pub http_threads: usize,

    /// Threads answering WebSocket history and sync requests.
    #[arg(long, env = "CHAT_QUERY_THREADS", default_value_t = 4)]
    pub query_threads: usize,

    /// WebSocket history and sync requests that may wait for a query
    /// thread; beyond that a client is told to retry (`retry_after_ms`).
    #[arg(long, env = "CHAT_QUERY_QUEUE", default_value_t = 256)]
    pub query_queue: usize,
}

/// The files folder that goes with the database `NAME.db` when
/// `--data-dir` is not given: `NAME-files` beside it.
pub fn files_dir_for(db: &std::path::Path) -> PathBuf {
    let stem = db
        .file_stem()
        .map_or_else(|| "chat".into(), |s| s.to_string_lossy().into_owned());
    db.with_file_name(format!("{stem}-files"))
}

/// A feature turned on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// `--registration`: who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    /// Anyone who reaches the server.
    Open,
    /// Only with an invitation (`POST /api/invites`, `chat-server admin
    /// invite`).
    Invite,
    /// Nobody: the accounts that exist are all there will be.
    Closed,
}

/// What `chat-server` runs instead of the server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Manage accounts from the shell, on the database file (`--db`); works
    /// while the server runs, which notices at once.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Copy the database (a consistent snapshot, taken while the server
    /// runs) to PATH, and the files its messages carry to `NAME-files`
    /// beside it. Restore by starting the server with `--db PATH`, or by
    /// copying both back while it is stopped.
    Backup {
        /// The new database file; it and its files folder must not exist.
        path: PathBuf,
    },
}

/// `chat-server admin ...`: the admin page's work, for the operator with
/// shell access (and for the first admin of a server whose registration
/// is not open).
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// List every account with its role, state and last activity.
    Users,
    /// Disable an account: its sessions end, its connections close, its
    /// logins are refused; its messages stay.
    Disable { nickname: String },
    /// Enable a disabled account again.
    Enable { nickname: String },
    /// Make a one-time link that sets a new password for the account.
    ResetPassword {
        nickname: String,
        /// How the server is reached, to print a whole link (e.g.
        /// `https://chat.example.org`).
        #[arg(long, default_value = "http://localhost:8080")]
        base_url: String,
    },
    /// Make an invitation code.
    Invite {
        /// Accounts it can create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it stays valid, e.g. `7d`, `12h`.
        #[arg(long, default_value = "7d", value_parser = parse_duration)]
        expires_in: Duration,
        /// How the server is reached, to print a whole link.
        #[arg(long, default_value = "http://localhost:8080")]
        base_url: String,
    },
    /// Make an account an admin.
    Promote { nickname: String },
}

/// SQLite's `synchronous` setting, in the words of `--durability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Committed messages survive a crash of the server process.
    Normal,
    /// Committed messages also survive a power loss or a kernel crash.
    Full,
}

impl Config {
    /// The defaults, as if started with no flags and no environment (the
    /// flag parser's own defaults, so the two cannot drift apart), on a
    /// free loopback port, with open registration: a base for tests and
    /// embedders that set fields in code.
    pub fn for_tests() -> Config {
        use clap::{CommandFactory, FromArgMatches};
        let without_environment = Config::command().mut_args(|arg| arg.env(None));
        let defaults = without_environment
            .try_get_matches_from(["chat-server", "--addr", "127.0.0.1:0"])
            .and_then(|matches| Config::from_arg_matches(&matches));
        match defaults {
            // Tests register many users without an admin's invitations;
            // the registration modes have their own tests.
            Ok(config) => Config {
                registration: Some(RegistrationMode::Open),
                ..config
            },
            // The defaults are constants of this file: a unit test parses
            // them, so this cannot happen in a build that passed its tests.
            Err(e) => unreachable!("the default flags do not parse: {e}"),
        }
    }

    /// How often to ping: `--ping-interval`, or 9/10 of `--pong-wait`
    /// (gorilla/websocket's `pingPeriod = (pongWait * 9) / 10`).
    pub fn ping_period(&self) -> Duration {
        self.ping_interval.unwrap_or(self.pong_wait * 9 / 10)
    }

    /// Where sent files are kept: `--data-dir`, or `NAME-files` beside the
    /// database `NAME.db`.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| files_dir_for(&self.db))
    }

    /// The edit window as the rules take it: `None` for no limit (`0`).
    pub fn edit_window(&self) -> Option<Duration> {
        (!self.edit_window.is_zero()).then_some(self.edit_window)
    }

    /// Checks the combinations a flag parser cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.ping_period() >= self.pong_wait {
            return Err(format!(
                "--ping-interval ({:?}) must be shorter than --pong-wait ({:?})",
                self.ping_period(),
                self.pong_wait
            ));
        }
        if self.ping_period().is_zero() {
            return Err("--ping-interval must be above zero".into());
        }
        if [
            self.outbox_capacity,
            self.http_threads,
            self.query_threads,
            self.query_queue,
            self.push_queue,
        ]
        .contains(&0)
        {
            return Err(
                "--outbox-capacity, --http-threads, --query-threads, --query-queue and \
                        --push-queue must be at least 1"
                    .into(),
            );
        }
        let rates = [self.message_rate, self.login_rate, self.register_rate];
        if rates.iter().any(|r| !r.is_finite() || *r < 0.0) {
            return Err("rates must be 0 (no limit) or positive numbers".into());
        }
        if self.max_connections == 0
            || self.max_connections_per_user == 0
            || self.max_http_connections == 0
        {
            return Err("connection limits must be at least 1".into());
        }
        Ok(())
    }
}

/// `25MiB` → (25, "MiB"): the leading digits and what follows them.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    Some((number.parse().ok()?, unit))
}

/// Parses a size: bytes, or a number with `KiB`, `MiB`, `GiB` (also `K`,
/// `M`, `G`, in powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (n, unit) = number_and_unit(text)
        .ok_or_else(|| format!("`{text}` is not a size like 25MiB, 512KiB or 1048576"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return Err(format!("unknown unit in `{text}`: use KiB, MiB or GiB")),
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Parses `500ms`, `60s`, `5m`, `12h`, `30d` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (n, unit) = number_and_unit(text)
        .ok_or_else(|| format!("`{text}` is not a duration like 500ms, 60s, 5m, 12h or 30d"))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{text}` is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => Err(format!("unknown unit in `{text}`: use ms, s, m, h or d")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(2_592_000)));
        assert_eq!(parse_size("25MiB"), Ok(25 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2K"), Ok(2048));
        assert!(parse_size("5TB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5 weeks").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }

    #[test]
    fn the_test_base_is_the_flag_defaults_and_parses() {
        let base = Config::for_tests();
        assert!(base.validate().is_ok());
        assert_eq!(base.addr, "127.0.0.1:0");
        assert_eq!(base.http_threads, 8);
        assert_eq!(base.pong_wait, Duration::from_secs(60));
        assert_eq!(base.ping_period(), Duration::from_secs(54));
        let mut shorter = Config::for_tests();
        shorter.pong_wait = Duration::from_secs(10);
        assert_eq!(shorter.ping_period(), Duration::from_secs(9));
        shorter.ping_interval = Some(Duration::from_secs(10));
        assert!(
            shorter.validate().is_err(),
            "a ping as late as the pong wait"
        );
    }
}
