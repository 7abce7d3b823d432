//! A DPoP proof (RFC 9449 §4.2, §4.3) checked against one request, without I/O.
//!
//! Cheapest first, with the access token's strictness:
//!
//! 1. at most [`MAX_PROOF_LEN`] bytes; three strict base64url segments;
//! 2. header: a JSON object without duplicate members; `typ` `dpop+jwt` (compared as
//!    media types, like an access token's `typ`); `alg` in the
//!    proof allow-list (asymmetric only: `none` and HS* are not [`Algorithm`]s); no `crit`,
//!    no `enc`/`zip`; `jwk` a public key (no private members, full-length EC
//!    coordinates) that fits `alg`;
//! 3. claims: a JSON object without duplicate members; `jti` a string of 1 to
//!    [`MAX_JTI_LEN`] bytes; `htm` the request method; `htu` the request URL (see
//!    [`htu`](super::htu)); `iat` a NumericDate within the window either way; `ath` the
//!    base64url SHA-256 of the access token;
//! 4. the server nonce, when required, and the key's cost: an RSA key of at most 4096
//!    bits with the exponent 65537;
//!
//! all without verifying anything: [`read`] returns a [`Read`] proof, whose key's RFC 7638
//! thumbprint the layer compares with the token's `cnf.jkt` before either signature is
//! checked. Then
//!
//! 5. the signature, with the header's key ([`Read::verify`]), only once the token has
//!    passed its own key-free checks and its binding: someone without a token cannot
//!    make the layer verify a proof signature, let alone with a key of their choosing.
//!
//! The verified [`Proof`] holds the thumbprint and the proof's replay key.

use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::htu;
use super::nonce::{NonceCheck, Nonces};
use super::replay::ReplayKey;
use crate::alg::{AlgSet, Algorithm, Compact, b64_decode, b64_encode};
use crate::error::AuthErrorKind;
use crate::json::{parse_claims, parse_header};
use crate::keys::{PRIVATE_MEMBERS, parse_jwk};
use crate::limits::{MAX_JTI_LEN, MAX_PROOF_LEN};
use crate::verify::typ_matches;

/// What a proof is checked against.
pub(crate) struct ProofRequest<'a> {
    /// The request method, as sent (`GET`).
    pub(crate) method: &'a str,
    /// The URL the client sent the request to, normalised ([`htu::normalize`]).
    pub(crate) url: &'a str,
    /// The access token, as sent.
    pub(crate) token: &'a str,
    /// Seconds since the Unix epoch.
    pub(crate) now: f64,
}

/// The layer's proof rules.
pub(crate) struct ProofRules<'a> {
    pub(crate) algorithms: AlgSet,
    /// Seconds `iat` may be off, either way.
    pub(crate) window: f64,
    pub(crate) nonces: Option<&'a Nonces>,
}

/// A proof that passed.
#[derive(Debug)]
pub(crate) struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of its key, base64url.
    pub(crate) jkt: String,
    /// Its identity in the replay store.
    pub(crate) replay_key: ReplayKey,
    /// Seconds from now until its `iat` leaves the window, and one more (how long to
    /// remember it: `iat` is whole seconds, and the margin covers the instant at the
    /// window's edge where the proof is still acceptable).
    pub(crate) remember_for: f64,
}

const INVALID: AuthErrorKind = AuthErrorKind::InvalidDpopProof;

/// The base64url SHA-256 of `token`: a proof's `ath`.
pub(crate) fn token_hash(token: &str) -> String {
    b64_encode(&Sha256::digest(token.as_bytes()))
}

/// A proof whose every key-free check passed, its signature not verified yet.
pub(crate) struct Read<'a> {
    proof: Proof,
    alg: Algorithm,
    jwk: Value,
    /// The signing input, borrowed from the request's `DPoP` header.
    input: &'a [u8],
    signature: Vec<u8>,
}

