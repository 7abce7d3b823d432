//! [`DpopKey`]: a client's DPoP key, and the proofs it signs ([`ProofBuilder`]).

use serde_json::{Map, Value, json};

use super::key::TestKey;
use crate::alg::{Algorithm, b64_encode as b64};

/// A DPoP client's key pair: tokens are bound to it
/// ([`TokenBuilder::bound_to`](super::TokenBuilder::bound_to)) and it signs proofs.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use jwks_auth::{testing::{DpopKey, TestIssuer}, Algorithm};
///
/// let issuer = TestIssuer::start().await;
/// let client = DpopKey::generate(Algorithm::ES256);
/// let token = issuer.token().bound_to(&client).sign();
/// let proof = client.proof("GET", "https://api.example.com/me", &token);
/// // Authorization: DPoP {token}
/// // DPoP: {proof}
/// # let _ = proof;
/// # }
/// ```
#[derive(Debug)]
pub struct DpopKey {
    key: TestKey,
    alg: Algorithm,
}

impl DpopKey {
    /// Generates a key for `alg` (see [`TestKey::generate`]).
    ///
    /// # Panics
    ///
    /// If key generation fails.
    pub fn generate(alg: Algorithm) -> Self {
        Self {
            key: TestKey::generate(alg, "dpop"),
            alg,
        }
    }

    /// The algorithm its proofs are signed with.
    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// The public key as it goes in a proof's `jwk` header: the key's members only.
    pub fn jwk(&self) -> Value {
        let mut jwk = self.key.jwk();
        if let Some(obj) = jwk.as_object_mut() {
            obj.retain(|name, _| matches!(name.as_str(), "kty" | "crv" | "x" | "y" | "n" | "e"));
        }
        jwk
    }

    /// Its RFC 7638 SHA-256 thumbprint: a bound token's `cnf.jkt`.
    ///
    /// # Panics
    ///
    /// Never for a generated key.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        crate::dpop::proof::thumbprint(jwk.as_object().expect("a JWK is an object"))
            .expect("a generated key has a thumbprint")
    }

    /// Signs raw header and claims JSON texts, byte for byte (duplicate members, odd
    /// numbers): for proofs no builder would write.
    pub fn sign_compact(&self, header_json: &str, claims_json: &str) -> String {
        self.key.sign_compact(self.alg, header_json, claims_json)
    }

    /// A fresh proof (new `jti`, `iat` now) for `method` on `url` with `access_token`.
    pub fn proof(&self, method: &str, url: &str, access_token: &str) -> String {
        self.proof_for(method, url)
            .access_token(access_token)
            .sign()
    }

    /// A proof to adjust before signing: `ath`, `nonce`, `iat`, `jti`, any member.
    pub fn proof_for(&self, method: &str, url: &str) -> ProofBuilder<'_> {
        let mut header = Map::new();
        header.insert("typ".into(), json!("dpop+jwt"));
        header.insert("alg".into(), json!(self.alg.as_str()));
        header.insert("jwk".into(), self.jwk());
        let mut claims = Map::new();
        claims.insert("jti".into(), json!(random_jti()));
        claims.insert("htm".into(), json!(method));
        claims.insert("htu".into(), json!(url));
        claims.insert("iat".into(), json!(crate::verify::now_secs() as i64));
        ProofBuilder {
            key: self,
            header,
            claims,
        }
    }
}

/// A DPoP proof being built ([`DpopKey::proof_for`]).
#[derive(Debug)]
pub struct ProofBuilder<'a> {
    key: &'a DpopKey,
    header: Map<String, Value>,
    claims: Map<String, Value>,
}

impl ProofBuilder<'_> {
    /// Sets `ath`, the hash of the access token the proof goes with.
    pub fn access_token(self, token: &str) -> Self {
        let ath = crate::dpop::proof::token_hash(token);
        self.claim("ath", ath)
    }

    /// Sets the server's `nonce`.
    pub fn nonce(self, nonce: &str) -> Self {
        self.claim("nonce", nonce)
    }

    /// Sets `iat` to now plus `secs` (negative: in the past).
    pub fn issued_in(self, secs: i64) -> Self {
        let now = crate::verify::now_secs() as i64;
        self.claim("iat", now + secs)
    }

    /// Sets a claim (any JSON value).
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header member (any JSON value).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a header member.
    pub fn without_header(mut self, name: &str) -> Self {
        self.header.remove(name);
        self
    }

    /// The header and claims JSON texts it would sign.
    pub fn parts(&self) -> (String, String) {
        (
            Value::Object(self.header.clone()).to_string(),
            Value::Object(self.claims.clone()).to_string(),
        )
    }

    /// Signs and returns the compact proof.
    pub fn sign(self) -> String {
        let (header, claims) = self.parts();
        self.key.key.sign_compact(self.key.alg, &header, &claims)
    }
}

fn random_jti() -> String {
    use aws_lc_rs::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random generator");
    b64(&bytes)
}
