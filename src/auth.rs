//! Accounts and sessions: input rules, password hashing, session tokens.
//!
//! Passwords are hashed with Argon2id (memory-hard, the OWASP default). A
//! session is a random 256-bit token in an `HttpOnly` cookie; the database
//! keeps only its SHA-256, so a leaked database holds no usable sessions.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::models::UserId;

/// Name of the cookie that carries the session token.
pub const SESSION_COOKIE: &str = "session_token";

/// Name of the cookie that marks a browser an account has logged in from
/// (see [`DeviceKey`]).
pub const DEVICE_COOKIE: &str = "device";

/// Longest login identifier looked up: an email address is at most 254
/// bytes and a nickname 32; anything longer matches no account.
pub const MAX_IDENTIFIER_BYTES: usize = 254;

/// Why a registration was refused; the text goes to the client as is.
pub type InvalidInput = &'static str;

/// Checks the registration rules of `docs/API.md`.
pub fn validate_registration(
    nickname: &str,
    email: &str,
    password: &str,
) -> Result<(), InvalidInput> {
    let nickname_ok = (3..=32).contains(&nickname.len())
        && nickname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !nickname_ok {
        return Err("nickname must be 3-32 characters: letters, digits, _ - .");
    }
    let email_ok = email.len() <= 254
        && email.contains('@')
        && !email.starts_with('@')
        && !email.ends_with('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !email_ok {
        return Err("email must look like name@host");
    }
    validate_password(password)
}

/// Passwords are 8 to 128 characters (not bytes: "pässwörd" is 8).
pub fn validate_password(password: &str) -> Result<(), InvalidInput> {
    // Count at most 129 characters, so a 1 MiB password costs nothing.
    let chars = password.chars().take(129).count();
    if (8..=128).contains(&chars) {
        Ok(())
    } else {
        Err("password must be 8-128 characters")
    }
}

/// Hashes a password into a self-describing PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

/// Checks a login. With `stored_hash` = `None` (no such user) it still runs a
/// full Argon2 verification against a fixed hash, so "unknown user" and
/// "wrong password" take the same time and cannot be told apart.
pub fn verify_password(password: &str, stored_hash: Option<&str>) -> bool {
    static DUMMY_HASH: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY_HASH.get_or_init(|| {
        hash_password("not a real password, only here to spend time").unwrap_or_default()
    });
    let known = stored_hash.is_some();
    let Ok(parsed) = PasswordHash::new(stored_hash.unwrap_or(dummy)) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    known && matches
}

/// A fresh session token: 256 bits from the operating system's RNG, hex
/// encoded for the cookie. Returns the token and the hash to store.
pub fn new_session_token() -> Result<(String, [u8; 32]), getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    let token = to_hex(&bytes);
    let hash = hash_token(&token);
    Ok((token, hash))
}

/// The form in which a token is stored and looked up.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Lower-case hex, two digits a byte.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds the session token in the values of `Cookie` headers
/// (`a=1; session_token=abc; b=2`).
pub fn session_token_from_cookies<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    cookie_value(cookie_headers, SESSION_COOKIE)
}

/// The value of the cookie `wanted` in the values of `Cookie` headers.
pub fn cookie_value<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
    wanted: &str,
) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
}

/// Compares two secrets in time that does not depend on where they differ
/// (their SHA-256 digests are compared instead of the texts).
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    hash_token(a) == hash_token(b)
}

/// Signs and checks device cookies, OWASP's answer to account lockout
/// ("Slow brute-force attacks with device cookies"): a browser that has
/// logged in to an account gets a signed cookie naming the account and a
/// random nonce. Failed logins back off per account for strangers, all of
/// them together, but per device for a browser that presents a valid
/// cookie: whoever guesses from elsewhere cannot lock the owner out of the
/// browsers they already use. The key is made at start, so after a
/// restart each browser is a stranger until its next login.
pub struct DeviceKey([u8; 32]);

impl DeviceKey {
    pub fn generate() -> Result<DeviceKey, getrandom::Error> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        Ok(DeviceKey(key))
    }

    fn mac(&self, user: UserId, nonce: &str) -> Hmac<Sha256> {
        // A key of any length is valid for HMAC; 32 bytes always are.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{user}.{nonce}").as_bytes());
        mac
    }

    /// A new cookie value for `user`: `USER.NONCE.MAC`, hex.
    pub fn issue(&self, user: UserId) -> Result<String, getrandom::Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)?;
        let nonce = to_hex(&nonce);
        let mac = to_hex(&self.mac(user, &nonce).finalize().into_bytes());
        Ok(format!("{user}.{nonce}.{mac}"))
    }

    /// The nonce of `cookie` if it is a valid device cookie for `user`.
    pub fn verify<'a>(&self, cookie: &'a str, user: UserId) -> Option<&'a str> {
        let mut parts = cookie.splitn(3, '.');
        let (owner, nonce, mac) = (parts.next()?, parts.next()?, parts.next()?);
        // Compared as text: "07" must not pass for user 7.
        if owner != user.to_string() || nonce.len() != 32 {
            return None;
        }
        let mac = from_hex(mac)?;
        self.mac(user, nonce).verify_slice(&mac).ok()?;
        Some(nonce)
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_rules() {
        assert!(validate_registration("alice", "a@b.c", "password1").is_ok());
        assert!(validate_registration("al", "a@b.c", "password1").is_err());
        assert!(validate_registration(&"a".repeat(33), "a@b.c", "password1").is_err());
        assert!(validate_registration("al ice", "a@b.c", "password1").is_err());
        assert!(validate_registration("älice", "a@b.c", "password1").is_err());
        assert!(validate_registration("alice", "abc", "password1").is_err());
        assert!(validate_registration("alice", "a@b.c", "short").is_err());
        assert!(validate_registration("alice", "a@b.c", &"p".repeat(129)).is_err());
        assert!(validate_registration("alice", "a@b.c", "pässwörd").is_ok());
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("correct horse", Some("garbage")));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, hash_a) = new_session_token().expect("rng");
        let (b, _) = new_session_token().expect("rng");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_eq!(hash_token(&a), hash_a);
    }

    #[test]
    fn device_cookies_name_one_account_and_cannot_be_forged() {
        let key = DeviceKey::generate().expect("rng");
        let cookie = key.issue(7).expect("rng");
        let nonce = key.verify(&cookie, 7).expect("valid for its account");
        assert_eq!(nonce.len(), 32);
        assert_eq!(key.verify(&cookie, 8), None, "another account");
        let other_key = DeviceKey::generate().expect("rng");
        assert_eq!(other_key.verify(&cookie, 7), None, "another server's key");
        let mut tampered = cookie.clone();
        tampered.replace_range(2..3, if &cookie[2..3] == "0" { "1" } else { "0" });
        assert_eq!(key.verify(&tampered, 7), None);
        assert_eq!(key.verify("7.zz.zz", 7), None);
        assert_eq!(key.verify(&format!("0{cookie}"), 7), None, "07 is not 7");
        assert_eq!(key.verify("", 7), None);
    }

    #[test]
    fn cookie_parsing() {
        assert_eq!(
            session_token_from_cookies(["a=1; session_token=abc; b=2"]),
            Some("abc")
        );
        assert_eq!(
            session_token_from_cookies(["x=1", "session_token=def"]),
            Some("def")
        );
        assert_eq!(session_token_from_cookies(["session_tokenx=1"]), None);
        assert_eq!(session_token_from_cookies(["session_token="]), None);
    }
}
