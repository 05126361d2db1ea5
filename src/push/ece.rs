//! Web Push message encryption (RFC 8291): the payload of a push is
//! readable only by the browser that subscribed.
//!
//! A subscription carries the browser's P-256 public key (`p256dh`) and a
//! 16-byte `auth` secret. For each push the server makes a fresh key pair
//! and a random salt, derives a content key and a nonce from the ECDH
//! secret (HKDF-SHA-256, keyed by `auth`), and seals the payload with
//! AES-128-GCM in one record of the `aes128gcm` content coding (RFC 8188).
//! The primitives come from RustCrypto; this file only puts them together
//! as the RFC says, and is checked against its Appendix A byte for byte.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use hkdf::Hkdf;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size written in the header: a push holds one record, and
/// push services accept 4096 bytes of payload (RFC 8030, section 7.2).
pub const RECORD_SIZE: u32 = 4096;
/// Header: salt (16), record size (4), key id length (1), the server's
/// public key (65); then the tag (16) and the padding delimiter (1).
const OVERHEAD: usize = 16 + 4 + 1 + 65 + 16 + 1;
/// The most plaintext one push can carry.
pub const MAX_PLAINTEXT: usize = RECORD_SIZE as usize - OVERHEAD;

/// Why a payload could not be encrypted for a subscription.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncryptError {
    #[error("the subscription's p256dh is not a P-256 public key")]
    BadPublicKey,
    #[error("the subscription's auth secret must be 16 bytes")]
    BadAuthSecret,
    #[error("the payload is longer than {MAX_PLAINTEXT} bytes")]
    TooLong,
}

/// What the browser gave when it subscribed.
pub struct Receiver<'a> {
    /// Its public key, uncompressed (65 bytes).
    pub p256dh: &'a [u8],
    /// Its authentication secret (16 bytes).
    pub auth: &'a [u8],
}

/// What the server picks for one push: random each time, fixed in tests.
pub struct Sender {
    pub key: SecretKey,
    pub salt: [u8; 16],
}

impl Sender {
    /// A fresh key pair and salt.
    pub fn random() -> Result<Sender, getrandom::Error> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)?;
        Ok(Sender {
            key: random_secret_key()?,
            salt,
        })
    }
}

/// A P-256 private key from the operating system's random source.
pub fn random_secret_key() -> Result<SecretKey, getrandom::Error> {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        // Zero or beyond the group order: about one draw in 2^32.
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
}

/// The body of a push: the `aes128gcm` header and one sealed record.
pub fn encrypt(
    plaintext: &[u8],
    receiver: &Receiver<'_>,
    sender: &Sender,
) -> Result<Vec<u8>, EncryptError> {
    if plaintext.len() > MAX_PLAINTEXT {
        return Err(EncryptError::TooLong);
    }
    let ua_public =
        PublicKey::from_sec1_bytes(receiver.p256dh).map_err(|_| EncryptError::BadPublicKey)?;
    let ua_public_bytes = ua_public.to_sec1_bytes();
    if receiver.auth.len() != 16 {
        return Err(EncryptError::BadAuthSecret);
    }
    let as_public_bytes = sender.key.public_key().to_sec1_bytes();
    let ecdh_secret =
        p256::ecdh::diffie_hellman(sender.key.to_nonzero_scalar(), ua_public.as_affine());

    // RFC 8291, section 3.4: the input keying material, bound to both keys.
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(&ua_public_bytes);
    key_info.extend_from_slice(&as_public_bytes);
    let mut ikm = [0u8; 32];
    expand(
        receiver.auth,
        ecdh_secret.raw_secret_bytes().as_slice(),
        &key_info,
        &mut ikm,
    );
    // RFC 8188, section 2.2 and 2.3: the content key and the nonce.
    let mut cek = [0u8; 16];
    expand(
        &sender.salt,
        &ikm,
        b"Content-Encoding: aes128gcm\0",
        &mut cek,
    );
    let mut nonce = [0u8; 12];
    expand(&sender.salt, &ikm, b"Content-Encoding: nonce\0", &mut nonce);

    // The only record is the last: its padding starts with 2.
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(2);
    let cipher = Aes128Gcm::new(&cek.into());
    let sealed = cipher
        .encrypt(&Nonce::from(nonce), record.as_slice())
        .map_err(|_| EncryptError::TooLong)?;

    let mut body = Vec::with_capacity(OVERHEAD + plaintext.len());
    body.extend_from_slice(&sender.salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(as_public_bytes.len() as u8);
    body.extend_from_slice(&as_public_bytes);
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// HKDF-SHA-256: extract with `salt` from `ikm`, expand `info` into `out`.
fn expand(salt: &[u8], ikm: &[u8], info: &[u8], out: &mut [u8]) {
    let hkdf = Hkdf::<Sha256>::new(Some(salt), ikm);
    // Only fails for outputs over 255 hash lengths; ours are 32 at most.
    let _ = hkdf.expand(info, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).expect("base64url")
    }

    /// RFC 8291, Appendix A: the same keys, salt and message give the
    /// same body, byte for byte.
    #[test]
    fn the_rfc_8291_example_encrypts_byte_for_byte() {
        let ua_public = b64(
            "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
        );
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let sender = Sender {
            key: SecretKey::from_slice(&b64("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
                .expect("as_private"),
            salt: b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().expect("salt"),
        };
        assert_eq!(
            sender.key.public_key().to_sec1_bytes().as_ref(),
            b64(
                "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
            )
        );
        let receiver = Receiver {
            p256dh: &ua_public,
            auth: &auth,
        };
        let body = encrypt(
            b"When I grow up, I want to be a watermelon",
            &receiver,
            &sender,
        )
        .expect("encrypt");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27ml\
             mlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPT\
             pK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn bad_subscription_keys_and_long_payloads_are_refused() {
        let sender = Sender::random().expect("random");
        let good_key = random_secret_key()
            .expect("key")
            .public_key()
            .to_sec1_bytes();
        let cases: [(&[u8], &[u8], usize, EncryptError); 3] = [
            (&[4; 65], &[0; 16], 10, EncryptError::BadPublicKey),
            (&good_key, &[0; 15], 10, EncryptError::BadAuthSecret),
            (
                &good_key,
                &[0; 16],
                MAX_PLAINTEXT + 1,
                EncryptError::TooLong,
            ),
        ];
        for (p256dh, auth, length, expected) in cases {
            let receiver = Receiver { p256dh, auth };
            let refused = encrypt(&vec![b'x'; length], &receiver, &sender);
            assert_eq!(refused, Err(expected));
        }
        let receiver = Receiver {
            p256dh: &good_key,
            auth: &[0; 16],
        };
        let body = encrypt(&vec![b'x'; MAX_PLAINTEXT], &receiver, &sender).expect("fits");
        assert_eq!(body.len(), RECORD_SIZE as usize);
    }
}
