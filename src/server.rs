//! Starting and stopping the whole server: storage, hub, WebSocket
//! listener, HTTP workers, in that order, and the reverse on shutdown.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::accounts::watch::DisabledWatch;
use crate::app::App;
use crate::auth::DeviceKey;
use crate::config::{Config, Durability, Switch};
use crate::expiry::{self, Expirer};
use crate::fd_limit;
use crate::files::janitor::Janitor;
use crate::files::store::FileStore;
use crate::files::workers::ImageWorkers;
use crate::http::{self, HttpServer};
use crate::metrics::Metrics;
use crate::privacy::Privacy;
use crate::push::vapid::{self, VapidKey};
use crate::push::{PushSettings, Pusher, client};
use crate::repo::{SearchIndex, SqliteStore, Store, StoreError};
use crate::ws::hub::{self, Control, HubHandle};
use crate::ws::listener::WsListener;
use crate::ws::queries::QueryPool;
use crate::ws::writer::WRITE_WAIT;

/// How long shutdown waits for connections to finish their last writes.
/// A writer gives up on a stuck client after [`WRITE_WAIT`]; a little more
/// than that covers every writer.
const DRAIN_TIMEOUT: Duration = WRITE_WAIT.saturating_add(Duration::from_secs(2));

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot open database: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("cannot start a thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error(transparent)]
    Vapid(#[from] crate::push::vapid::VapidKeyError),
    #[error("cannot read the certificates of --push-ca-file {path}: {error}")]
    PushCaFile {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
    #[error("cannot prepare the folder of sent files {path}: {error}")]
    Files {
        path: std::path::PathBuf,
        error: std::io::Error,
    },
}

/// Entry point for `main.rs`, tests and examples.
///
/// ```
/// use chat_server::{Config, Server};
///
/// let dir = std::env::temp_dir().join(format!("chat-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut config = Config::for_tests(); // 127.0.0.1, port 0
/// config.db = dir.join("chat.db");
///
/// let server = Server::start(config).unwrap();
/// assert_ne!(server.http_addr().port(), 0); // port 0 became a real port
/// assert_ne!(server.ws_addr().port(), server.http_addr().port());
/// server.shutdown();
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub struct Server;

impl Server {
    /// Opens the database, binds both listeners and starts every thread.
    /// Returns once the server accepts connections.
    pub fn start(mut config: Config) -> Result<ServerHandle, StartError> {
        config.validate().map_err(StartError::Config)?;
        if let Some(open_files) = fd_limit::raise_to_hard_maximum()
            && fd_limit::fit_caps(&mut config, open_files)
        {
            log::warn!(
                "only {open_files} open files allowed: connection caps lowered to \
                 {} WebSockets and {} HTTP connections (raise `ulimit -n`)",
                config.max_connections,
                config.max_http_connections
            );
        }
        let core = Core::start(&config)?;
        let bind_error = |reason: String| StartError::Bind {
            addr: config.addr.clone(),
            reason,
        };
        let http_socket = TcpListener::bind(&config.addr).map_err(|e| bind_error(e.to_string()))?;
        no_delay_for_accepted(&http_socket);
        let spool = http::upload_spool(&config, core.store.clone(), core.files.spool_dir());
        let limits = http::connection_limits(&config, Some(spool));
        let http = tiny_http::Server::with_limits(http_socket, limits)
            .map_err(|e| bind_error(e.to_string()))?;
        let http_addr = http.server_addr().to_ip().ok_or_else(|| StartError::Bind {
            addr: config.addr.clone(),
            reason: "not an IP address".into(),
        })?;
        let ws_addr = ws_addr(&config, http_addr)?;
        let ws_socket = TcpListener::bind(ws_addr).map_err(|e| StartError::Bind {
            addr: ws_addr.to_string(),
            reason: e.to_string(),
        })?;
        let ws_addr = ws_socket.local_addr()?;

        let device_key = DeviceKey::generate().map_err(|e| StartError::Random(e.to_string()))?;
        let (app, all_done) = App::new(config, &core, (http_addr, ws_addr), device_key);
        let Core {
            hub,
            hub_thread,
            janitor,
            expirer,
            pusher,
            ..
        } = core;
        let disabled_watch = DisabledWatch::spawn(app.store.clone(), hub.clone())?;
        let ws_listener = WsListener::spawn(ws_socket, app.clone())?;
        let http = HttpServer::spawn(http, app.clone(), app.config.http_threads)?;
        log::info!(
            "listening: HTTP on http://{http_addr}, WebSocket on ws://{ws_addr}/ws; database {}",
            app.config.db.display()
        );
        Ok(ServerHandle {
            http_addr,
            ws_addr,
            running: Some(Running {
                http,
                ws_listener,
                hub,
                hub_thread,
                janitor,
                expirer,
                pusher,
                disabled_watch,
                all_done,
            }),
        })
    }
}

/// The server's core, wired: the store, the hub with its query pool, and
/// the numbers they keep. What a server needs before it opens sockets (and
/// what a harness needs that drives the handlers without any).
pub struct Core {
    pub store: Arc<dyn Store>,
    pub hub: HubHandle,
    pub hub_thread: JoinHandle<()>,
    pub metrics: Arc<Metrics>,
    /// Blocks and read-receipt settings, shared by the hub and the handlers.
    pub privacy: Arc<Privacy>,
    /// The bytes of sent files.
    pub files: Arc<FileStore>,
    /// The threads that work on uploaded images.
    pub images: ImageWorkers,
    /// The thread that removes files no upload refers to any more.
    pub janitor: Janitor,
    /// The thread that deletes messages when they are due.
    pub expirer: Expirer,
    /// The server's key for Web Push.
    pub vapid: Arc<VapidKey>,
    /// The threads that send pushes.
    pub pusher: Pusher,
}

impl Core {
    pub fn start(config: &Config) -> Result<Core, StartError> {
        // The hub's channels first: the store emits committed changes on
        // one of them.
        let (hub, change_sink, hub_inbox) = hub::channels();
        let search = match config.search {
            Switch::On => SearchIndex::On,
            Switch::Off => SearchIndex::Off,
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_with(
            &config.db,
            config.durability,
            change_sink,
            search,
        )?);
        let metrics = Arc::new(Metrics::default());
        let privacy = Arc::new(Privacy::load(&*store)?);
        let files_dir = config.files_dir();
        // Files are as durable as messages: synced with `full` only.
        let sync_files = config.durability == Durability::Full;
        let files = Arc::new(FileStore::open(&files_dir, sync_files).map_err(|error| {
            StartError::Files {
                path: files_dir,
                error,
            }
        })?);
        let queries = QueryPool::spawn(
            store.clone(),
            metrics.clone(),
            config.query_threads,
            config.query_queue,
        )?;
        let vapid = Arc::new(vapid::load(&*store, config.vapid_key_file.as_deref())?);
        let (push_queue, pusher) =
            Pusher::spawn(
                store.clone(),
                metrics.clone(),
                vapid.clone(),
                PushSettings {
                    preview: config.push_preview == Switch::On,
                    allow_private: config.push_allow_private_endpoints,
                    coalesce: config.push_coalesce,
                    queue: config.push_queue,
                    tls: match &config.push_ca_file {
                        Some(path) => Some(client::trusting(path).map_err(|error| {
                            StartError::PushCaFile {
                                path: path.clone(),
                                error,
                            }
                        })?),
                        None => None,
                    },
                    contact: config.push_contact.clone(),
                },
            )?;
        let hub_thread = hub::spawn(
            hub_inbox,
            queries,
            metrics.clone(),
            privacy.clone(),
            push_queue,
        )?;
        // Room for every upload the HTTP side takes at once: an image
        // waits for a thread rather than being refused.
        let images = ImageWorkers::start(config.image_threads, http::UPLOADS_AT_ONCE)?;
        let janitor = Janitor::spawn(
            store.clone(),
            files.clone(),
            metrics.clone(),
            config.unsent_upload_lifetime,
        )?;
        // What fell due while the server was stopped goes before anyone
        // can connect and read it.
        let expired = expiry::catch_up(&*store, config.retention)?;
        if expired > 0 {
            log::info!("{expired} message(s) that fell due while stopped disappeared");
        }
        let expirer = Expirer::spawn(store.clone(), metrics.clone(), config.retention)?;
        Ok(Core {
            store,
            hub,
            hub_thread,
            metrics,
            privacy,
            files,
            images,
            janitor,
            expirer,
            vapid,
            pusher,
        })
    }
}

/// The WebSocket address: `--ws-addr`, or the HTTP address with port + 1
/// (port 0 stays 0).
fn ws_addr(config: &Config, http_addr: SocketAddr) -> Result<SocketAddr, StartError> {
    let unusable = |reason: &str| StartError::Bind {
        addr: config.ws_addr.clone().unwrap_or_default(),
        reason: reason.into(),
    };
    match &config.ws_addr {
        Some(text) => text
            .to_socket_addrs()
            .map_err(|e| unusable(&e.to_string()))?
            .next()
            .ok_or_else(|| unusable("resolves to no address")),
        None => {
            // The port asked for, not the one bound: with port 0 the HTTP
            // port is random, and so must the WebSocket port be.
            let requested_port = config
                .addr
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map_or(http_addr.port(), |addr| addr.port());
            let port = match requested_port {
                0 => 0,
                p => p
                    .checked_add(1)
                    .ok_or_else(|| unusable("HTTP port 65535 has no next port; set --ws-addr"))?,
            };
            Ok(SocketAddr::new(http_addr.ip(), port))
        }
    }
}

/// A running server. Dropping it shuts it down, like [`ServerHandle::shutdown`].
pub struct ServerHandle {
    http_addr: SocketAddr,
    ws_addr: SocketAddr,
    running: Option<Running>,
}

struct Running {
    http: HttpServer,
    ws_listener: WsListener,
    hub: HubHandle,
    hub_thread: JoinHandle<()>,
    janitor: Janitor,
    expirer: Expirer,
    pusher: Pusher,
    disabled_watch: DisabledWatch,
    all_done: Receiver<()>,
}

impl ServerHandle {
    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The bound WebSocket address.
    pub fn ws_addr(&self) -> SocketAddr {
        self.ws_addr
    }

    /// Graceful stop: no new connections or requests; requests in progress
    /// finish; every WebSocket gets close code 1001 after the frames already
    /// queued for it; then the database is closed.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.http.stop();
        running.ws_listener.stop();
        running.hub.control(Control::Shutdown);
        let _ = running.hub_thread.join();
        running.janitor.stop();
        running.expirer.stop();
        running.pusher.stop();
        running.disabled_watch.stop();
        // Every connection thread holds a clone of `alive`; the channel
        // disconnects when the last one ends.
        match running.all_done.recv_timeout(DRAIN_TIMEOUT) {
            Err(RecvTimeoutError::Disconnected) | Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                log::warn!("some connections did not finish within {DRAIN_TIMEOUT:?}");
            }
        }
        log::info!("server stopped");
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Turns Nagle's algorithm off for the sockets this listener accepts (Linux
/// copies the option from the listening socket). tiny_http writes a
/// response's head and body separately and has no setting for it: with
/// Nagle on, the body waited for the client's delayed ACK, and a few REST
/// requests in a hundred took 40 ms more (docs/BENCHMARKS.md, "Why the
/// settings are what they are").
fn no_delay_for_accepted(listener: &TcpListener) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket, a c_int option value and its size.
        let result = unsafe {
            libc::setsockopt(
                listener.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if result != 0 {
            log::warn!(
                "cannot turn off Nagle's algorithm for HTTP: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
