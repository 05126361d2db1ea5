//! Accounts and sessions: input rules, password hashing, session tokens.
//!
//! Passwords are hashed with Argon2id (memory-hard, the OWASP default). A
//! session is a random 256-bit token in an `HttpOnly` cookie; the database
//! keeps only its SHA-256, so a leaked database holds no usable sessions.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};

/// Name of the cookie that carries the session token.
pub const SESSION_COOKIE: &str = "session_token";

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

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Finds the session token in the values of `Cookie` headers
/// (`a=1; session_token=abc; b=2`).
pub fn session_token_from_cookies<'a>(
    cookie_headers: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|value| !value.is_empty())
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
