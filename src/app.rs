//! The shared context every server thread gets a clone of.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::auth::DeviceKey;
use crate::config::Config;
use crate::files::store::FileStore;
use crate::files::workers::ImageWorkers;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::origin;
use crate::privacy::Privacy;
use crate::push::vapid::VapidKey;
use crate::repo::Store;
use crate::server::Core;
use crate::ws::hub::HubHandle;

/// Storage, the hub's address, and the settings: all a request handler or
/// a WebSocket reader needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub hub: HubHandle,
    pub config: Arc<Config>,
    /// Browser origins allowed to open a WebSocket (see `ws::listener`).
    pub allowed_origins: Arc<Vec<String>>,
    /// Rates and caps against abuse.
    pub limits: Arc<Limits>,
    /// Numbers for `GET /metrics`, shared with the hub.
    pub metrics: Arc<Metrics>,
    /// Who blocked whom, who keeps read state private; shared with the hub.
    pub privacy: Arc<Privacy>,
    /// The bytes of sent files.
    pub files: Arc<FileStore>,
    /// Where images get their metadata removed and their thumbnails made.
    pub images: ImageWorkers,
    /// Signs the cookies that tell an owner's browsers from strangers at
    /// login (see [`DeviceKey`]).
    pub device_key: Arc<DeviceKey>,
    /// The server's Web Push key.
    pub vapid: Arc<VapidKey>,
    /// Where the WebSocket listener is bound, for `GET /api/config`.
    pub ws_addr: SocketAddr,
    /// Held by every thread that serves a connection; shutdown waits until
    /// all clones are gone, i.e. every in-flight write has finished.
    pub(crate) alive: crossbeam_channel::Sender<()>,
}

impl App {
    /// Builds the context from the server's core and settings.
    /// `http_addr` and `ws_addr` are the bound addresses. The returned
    /// receiver reports "disconnected" once every clone of the App (every
    /// thread serving a connection) is gone.
    pub fn new(
        config: Config,
        core: &Core,
        (http_addr, ws_addr): (SocketAddr, SocketAddr),
        device_key: DeviceKey,
    ) -> (App, crossbeam_channel::Receiver<()>) {
        let (alive, all_done) = crossbeam_channel::bounded(0);
        let app = App {
            store: core.store.clone(),
            hub: core.hub.clone(),
            allowed_origins: Arc::new(origin::allowed_origins(http_addr, &config.allowed_origins)),
            limits: Arc::new(Limits::from_config(&config)),
            metrics: core.metrics.clone(),
            privacy: core.privacy.clone(),
            files: core.files.clone(),
            images: core.images.clone(),
            config: Arc::new(config),
            device_key: Arc::new(device_key),
            vapid: core.vapid.clone(),
            ws_addr,
            alive,
        };
        (app, all_done)
    }
}
