//! The key set snapshot: a JWKS turned, once per fetch, into prebuilt keys indexed by `kid`.
//!
//! Each JWK is parsed on its own. A key that is malformed, unsupported or unfit for
//! signature verification is skipped with a [`SkipReason`] and never poisons the rest of
//! the set. What is skipped:
//!
//! - `kty: "oct"`: symmetric keys are never accepted from a key set;
//! - a key carrying private members (`d`, and for RSA `p`, `q`, `dp`, `dq`, `qi`, `oth`),
//!   whatever its `kty`: a published private key means anyone can sign;
//! - `use` other than `"sig"`, `key_ops` without `"verify"`;
//! - an `alg` that is `none`, HS*, unknown, or does not fit the key type;
//! - RSA moduli under 2048 or over 8192 bits, even or tiny public exponents;
//! - EC curves other than P-256, P-384 and P-521 (P-521 only with the `aws_lc_rs`
//!   backend), OKP curves other than Ed25519 (Ed448 included);
//! - coordinates longer than the curve size, or that are not strict base64url (shorter
//!   ones, as some exporters write them without leading zero bytes, are left-padded);
//! - keys past the [`MAX_KEYS`](crate::limits::MAX_KEYS) cap.
//!
//! A document that is not `{"keys":[…]}`, or in which no key is usable, is an error: the
//! caller keeps its previous snapshot.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::alg::{Algorithm, KeyFamily, b64_decode};
use crate::crypto::KeyVerifier;
use crate::error::{RefreshError, RefreshErrorKind};
use crate::limits::{MAX_KEYS, MAX_KID_LEN, MAX_KIDLESS_CANDIDATES};

/// One usable verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<Arc<str>>,
    pub(crate) family: KeyFamily,
    pub(crate) alg: Option<Algorithm>,
    pub(crate) verifier: KeyVerifier,
    /// A fingerprint of the key material, the same across fetches of the same key.
    pub(crate) id: u64,
    /// The key's own `issuer` member (Entra's shared key sets: whose tokens it signs).
    pub(crate) issuer: Option<Arc<str>>,
}

impl Key {
    /// Whether the key may verify `alg`: its family fits, and its own `alg`, if any, is
    /// the same algorithm (`EdDSA` and `Ed25519` being one).
    pub(crate) fn fits(&self, alg: Algorithm) -> bool {
        self.family.fits(alg) && self.alg.is_none_or(|a| a.canonical() == alg.canonical())
    }

    /// Checks `signature` over `message`; `alg` must be one the key [`fits`](Self::fits).
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        self.fits(alg) && self.verifier.verify(alg, message, signature)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("family", &self.family)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A key of a fetched set that was not used, and why. Listed in
/// [`Status::skipped`](crate::Status::skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SkippedKey {
    /// Position of the key in the document's `keys` array.
    pub index: usize,
    /// The key's `kid`, if it had a printable one (truncated to 64 characters).
    pub kid: Option<String>,
    /// Why it was skipped.
    pub reason: SkipReason,
}

/// Why a key of a key set was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// The entry is not a JSON object.
    NotAnObject,
    /// A member has the wrong JSON type.
    WrongType,
    /// No `kty`.
    NoKty,
    /// A `kty` other than `RSA`, `EC` and `OKP`.
    UnsupportedKty,
    /// A symmetric (`oct`) key: never accepted from a key set.
    Symmetric,
    /// The key carries private key members (`d`, `p`, `q`, …).
    PrivateKey,
    /// `use` is not `sig`.
    NotForSignatures,
    /// `key_ops` is not an array, or does not include `verify`.
    NotForVerification,
    /// `alg` is `none`, symmetric or unsupported.
    UnsupportedAlgorithm,
    /// `alg` does not fit the key type.
    AlgorithmMismatch,
    /// `kid` is longer than [`MAX_KID_LEN`](crate::limits::MAX_KID_LEN).
    KidTooLong,
    /// A required key member is missing.
    MissingMember,
    /// A key member is not strict base64url.
    BadEncoding,
    /// The RSA modulus is shorter than 2048 bits.
    RsaTooShort,
    /// The RSA modulus is longer than 8192 bits.
    RsaTooLong,
    /// The RSA public exponent is even, 1, or longer than 33 bits.
    RsaExponent,
    /// An EC curve other than P-256, P-384 and P-521 (P-521 needs the `aws_lc_rs`
    /// backend).
    UnsupportedCurve,
    /// An OKP curve other than Ed25519 (Ed448, X25519, X448).
    UnsupportedOkpCurve,
    /// A coordinate or key of the wrong length.
    WrongLength,
    /// The crypto backend rejected the public key (a point off the curve, …).
    Rejected,
    /// Past the [`MAX_KEYS`](crate::limits::MAX_KEYS) cap of one document.
    TooManyKeys,
}