impl Read<'_> {
    /// The RFC 7638 thumbprint of the proof's key (what a bound token's `cnf.jkt` must be).
    pub(crate) fn jkt(&self) -> &str {
        &self.proof.jkt
    }

    /// Verifies the signature with the proof's own key.
    pub(crate) fn verify(self) -> Result<Proof, AuthErrorKind> {
        let key = parse_jwk(&self.jwk).map_err(|_| INVALID)?;
        if !key.verify(self.alg, self.input, &self.signature) {
            return Err(INVALID);
        }
        Ok(self.proof)
    }
}

impl fmt::Debug for Read<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Read")
            .field("jkt", &self.proof.jkt)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Reads `proof` and checks it against the request, everything but its signature (see
/// the module docs).
pub(crate) fn read<'a>(
    proof: &'a str,
    rules: &ProofRules<'_>,
    req: &ProofRequest<'_>,
) -> Result<Read<'a>, AuthErrorKind> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(INVALID);
    }
    let jws = Compact::split(proof).ok_or(INVALID)?;
    let header = b64_decode(jws.header).ok_or(INVALID)?;
    let header = parse_header(&header).map_err(|_| INVALID)?;
    if header.crit || header.jwe {
        return Err(INVALID);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|typ| typ_matches(typ, "dpop+jwt"))
    {
        return Err(INVALID);
    }
    let alg = header
        .alg
        .as_deref()
        .and_then(Algorithm::from_name)
        .filter(|a| rules.algorithms.contains(*a))
        .ok_or(INVALID)?;
    let jwk = header.jwk.ok_or(INVALID)?;
    let jkt = jwk.as_object().and_then(thumbprint).ok_or(INVALID)?;

    let claims = b64_decode(jws.payload).ok_or(INVALID)?;
    let claims = parse_claims(&claims).map_err(|_| INVALID)?;
    let string = |name: &str| claims.get(name).and_then(Value::as_str);
    let jti = string("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or(INVALID)?;
    if string("htm") != Some(req.method) {
        return Err(INVALID);
    }
    let htu = string("htu").and_then(htu::normalize).ok_or(INVALID)?;
    if htu != req.url {
        return Err(INVALID);
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_f64)
        .filter(|iat| iat.is_finite())
        .ok_or(INVALID)?;
    if (iat - req.now).abs() > rules.window {
        return Err(INVALID);
    }
    if string("ath") != Some(token_hash(req.token).as_str()) {
        return Err(INVALID);
    }
    let signature = b64_decode(jws.signature)
        .filter(|s| !s.is_empty())
        .ok_or(INVALID)?;
    if !cheap_to_verify(&jwk) {
        return Err(INVALID);
    }
    // The previous slot's nonce is still good; the response carries the current one.
    if rules
        .nonces
        .is_some_and(|n| n.check(string("nonce"), req.now) == NonceCheck::Refused)
    {
        return Err(AuthErrorKind::UseDpopNonce);
    }
    Ok(Read {
        proof: Proof {
            replay_key: ReplayKey::new(jti, &jkt),
            jkt,
            remember_for: (iat + rules.window - req.now + 1.0).max(1.0),
        },
        alg,
        jwk,
        input: &proof.as_bytes()[..jws.signing_len()],
        signature,
    })
}

/// The largest RSA modulus a proof key may have, in bytes (4096 bits).
const MAX_PROOF_RSA_BYTES: usize = 512;

