//! The web client: static files compiled into the binary (the page, its
//! style, its icon and its JavaScript modules, see `src/web/app.js`), so
//! the server is one file to deploy and `cargo run` serves a complete app.

/// A file of the web client.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

/// A JavaScript module of the web client, served at `/NAME.js`.
macro_rules! module {
    ($name:literal) => {
        Asset {
            path: concat!("/", $name, ".js"),
            content_type: "text/javascript; charset=utf-8",
            body: include_str!(concat!("../web/", $name, ".js")),
        }
    };
}

const ASSETS: &[Asset] = &[
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        body: include_str!("../web/index.html"),
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../web/app.css"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../web/favicon.svg"),
    },
    module!("app"),
    module!("api"),
    module!("admin"),
    module!("account"),
    module!("notifications"),
    // The service worker: at the root, so that its scope is the whole app.
    module!("sw"),
    module!("search"),
    module!("state"),
    module!("dom"),
    module!("socket"),
    module!("changes"),
    module!("auth"),
    module!("sidebar"),
    module!("conversation"),
    module!("messages"),
    module!("compose"),
    module!("actions"),
    module!("uploads"),
    module!("media"),
];

/// The asset served at `path`, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/index.html" { "/" } else { path };
    ASSETS.iter().find(|asset| asset.path == path)
}

/// The Content-Security-Policy of the web client: scripts and styles only
/// from our own files (no inline script, so injected markup cannot run),
/// network access only to ourselves and the WebSocket endpoint.
pub fn content_security_policy(ws_url: &str) -> String {
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self' {ws_url}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}