impl SkipReason {
    /// A short, fixed description.
    pub fn description(self) -> &'static str {
        match self {
            Self::NotAnObject => "not a JSON object",
            Self::WrongType => "a member has the wrong JSON type",
            Self::NoKty => "no kty",
            Self::UnsupportedKty => "unsupported kty",
            Self::Symmetric => "symmetric (oct) keys are never accepted from a key set",
            Self::PrivateKey => "private key material in a public key set",
            Self::NotForSignatures => "use is not sig",
            Self::NotForVerification => "key_ops does not include verify",
            Self::UnsupportedAlgorithm => "alg is none, symmetric or unsupported",
            Self::AlgorithmMismatch => "alg does not fit the key type",
            Self::KidTooLong => "kid is too long",
            Self::MissingMember => "a required key member is missing",
            Self::BadEncoding => "a key member is not strict base64url",
            Self::RsaTooShort => "RSA modulus is shorter than 2048 bits",
            Self::RsaTooLong => "RSA modulus is longer than 8192 bits",
            Self::RsaExponent => "RSA public exponent is unsupported",
            Self::UnsupportedCurve => {
                "unsupported EC curve (P-256, P-384, and P-521 with the aws_lc_rs backend)"
            }
            Self::UnsupportedOkpCurve => "unsupported OKP curve (only Ed25519; Ed448 is not)",
            Self::WrongLength => "a coordinate or key has the wrong length",
            Self::Rejected => "the crypto backend rejected the public key",
            Self::TooManyKeys => "too many keys in the set",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// What key selection found for a token.
pub(crate) enum Lookup<'a> {
    /// Keys to try, in order (one for a `kid`, a few for a token without one).
    Found(Vec<&'a Key>),
    /// No key has this `kid`: a refresh may help.
    UnknownKid,
    /// Keys exist but none fits the algorithm (or too many fit a kid-less token).
    Mismatch,
}

/// An immutable, prebuilt key set.
#[derive(Debug, Default)]
pub(crate) struct KeySet {
    by_kid: HashMap<Arc<str>, Vec<Key>>,
    without_kid: Vec<Key>,
    skipped: Vec<SkippedKey>,
    /// Unique per built set (0 only for the empty default): a cache entry verified by
    /// this very set needs no key lookup to know its key is still here.
    generation: u64,
}

/// The source of [`KeySet::generation`]s.
static GENERATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl KeySet {
    /// Builds a set from a JWKS document. Fails when the document is not a key set or
    /// when no key in it is usable.
    pub(crate) fn from_json(body: &[u8]) -> Result<Self, RefreshError> {
        let doc: Value = serde_json::from_slice(body)
            .map_err(|e| RefreshError::with_source(RefreshErrorKind::InvalidJwks, e))?;
        let set = Self::from_document(&doc)
            .ok_or_else(|| RefreshError::new(RefreshErrorKind::InvalidJwks))?;
        if set.is_empty() {
            return Err(RefreshError::new(RefreshErrorKind::NoUsableKeys));
        }
        Ok(set)
    }

    /// Builds a set from a parsed JWKS document; `None` if it is not `{"keys":[…]}`.
    pub(crate) fn from_document(doc: &Value) -> Option<Self> {
        let keys = doc.as_object()?.get("keys")?.as_array()?;
        Some(Self::from_values(keys))
    }

    pub(crate) fn from_values(keys: &[Value]) -> Self {
        let mut set = Self {
            generation: GENERATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Self::default()
        };
        for (index, value) in keys.iter().enumerate() {
            let skip = |reason| SkippedKey {
                index,
                kid: printable_kid(value),
                reason,
            };
            if index >= MAX_KEYS {
                set.skipped.push(skip(SkipReason::TooManyKeys));
                continue;
            }
            match parse_jwk(value) {
                Ok(key) => set.insert(key),
                Err(reason) => {
                    tracing::warn!(index, kid = ?printable_kid(value), %reason, "jwks-auth: skipping JWK");
                    set.skipped.push(skip(reason));
                }
            }
        }
        set
    }

    fn insert(&mut self, key: Key) {
        match key.kid.clone() {
            Some(kid) => self.by_kid.entry(kid).or_default().push(key),
            None => self.without_kid.push(key),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_kid.is_empty() && self.without_kid.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.by_kid.values().map(Vec::len).sum::<usize>() + self.without_kid.len()
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        let mut kids: Vec<String> = self.by_kid.keys().map(|k| k.to_string()).collect();
        kids.sort();
        kids
    }

    pub(crate) fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    #[cfg(test)]
    pub(crate) fn key_ids(&self) -> Vec<(Option<Arc<str>>, u64)> {
        self.by_kid
            .values()
            .flatten()
            .chain(&self.without_kid)
            .map(|k| (k.kid.clone(), k.id))
            .collect()
    }

    /// Whether the key `id` is still in the set under `kid`.
    pub(crate) fn contains(&self, kid: Option<&str>, id: u64) -> bool {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .is_some_and(|keys| keys.iter().any(|k| k.id == id)),
            None => self.without_kid.iter().any(|k| k.id == id),
        }
    }

    /// Selects the keys that may verify a token with this `kid` and algorithm.
    ///
    /// A `kid` that names only keys of the wrong type is a mismatch: there is no
    /// fallback to other keys.
    pub(crate) fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup<'_> {
        match kid {
            Some(kid) => match self.by_kid.get(kid) {
                None => Lookup::UnknownKid,
                Some(keys) => {
                    let fit: Vec<&Key> = keys.iter().filter(|k| k.fits(alg)).collect();
                    if fit.is_empty() {
                        Lookup::Mismatch
                    } else {
                        Lookup::Found(fit)
                    }
                }
            },
            None => {
                let fit: Vec<&Key> = self
                    .without_kid
                    .iter()
                    .chain(self.by_kid.values().flatten())
                    .filter(|k| k.fits(alg))
                    .take(MAX_KIDLESS_CANDIDATES + 1)
                    .collect();
                if fit.is_empty() || fit.len() > MAX_KIDLESS_CANDIDATES {
                    Lookup::Mismatch
                } else {
                    Lookup::Found(fit)
                }
            }
        }
    }
}

fn printable_kid(value: &Value) -> Option<String> {
    printable(value.get("kid")?)
}

/// A string value without control characters, at most 64 characters.
fn printable(kid: &Value) -> Option<String> {
    let kid = kid.as_str()?;
    Some(
        kid.chars()
            .filter(|c| !c.is_control())
            .take(64)
            .collect::<String>(),
    )
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, SkipReason> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SkipReason::WrongType),
    }
}

