//! VAPID (RFC 8292): how a push service knows which server sends a push.
//!
//! The server has one P-256 key pair. Browsers subscribe with its public
//! half (`GET /api/push/vapid-public-key`), and the push service then
//! accepts for that subscription only requests signed by its private half:
//! each push carries a short-lived JWT (ES256) naming the push service's
//! origin, signed with it, and the public key beside it.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::SecretKey;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};

use crate::repo::{Store, StoreError};

/// How long a signed token is valid: push services refuse more than 24 h.
pub const TOKEN_LIFETIME_SECONDS: i64 = 12 * 60 * 60;

/// The server's VAPID key pair.
pub struct VapidKey {
    signing: SigningKey,
    /// The public key, uncompressed, base64url: what browsers subscribe with.
    public: String,
}

impl VapidKey {
    pub fn new(secret: SecretKey) -> VapidKey {
        let public = URL_SAFE_NO_PAD.encode(secret.public_key().to_sec1_bytes());
        VapidKey {
            signing: SigningKey::from(secret),
            public,
        }
    }

    /// The public key as browsers want it (`applicationServerKey`).
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header of a push to a service at `audience`
    /// (its origin, `https://host[:port]`), valid until `expires` (Unix
    /// seconds), naming `contact` (a `mailto:` or `https:` URL) if the
    /// operator gave one.
    pub fn authorization(&self, audience: &str, expires: i64, contact: Option<&str>) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let mut claims = serde_json::json!({ "aud": audience, "exp": expires });
        if let Some(contact) = contact {
            claims["sub"] = contact.into();
        }
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        // ES256: the signature is r and s, 32 bytes each (RFC 7518, 3.4).
        let signature: Signature = self.signing.sign(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(signature.to_bytes());
        format!("vapid t={signed}.{signature}, k={}", self.public)
    }
}

/// Why the server has no VAPID key.
#[derive(Debug, thiserror::Error)]
pub enum VapidKeyError {
    #[error("cannot read the VAPID key file {path}: {error}")]
    File {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("the VAPID key file {0} does not hold a P-256 private key (32 bytes, base64url)")]
    NotAKey(PathBuf),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("cannot keep the VAPID key in the database: {0}")]
    Store(#[from] StoreError),
}

/// The name of the key in the database.
const SECRET_NAME: &str = "vapid";

/// The server's key: read from `file` (`--vapid-key-file`: the private key
/// as `web-push generate-vapid-keys` prints it), or the one kept in the
/// database, made on first start. Subscriptions are bound to it: a new key
/// would silently end them all.
pub fn load(store: &dyn Store, file: Option<&Path>) -> Result<VapidKey, VapidKeyError> {
    let secret = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|error| VapidKeyError::File {
                path: path.to_owned(),
                error,
            })?;
            URL_SAFE_NO_PAD
                .decode(text.trim().trim_end_matches('='))
                .ok()
                .and_then(|bytes| SecretKey::from_slice(&bytes).ok())
                .ok_or_else(|| VapidKeyError::NotAKey(path.to_owned()))?
        }
        None => {
            let fresh = super::ece::random_secret_key()
                .map_err(|e| VapidKeyError::Random(e.to_string()))?;
            let kept = store.server_secret(SECRET_NAME, fresh.to_bytes().to_vec())?;
            SecretKey::from_slice(&kept).map_err(|_| {
                VapidKeyError::Store(StoreError::Commit("the kept VAPID key is not a key".into()))
            })?
        }
    };
    Ok(VapidKey::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn the_token_is_signed_by_the_key_it_names() {
        let key = VapidKey::new(super::super::ece::random_secret_key().expect("key"));
        let header = key.authorization(
            "https://push.example.net",
            1_900_000_000,
            Some("mailto:a@b"),
        );
        let (token, public) = header
            .strip_prefix("vapid t=")
            .and_then(|rest| rest.split_once(", k="))
            .expect("vapid t=..., k=...");
        assert_eq!(public, key.public_key());
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let (header_part, claims_part) = signed.split_once('.').expect("three parts");
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).expect("base64url");
        let header: serde_json::Value = serde_json::from_slice(&decode(header_part)).expect("json");
        assert_eq!(header["alg"], "ES256");
        let claims: serde_json::Value = serde_json::from_slice(&decode(claims_part)).expect("json");
        assert_eq!(claims["aud"], "https://push.example.net");
        assert_eq!(claims["exp"], 1_900_000_000);
        assert_eq!(claims["sub"], "mailto:a@b");

        let verifying = VerifyingKey::from_sec1_bytes(&decode(public)).expect("public key");
        let signature = Signature::from_slice(&decode(signature)).expect("64 bytes");
        assert!(verifying.verify(signed.as_bytes(), &signature).is_ok());
        // And not another text.
        assert!(verifying.verify(b"something else", &signature).is_err());
    }
}
