//! Algorithms, key families and strict base64url: the leaf module every other one builds on.
//!
//! [`Algorithm`] is the crate's own type: it names only the asymmetric JWS algorithms a
//! key set can verify, so `none` and HS* cannot even be written down in a configuration.
//! An [`AlgSet`] is a bit set indexed by the enum itself, so "supported" (the variants)
//! and "allowed by default" ([`DEFAULT_ALGORITHMS`]) are independent lists.
//!
//! This module imports nothing from the rest of the crate.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// An asymmetric JWS algorithm (RFC 7518 §3) that a token may be signed with.
///
/// Symmetric algorithms (HS*) and `none` are not variants: they are never accepted with a
/// public key set, so they cannot be configured by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA with P-256 and SHA-256.
    ES256,
    /// ECDSA with P-384 and SHA-384.
    ES384,
    /// ECDSA with P-521 and SHA-512 (the `aws_lc_rs` backend only: with `rust_crypto`,
    /// P-521 keys are skipped).
    ES512,
    /// EdDSA with an Ed25519 key (the only EdDSA curve this crate accepts).
    EdDSA,
    /// Ed25519, the fully-specified name of RFC 9864 (which deprecates the polymorphic
    /// `EdDSA`): the same signatures as [`EdDSA`](Self::EdDSA) with an Ed25519 key, and
    /// interchangeable with it between a JWK's `alg` and a token's. Never Ed448.
    Ed25519,
}

/// Algorithms a token may be signed with, by default: every one this crate can verify,
/// in a fixed order: RS256/384/512, PS256/384/512, ES256, ES384, ES512, EdDSA and
/// Ed25519.
pub const DEFAULT_ALGORITHMS: [Algorithm; 11] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::ES512,
    Algorithm::EdDSA,
    Algorithm::Ed25519,
];

impl Algorithm {
    /// The JOSE name (`"RS256"`, `"EdDSA"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// The algorithm with this JOSE name; `None` for `none`, HS* and anything unknown.
    pub fn from_name(name: &str) -> Option<Self> {
        DEFAULT_ALGORITHMS.into_iter().find(|a| a.as_str() == name)
    }

    /// The kind of key that can verify this algorithm.
    pub(crate) fn family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::P256,
            Self::ES384 => KeyFamily::P384,
            Self::ES512 => KeyFamily::P521,
            Self::EdDSA | Self::Ed25519 => KeyFamily::Ed25519,
        }
    }

    /// The algorithm that verifies the same signatures: `Ed25519` is `EdDSA` here (the
    /// only EdDSA curve accepted), every other algorithm is itself.
    pub(crate) fn canonical(self) -> Self {
        match self {
            Self::Ed25519 => Self::EdDSA,
            other => other,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of public key, which decides the algorithms it can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    P521,
    Ed25519,
}

impl KeyFamily {
    pub(crate) fn fits(self, alg: Algorithm) -> bool {
        alg.family() == self
    }

    /// The algorithms of this family, in [`DEFAULT_ALGORITHMS`] order.
    pub(crate) fn algorithms(self) -> impl Iterator<Item = Algorithm> {
        DEFAULT_ALGORITHMS
            .into_iter()
            .filter(move |a| self.fits(*a))
    }
}

/// A small set of algorithms.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct AlgSet(u16);

impl AlgSet {
    fn bit(alg: Algorithm) -> u16 {
        1 << (alg as u16)
    }

    pub(crate) fn from_algs(algs: impl IntoIterator<Item = Algorithm>) -> Self {
        Self(algs.into_iter().fold(0, |acc, a| acc | Self::bit(a)))
    }

    pub(crate) fn contains(self, alg: Algorithm) -> bool {
        self.0 & Self::bit(alg) != 0
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub(crate) fn iter(self) -> impl Iterator<Item = Algorithm> {
        DEFAULT_ALGORITHMS
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl fmt::Debug for AlgSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Strict base64url: URL-safe alphabet, no padding, no whitespace, canonical trailing bits.
pub(crate) fn b64_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// A compact JWS (`header.payload.signature`), split; the parts are still base64url.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Compact<'a> {
    pub(crate) header: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
}

impl<'a> Compact<'a> {
    /// Exactly three dot-separated parts, or `None`.
    pub(crate) fn split(jws: &'a str) -> Option<Self> {
        let mut parts = jws.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(signature), None) => Some(Self {
                header,
                payload,
                signature,
            }),
            _ => None,
        }
    }

    /// The length of the signing input, `header.payload`, at the start of the JWS.
    pub(crate) fn signing_len(&self) -> usize {
        self.header.len() + 1 + self.payload.len()
    }
}

/// Base64url without padding.
pub(crate) fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hs_does_not_exist() {
        for alg in DEFAULT_ALGORITHMS {
            assert_eq!(Algorithm::from_name(alg.as_str()), Some(alg));
        }
        for name in [
            "none", "HS256", "HS384", "HS512", "RSA1_5", "rs256", "", "Ed448", "ES256K",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn sets_follow_the_enum_not_the_default_list() {
        let set = AlgSet::from_algs([Algorithm::EdDSA, Algorithm::RS256]);
        assert!(set.contains(Algorithm::EdDSA) && set.contains(Algorithm::RS256));
        assert!(!set.contains(Algorithm::ES256));
        assert_eq!(set.iter().count(), 2);
        assert!(AlgSet::from_algs([]).is_empty());
        assert_eq!(KeyFamily::Rsa.algorithms().count(), 6);
        assert_eq!(
            KeyFamily::P384.algorithms().collect::<Vec<_>>(),
            [Algorithm::ES384]
        );
        assert_eq!(
            KeyFamily::Ed25519.algorithms().collect::<Vec<_>>(),
            [Algorithm::EdDSA, Algorithm::Ed25519]
        );
        assert_eq!(Algorithm::Ed25519.canonical(), Algorithm::EdDSA);
        assert_eq!(Algorithm::ES512.canonical(), Algorithm::ES512);
    }

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64_decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(b64_decode(&b64_encode(b"\xff\xfe")), Some(vec![0xff, 0xfe]));
        for bad in ["AQAB=", "AQ+B", "AQ/B", "AQ B", "AR"] {
            assert_eq!(b64_decode(bad), None, "{bad}");
        }
    }
}