/// Members that only a private key has (RFC 7518 §6.2.2, §6.3.2; RFC 8037 §2).
pub(crate) const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

pub(crate) fn parse_jwk(value: &Value) -> Result<Key, SkipReason> {
    let obj = value.as_object().ok_or(SkipReason::NotAnObject)?;
    let kty = str_member(obj, "kty")?.ok_or(SkipReason::NoKty)?;
    if kty == "oct" {
        return Err(SkipReason::Symmetric);
    }
    if PRIVATE_MEMBERS.iter().any(|m| obj.contains_key(*m)) {
        return Err(SkipReason::PrivateKey);
    }
    match str_member(obj, "use")? {
        None | Some("sig") => {}
        Some(_) => return Err(SkipReason::NotForSignatures),
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array().ok_or(SkipReason::NotForVerification)?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(SkipReason::NotForVerification);
        }
    }
    let alg = match str_member(obj, "alg")? {
        None => None,
        // RFC 9864's fully-specified Ed448: the curve is what is unsupported.
        Some("Ed448") => return Err(SkipReason::UnsupportedOkpCurve),
        Some(name) => Some(Algorithm::from_name(name).ok_or(SkipReason::UnsupportedAlgorithm)?),
    };
    let kid = match str_member(obj, "kid")? {
        None => None,
        Some(kid) if kid.len() > MAX_KID_LEN => return Err(SkipReason::KidTooLong),
        Some(kid) => Some(Arc::<str>::from(kid)),
    };
    let (family, verifier) = match kty {
        "RSA" => rsa_key(obj, alg)?,
        "EC" => ec_key(obj)?,
        "OKP" => okp_key(obj)?,
        _ => return Err(SkipReason::UnsupportedKty),
    };
    if alg.is_some_and(|a| !family.fits(a)) {
        return Err(SkipReason::AlgorithmMismatch);
    }
    Ok(Key {
        kid,
        family,
        alg,
        verifier,
        id: fingerprint(obj),
        issuer: obj.get("issuer").and_then(Value::as_str).map(Arc::from),
    })
}

