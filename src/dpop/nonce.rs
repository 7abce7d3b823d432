//! Server-issued DPoP nonces (RFC 9449 §8, §9), stateless.
//!
//! A nonce names a time slot and authenticates it for one service:
//! `base64url(slot as 8 bytes big-endian ‖ SHA-256(secret ‖ label ‖ scope ‖ slot)[..16])`,
//! the scope being the service's base URL, so two services sharing a secret do not
//! accept each other's nonces.
//! A nonce is accepted during its slot and the next one, so a client that fetched it just
//! before the rotation is not refused at once; then it gets `use_dpop_nonce` and the new
//! one. Every response to a DPoP request carries the current nonce, so clients rotate
//! without a failed round trip.
//!
//! Stateless, so replicas that share the secret ([`Dpop::nonce_secret`]) accept each
//! other's nonces; the default secret comes from the OS's CSPRNG, per process, and a
//! configured one must have at least [`MIN_SECRET`] bytes. The secret is never sent;
//! SHA-256 over a fixed-length message after the secret is not open to length extension.
//!
//! [`Dpop::nonce_secret`]: crate::Dpop::nonce_secret

use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::alg::{b64_decode, b64_encode};

const LABEL: &[u8] = b"jwks-auth dpop nonce v2";

/// The shortest nonce secret accepted, in bytes (256 bits).
pub(crate) const MIN_SECRET: usize = 32;

/// Issues and checks nonces.
#[derive(Clone)]
pub(crate) struct Nonces {
    secret: Vec<u8>,
    /// What the MAC binds the nonce to: the service's base URL.
    scope: Vec<u8>,
    lifetime: u64,
}

impl fmt::Debug for Nonces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

/// What a proof's nonce is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceCheck {
    /// The current slot's.
    Current,
    /// The previous slot's: accepted, and the response carries the current one.
    Previous,
    /// Missing, forged or too old: `use_dpop_nonce`.
    Refused,
}

impl Nonces {
    pub(crate) fn new(secret: Vec<u8>, scope: &str, lifetime: Duration) -> Self {
        Self {
            secret,
            scope: scope.as_bytes().to_vec(),
            lifetime: lifetime.as_secs().max(1),
        }
    }

    fn slot(&self, now: f64) -> u64 {
        (now.max(0.0) as u64) / self.lifetime
    }

    fn mac(&self, slot: u64) -> [u8; 16] {
        let digest = Sha256::new()
            .chain_update(&self.secret)
            .chain_update(LABEL)
            .chain_update((self.scope.len() as u64).to_be_bytes())
            .chain_update(&self.scope)
            .chain_update(slot.to_be_bytes())
            .finalize();
        let mut mac = [0; 16];
        mac.copy_from_slice(&digest[..16]);
        mac
    }

    /// The nonce of the slot `now` falls in.
    pub(crate) fn current(&self, now: f64) -> String {
        let slot = self.slot(now);
        let mut bytes = [0; 24];
        bytes[..8].copy_from_slice(&slot.to_be_bytes());
        bytes[8..].copy_from_slice(&self.mac(slot));
        b64_encode(&bytes)
    }

    /// Checks a proof's `nonce` claim.
    pub(crate) fn check(&self, nonce: Option<&str>, now: f64) -> NonceCheck {
        let Some(bytes) = nonce.filter(|n| n.len() == 32).and_then(b64_decode) else {
            return NonceCheck::Refused;
        };
        let Ok(slot) = <[u8; 8]>::try_from(&bytes[..8]) else {
            return NonceCheck::Refused;
        };
        let slot = u64::from_be_bytes(slot);
        // Compared in constant time: cheap, and no timing oracle on the MAC.
        let mac = self.mac(slot);
        let same = mac
            .iter()
            .zip(&bytes[8..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        let current = self.slot(now);
        match (same, current.checked_sub(slot)) {
            (true, Some(0)) => NonceCheck::Current,
            (true, Some(1)) => NonceCheck::Previous,
            _ => NonceCheck::Refused,
        }
    }
}

/// A random secret for this process from the OS's CSPRNG; `None` if the OS cannot give
/// one (the layer is then misconfigured rather than predictable).
pub(crate) fn random_secret() -> Option<Vec<u8>> {
    let mut secret = vec![0; MIN_SECRET];
    getrandom::getrandom(&mut secret).ok()?;
    Some(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_rotate_and_stay_valid_one_slot_more() {
        let n = Nonces::new(b"secret".to_vec(), "https://a", Duration::from_secs(300));
        let t = 1_700_000_100.0;
        let nonce = n.current(t);
        assert_eq!(nonce.len(), 32);
        assert_eq!(n.check(Some(&nonce), t), NonceCheck::Current);
        assert_eq!(n.check(Some(&nonce), t + 300.0), NonceCheck::Previous);
        assert_eq!(n.check(Some(&nonce), t + 600.0), NonceCheck::Refused);
        // A nonce from the future (a forged slot) is refused, as are other secrets'.
        assert_eq!(n.check(Some(&nonce), t - 300.0), NonceCheck::Refused);
        let other = Nonces::new(b"other".to_vec(), "https://a", Duration::from_secs(300));
        assert_eq!(other.check(Some(&nonce), t), NonceCheck::Refused);
        // Shared secret: another replica accepts it.
        let replica = Nonces::new(b"secret".to_vec(), "https://a", Duration::from_secs(300));
        assert_eq!(replica.check(Some(&nonce), t), NonceCheck::Current);
        for bad in [None, Some(""), Some("x"), Some(&nonce[..31])] {
            assert_eq!(n.check(bad, t), NonceCheck::Refused);
        }
        let mut flipped = nonce.clone().into_bytes();
        flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert_eq!(n.check(Some(&flipped), t), NonceCheck::Refused);
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(random_secret(), random_secret());
        assert_eq!(random_secret().unwrap().len(), MIN_SECRET);
    }

    #[test]
    fn a_nonce_is_bound_to_its_service() {
        let here = Nonces::new(b"secret".to_vec(), "https://a", Duration::from_secs(300));
        let there = Nonces::new(b"secret".to_vec(), "https://b", Duration::from_secs(300));
        let nonce = here.current(1000.0);
        assert_eq!(here.check(Some(&nonce), 1000.0), NonceCheck::Current);
        assert_eq!(there.check(Some(&nonce), 1000.0), NonceCheck::Refused);
    }
}
