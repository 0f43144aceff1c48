//! Webhook signatures: Meta's `X-Hub-Signature-256`, checked on the raw body
//! bytes in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("signature header missing")]
    Missing,
    #[error("signature header malformed")]
    Malformed,
    #[error("signature does not match")]
    Mismatch,
}

/// Lowercase hex HMAC-SHA256 of `body` with `key`.
pub fn hmac_sha256_hex(key: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(key, body))
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The header value Meta would send for `body`: `sha256=<hex>`.
pub fn meta_signature_header(app_secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hmac_sha256_hex(app_secret, body))
}

/// Checks `X-Hub-Signature-256` against the raw body.
pub fn verify_meta_signature(
    app_secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim();
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let given = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if given.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let expected = hmac_sha256(app_secret, body);
    if bool::from(expected.ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Compares two secrets in constant time (for lengths too: both are hashed first).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    let ha = Sha256::digest(a);
    let hb = Sha256::digest(b);
    bool::from(ha.ct_eq(&hb))
}

/// Lowercase hex SHA-256, used for admin key hashes and storage keys.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VECTOR: &str = "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914";

    #[test]
    fn matches_the_protocol_test_vector() {
        assert_eq!(hmac_sha256_hex(b"secret", b"test"), VECTOR);
        let header = format!("sha256={VECTOR}");
        assert_eq!(
            verify_meta_signature(b"secret", b"test", Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn when_signature_is_missing_or_malformed_it_is_refused() {
        assert_eq!(
            verify_meta_signature(b"secret", b"test", None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_meta_signature(b"secret", b"test", Some(VECTOR)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_meta_signature(b"secret", b"test", Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_meta_signature(b"secret", b"test", Some("sha256=abcd")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn when_body_or_key_differs_it_is_a_mismatch() {
        let header = format!("sha256={VECTOR}");
        assert_eq!(
            verify_meta_signature(b"secret", b"test ", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_meta_signature(b"other", b"test", Some(&header)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn uppercase_hex_is_accepted() {
        let header = format!("sha256={}", VECTOR.to_uppercase());
        assert_eq!(
            verify_meta_signature(b"secret", b"test", Some(&header)),
            Ok(())
        );
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(secrets_equal(b"token", b"token"));
        assert!(!secrets_equal(b"token", b"token2"));
        assert!(!secrets_equal(b"", b"x"));
    }

    proptest! {
        #[test]
        fn any_signed_body_verifies_and_any_change_does_not(key in proptest::collection::vec(any::<u8>(), 0..64), body in proptest::collection::vec(any::<u8>(), 0..512), flip in any::<usize>()) {
            let header = meta_signature_header(&key, &body);
            prop_assert_eq!(verify_meta_signature(&key, &body, Some(&header)), Ok(()));
            if !body.is_empty() {
                let mut changed = body.clone();
                let i = flip % changed.len();
                changed[i] ^= 0x01;
                prop_assert_eq!(verify_meta_signature(&key, &changed, Some(&header)), Err(SignatureError::Mismatch));
            }
        }

        #[test]
        fn arbitrary_headers_never_panic(header in ".{0,100}") {
            let _ = verify_meta_signature(b"k", b"body", Some(&header));
        }
    }
}