/// Hashes the members that define the public key (strict base64url, so canonical).
fn fingerprint(obj: &Map<String, Value>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    for name in ["kty", "crv", "n", "e", "x", "y", "alg"] {
        obj.get(name).and_then(Value::as_str).hash(&mut h);
    }
    h.finish()
}

fn required_b64(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, SkipReason> {
    let s = str_member(obj, name)?.ok_or(SkipReason::MissingMember)?;
    b64_decode(s).ok_or(SkipReason::BadEncoding)
}

fn rsa_key(
    obj: &Map<String, Value>,
    alg: Option<Algorithm>,
) -> Result<(KeyFamily, KeyVerifier), SkipReason> {
    let n = required_b64(obj, "n")?;
    let e = required_b64(obj, "e")?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    // `n` has no leading zero byte, so its first byte has at most 7 leading zero bits;
    // an empty (or all-zero) modulus has no bits at all.
    let bits = n
        .first()
        .map_or(0, |b| n.len() * 8 - b.leading_zeros() as usize);
    if bits < 2048 {
        return Err(SkipReason::RsaTooShort);
    }
    if bits > 8192 {
        return Err(SkipReason::RsaTooLong);
    }
    // e: odd, at least 3, at most 33 bits (what verifiers accept).
    if e.is_empty() || e.len() > 5 || e.last().is_some_and(|b| b % 2 == 0) || e == [1] {
        return Err(SkipReason::RsaExponent);
    }
    let algs: Vec<Algorithm> = match alg {
        Some(alg) if KeyFamily::Rsa.fits(alg) => vec![alg],
        Some(_) => return Err(SkipReason::AlgorithmMismatch),
        None => KeyFamily::Rsa.algorithms().collect(),
    };
    let verifier = KeyVerifier::rsa(n, e, &algs).ok_or(SkipReason::Rejected)?;
    Ok((KeyFamily::Rsa, verifier))
}

fn ec_key(obj: &Map<String, Value>) -> Result<(KeyFamily, KeyVerifier), SkipReason> {
    let (family, len, alg) = match str_member(obj, "crv")? {
        Some("P-256") => (KeyFamily::P256, 32, Algorithm::ES256),
        Some("P-384") => (KeyFamily::P384, 48, Algorithm::ES384),
        Some("P-521") if crate::crypto::SUPPORTS_P521 => (KeyFamily::P521, 66, Algorithm::ES512),
        _ => return Err(SkipReason::UnsupportedCurve),
    };
    let x = required_b64(obj, "x")?;
    let y = required_b64(obj, "y")?;
    if x.len() > len || y.len() > len || x.is_empty() || y.is_empty() {
        return Err(SkipReason::WrongLength);
    }
    // RFC 7518 §6.2.1.2 wants full-length coordinates, but some exporters (authlib,
    // Keycloak before its fix) drop leading zero bytes: about 1 key in 100. Left-pad;
    // the backend still checks that the point is on the curve.
    if x.len() < len || y.len() < len {
        let kid = obj.get("kid").and_then(printable);
        tracing::debug!(kid = ?kid, "jwks-auth: EC coordinate shorter than the curve size, left-padded");
    }
    let mut point = Vec::with_capacity(1 + 2 * len);
    point.push(4);
    point.resize(1 + len - x.len(), 0);
    point.extend_from_slice(&x);
    point.resize(1 + 2 * len - y.len(), 0);
    point.extend_from_slice(&y);
    let verifier = KeyVerifier::ec(&point, alg).ok_or(SkipReason::Rejected)?;
    Ok((family, verifier))
}

fn okp_key(obj: &Map<String, Value>) -> Result<(KeyFamily, KeyVerifier), SkipReason> {
    if str_member(obj, "crv")? != Some("Ed25519") {
        return Err(SkipReason::UnsupportedOkpCurve);
    }
    let x = required_b64(obj, "x")?;
    if x.len() != 32 {
        return Err(SkipReason::WrongLength);
    }
    let verifier = KeyVerifier::ed25519(&x).ok_or(SkipReason::Rejected)?;
    Ok((KeyFamily::Ed25519, verifier))
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(bits: usize) -> Value {
        let mut n = vec![0xC5u8; bits / 8];
        n[0] = 0xC5;
        json!({"kty":"RSA","kid":format!("rsa{bits}"),"n":b64(&n),"e":"AQAB"})
    }

    #[test]
    fn bad_keys_are_skipped_not_fatal() {
        let ec_x = b64(&[1u8; 32]);
        let keys = vec![
            rsa_jwk(2048),
            rsa_jwk(1024),
            json!({"kty":"oct","k":"c2VjcmV0","kid":"hmac"}),
            json!({"kty":"RSA","kid":"enc","use":"enc","n":rsa_jwk(2048)["n"],"e":"AQAB"}),
            json!({"kty":"RSA","kid":"ops","key_ops":["encrypt"],"n":rsa_jwk(2048)["n"],"e":"AQAB"}),
            json!({"kty":"RSA","kid":"none","alg":"none","n":rsa_jwk(2048)["n"],"e":"AQAB"}),
            json!({"kty":"RSA","kid":"hs","alg":"HS256","n":rsa_jwk(2048)["n"],"e":"AQAB"}),
            json!({"kty":"RSA","kid":"esalg","alg":"ES256","n":rsa_jwk(2048)["n"],"e":"AQAB"}),
            json!({"kty":"EC","kid":"p521","crv":"P-521","x":ec_x,"y":ec_x}),
            json!({"kty":"EC","kid":"short","crv":"P-256","x":b64(&[1u8; 31]),"y":ec_x}),
            // RFC 7515 A.3's P-256 key, and a point that is not on the curve.
            json!({"kty":"EC","kid":"p256","crv":"P-256",
                   "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                   "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}),
            json!({"kty":"EC","kid":"offcurve","crv":"P-256","x":ec_x,"y":ec_x}),
            json!({"kty":"OKP","kid":"x25519","crv":"X25519","x":ec_x}),
            json!({"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}),
            json!({"kty":"RSA","kid":"pad","n":format!("{}=", rsa_jwk(2048)["n"].as_str().unwrap()),"e":"AQAB"}),
            json!("not an object"),
            json!({"kty":"RSA","kid":7,"n":"AQAB","e":"AQAB"}),
        ];
        let set = KeySet::from_values(&keys);
        assert_eq!(set.kids(), vec!["ed", "p256", "rsa2048"]);
        assert_eq!(set.skipped().len(), keys.len() - 3);
        assert!(
            set.skipped()
                .iter()
                .any(|s| s.kid.as_deref() == Some("hmac") && s.reason == SkipReason::Symmetric)
        );
        assert!(
            set.skipped()
                .iter()
                .any(|s| s.kid.as_deref() == Some("offcurve") && s.reason == SkipReason::Rejected)
        );
    }

    #[test]
    fn selection_by_kid_never_falls_back() {
        let set = KeySet::from_values(&[rsa_jwk(2048)]);
        assert!(
            matches!(set.lookup(Some("rsa2048"), Algorithm::RS256), Lookup::Found(k) if k.len() == 1)
        );
        assert!(matches!(
            set.lookup(Some("rsa2048"), Algorithm::ES256),
            Lookup::Mismatch
        ));
        assert!(matches!(
            set.lookup(Some("other"), Algorithm::RS256),
            Lookup::UnknownKid
        ));
        assert!(matches!(
            set.lookup(None, Algorithm::PS256),
            Lookup::Found(_)
        ));
        assert!(matches!(
            set.lookup(None, Algorithm::EdDSA),
            Lookup::Mismatch
        ));
    }

    #[test]
    fn kidless_selection_is_bounded() {
        let keys: Vec<Value> = (0..=MAX_KIDLESS_CANDIDATES)
            .map(|i| {
                let mut k = rsa_jwk(2048);
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        let set = KeySet::from_values(&keys);
        assert!(matches!(
            set.lookup(None, Algorithm::RS256),
            Lookup::Mismatch
        ));
        let set = KeySet::from_values(&keys[..MAX_KIDLESS_CANDIDATES]);
        assert!(
            matches!(set.lookup(None, Algorithm::RS256), Lookup::Found(k) if k.len() == MAX_KIDLESS_CANDIDATES)
        );
    }

    #[test]
    fn documents_that_are_not_key_sets() {
        for body in [
            &b"{}"[..],
            b"[]",
            b"{\"keys\":{}}",
            b"not json",
            b"{\"keys\":[]}",
        ] {
            assert!(
                KeySet::from_json(body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
        let only_bad = br#"{"keys":[{"kty":"oct","k":"AA"}]}"#;
        assert_eq!(
            KeySet::from_json(only_bad).unwrap_err().kind(),
            &RefreshErrorKind::NoUsableKeys
        );
    }

    #[test]
    fn key_count_is_capped() {
        let keys: Vec<Value> = (0..MAX_KEYS + 5)
            .map(|i| {
                let mut k = rsa_jwk(2048);
                k["kid"] = json!(format!("k{i}"));
                k
            })
            .collect();
        let set = KeySet::from_values(&keys);
        assert_eq!(set.len(), MAX_KEYS);
        assert_eq!(set.skipped().len(), 5);
    }

    #[test]
    fn an_empty_or_zero_modulus_is_skipped() {
        // Found by `every_jwk_is_used_or_skipped`: the bit count underflowed.
        for n in ["", "AA", "AAAA"] {
            let set = KeySet::from_values(&[json!({"kty":"RSA","n":n,"e":"AQAB"})]);
            assert!(set.is_empty());
            assert_eq!(set.skipped()[0].reason, SkipReason::RsaTooShort);
        }
    }

    /// Property tests: any document or JWK gives a key set or an error, never a panic,
    /// and every key is either usable or listed as skipped.
    mod properties {
        use super::*;
        use proptest::prelude::*;
        use proptest::sample::select;

        fn b64_bytes(max: usize) -> impl Strategy<Value = Value> {
            prop::collection::vec(any::<u8>(), 0..max).prop_map(|b| Value::from(b64(&b)))
        }

        fn anything() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<i64>().prop_map(Value::from),
                ".{0,10}".prop_map(Value::from),
                Just(json!([])),
                Just(json!({})),
            ]
        }

        /// A JWK-shaped object: real RSA material some of the time, random members the rest.
        fn jwk() -> impl Strategy<Value = Value> {
            let kty = select(vec!["RSA", "EC", "OKP", "oct", "rsa", ""]).prop_map(Value::from);
            let crv = select(vec![
                "P-256",
                "P-384",
                "P-521",
                "Ed25519",
                "X25519",
                "secp256k1",
            ])
            .prop_map(Value::from);
            let alg = select(vec![
                "RS256", "PS512", "ES256", "ES384", "EdDSA", "HS256", "none", "RSA-OAEP",
            ])
            .prop_map(Value::from);
            let use_ = select(vec!["sig", "enc", "SIG"]).prop_map(Value::from);
            let ops = prop::collection::vec(select(vec!["verify", "sign", "encrypt"]), 0..3)
                .prop_map(|v| json!(v));
            let n = prop_oneof![
                Just(rsa_jwk(2048)["n"].clone()),
                b64_bytes(4),
                b64_bytes(600),
                anything()
            ];
            let e = prop_oneof![
                Just(json!("AQAB")),
                Just(json!("Aw")),
                Just(json!("AA")),
                b64_bytes(9),
                anything()
            ];
            let point = prop_oneof![b64_bytes(70), anything()];
            let kid = prop_oneof!["\\PC{0,20}".prop_map(Value::from), anything()];
            (
                kty,
                prop::option::of(crv),
                prop::option::of(alg),
                prop::option::of(use_),
                prop::option::of(ops),
                (prop::option::of(n), prop::option::of(e)),
                (prop::option::of(point.clone()), prop::option::of(point)),
                prop::option::of(kid),
            )
                .prop_map(|(kty, crv, alg, use_, ops, (n, e), (x, y), kid)| {
                    let mut jwk = serde_json::Map::new();
                    jwk.insert("kty".into(), kty);
                    for (name, value) in [
                        ("crv", crv),
                        ("alg", alg),
                        ("use", use_),
                        ("key_ops", ops),
                        ("n", n),
                        ("e", e),
                        ("x", x),
                        ("y", y),
                        ("kid", kid),
                    ] {
                        if let Some(value) = value {
                            jwk.insert(name.into(), value);
                        }
                    }
                    Value::Object(jwk)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_bytes_give_a_set_or_an_error(body in prop::collection::vec(any::<u8>(), 0..512)) {
                let _ = KeySet::from_json(&body);
            }

            #[test]
            fn every_jwk_is_used_or_skipped(keys in prop::collection::vec(prop_oneof![jwk(), anything()], 0..12)) {
                let set = KeySet::from_values(&keys);
                prop_assert_eq!(set.len() + set.skipped().len(), keys.len());
                for skipped in set.skipped() {
                    prop_assert!(skipped.kid.as_ref().is_none_or(|k| k.len() <= 64 && !k.chars().any(char::is_control)));
                }
                let doc = json!({ "keys": keys }).to_string();
                prop_assert_eq!(KeySet::from_json(doc.as_bytes()).is_ok(), !set.is_empty());
            }
        }
    }
}