/// Whether a proof's key is cheap enough to verify with, before anyone is authenticated:
/// an RSA key has at most a 4096-bit modulus and the exponent 65537 (a key set may hold
/// up to 8192 bits and 33-bit exponents, but a proof key is the client's choice, and an
/// 8192-bit key with a huge exponent costs ten ES256 checks). Other key types have fixed
/// costs.
fn cheap_to_verify(jwk: &Value) -> bool {
    if jwk.get("kty").and_then(Value::as_str) != Some("RSA") {
        return true;
    }
    let modulus = jwk
        .get("n")
        .and_then(Value::as_str)
        .and_then(b64_decode)
        .map(|n| n.len() - n.iter().take_while(|b| **b == 0).count());
    modulus.is_some_and(|len| len <= MAX_PROOF_RSA_BYTES)
        && jwk.get("e").and_then(Value::as_str) == Some("AQAB")
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK, base64url; `None` for a key this
/// check does not take: private members, a symmetric or unknown `kty`, members of the
/// wrong type or encoding, EC coordinates not of the curve's full length.
pub(crate) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return None;
    }
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    // Base64url members: strict encoding, so the canonical form is the one given.
    let b64 = |name: &str| member(name).filter(|v| b64_decode(v).is_some());
    // EC coordinates: strict, and of the curve's full length.
    let coordinate = |name: &str, size: usize| {
        member(name).filter(|v| b64_decode(v).is_some_and(|b| b.len() == size))
    };
    // The required members in lexicographic order, no whitespace (RFC 7638 §3.2). Every
    // value is base64url or a fixed name: no JSON escaping is needed.
    let canonical = match member("kty")? {
        "EC" => {
            let crv = member("crv")?;
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                "P-521" => 66,
                _ => return None,
            };
            let (x, y) = (coordinate("x", size)?, coordinate("y", size)?);
            format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64("e")?, b64("n")?),
        "OKP" => {
            let crv = member("crv").filter(|c| *c == "Ed25519")?;
            format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{}"}}"#, b64("x")?)
        }
        _ => return None,
    };
    Some(b64_encode(&Sha256::digest(canonical.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc_7638_example_thumbprint() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn keys_a_proof_cannot_carry() {
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let ok = json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        assert!(thumbprint(ok.as_object().unwrap()).is_some());
        for bad in [
            json!({"kty": "OKP", "crv": "Ed25519", "x": x, "d": x}),
            json!({"kty": "oct", "k": x}),
            json!({"kty": "OKP", "crv": "Ed448", "x": x}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{x}=")}),
            json!({"kty": "OKP", "crv": "Ed25519", "x": 5}),
            json!({"kty": "OKP", "crv": "Ed25519"}),
            json!({"kty": "EC", "crv": "P-256", "x": x, "y": &x[1..]}),
            json!({"kty": "XYZ"}),
            json!({}),
        ] {
            assert_eq!(thumbprint(bad.as_object().unwrap()), None, "{bad}");
        }
    }

    #[test]
    fn proof_keys_are_cheap_to_verify() {
        let rsa = |n: Vec<u8>, e: &str| json!({"kty": "RSA", "n": b64_encode(&n), "e": e});
        assert!(cheap_to_verify(&rsa(vec![0xc5; 512], "AQAB")), "4096 bits");
        assert!(cheap_to_verify(&rsa(
            [vec![0; 3], vec![0xc5; 512]].concat(),
            "AQAB"
        )));
        assert!(!cheap_to_verify(&rsa(vec![0xc5; 513], "AQAB")), "4104 bits");
        assert!(
            !cheap_to_verify(&rsa(vec![0xc5; 1024], "AQAB")),
            "8192 bits"
        );
        assert!(
            !cheap_to_verify(&rsa(vec![0xc5; 256], "_____w")),
            "e = 2^32 - 1"
        );
        assert!(!cheap_to_verify(&rsa(vec![0xc5; 256], "Aw")), "e = 3");
        assert!(cheap_to_verify(&json!({"kty": "EC", "crv": "P-256"})));
    }

    #[test]
    fn dpop_typ_spellings() {
        let is_dpop = |typ| typ_matches(typ, "dpop+jwt");
        assert!(is_dpop("dpop+jwt"));
        assert!(is_dpop("DPoP+JWT"));
        assert!(is_dpop("application/dpop+jwt"));
        assert!(!is_dpop("JWT"));
        assert!(!is_dpop("at+jwt"));
        assert!(!is_dpop("dpop+jwt "));
    }
}
