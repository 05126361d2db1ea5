//! What makes a push endpoint acceptable, checked when a browser
//! subscribes (the addresses it resolves to are checked again on every
//! push, in [`super::delivery`]).

use std::net::IpAddr;

use url::{Host, Url};

/// Push services' endpoints are a few hundred bytes; this is ample.
pub const MAX_ENDPOINT_BYTES: usize = 2048;

/// `endpoint` if a push may be sent to it, or why not. `allow_private`:
/// plain `http` and private addresses are accepted too.
pub fn check(endpoint: &str, allow_private: bool) -> Result<Url, &'static str> {
    if endpoint.len() > MAX_ENDPOINT_BYTES {
        return Err("endpoint is too long");
    }
    let url = Url::parse(endpoint).map_err(|_| "endpoint must be an absolute URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("endpoint must be an https URL"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("endpoint must not hold credentials");
    }
    let literal = match url.host() {
        None => return Err("endpoint must name a host"),
        Some(Host::Domain(_)) => None,
        Some(Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(address) = literal
        && !allow_private
        && !super::address::is_public(address)
    {
        return Err("endpoint must be a public address");
    }
    Ok(url)
}

/// The origin of `endpoint` (`https://host[:port]`): the audience its
/// VAPID token names.
pub fn audience(endpoint: &str) -> Option<String> {
    let origin = Url::parse(endpoint).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_public_https_urls_unless_private_ones_are_allowed() {
        let fine = "https://push.example.net/send/abc";
        assert!(check(fine, false).is_ok());
        assert_eq!(audience(fine).as_deref(), Some("https://push.example.net"));
        assert_eq!(
            audience("https://push.example.net:8443/x").as_deref(),
            Some("https://push.example.net:8443")
        );
        let long = format!(
            "https://push.example.net/{}",
            "a".repeat(MAX_ENDPOINT_BYTES)
        );
        for (endpoint, why) in [
            ("http://push.example.net/x", "endpoint must be an https URL"),
            ("ftp://push.example.net/x", "endpoint must be an https URL"),
            ("/relative", "endpoint must be an absolute URL"),
            (
                "https://user:pw@push.example.net/x",
                "endpoint must not hold credentials",
            ),
            ("https://127.0.0.1/x", "endpoint must be a public address"),
            ("https://[::1]:8443/x", "endpoint must be a public address"),
            (
                "https://169.254.169.254/latest",
                "endpoint must be a public address",
            ),
            (long.as_str(), "endpoint is too long"),
        ] {
            assert_eq!(check(endpoint, false).err(), Some(why), "{endpoint}");
        }
        assert!(check("http://127.0.0.1:9000/x", true).is_ok());
    }
}
