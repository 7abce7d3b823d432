//! [`TokenBuilder`]: tokens minted by a [`TestIssuer`], with any claim or header.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{AUDIENCE, TestIssuer, TestKey};
use crate::alg::Algorithm;

enum KidChoice {
    Key,
    None,
    Custom(String),
}

/// Builds and signs a token; see [`TestIssuer::token`] and [`TenantIssuer::token`](super::TenantIssuer::token).
pub struct TokenBuilder<'a> {
    /// The issuer whose current keys sign (`None`: a tenant's, in `key`).
    issuer: Option<&'a TestIssuer>,
    alg: Algorithm,
    key: Option<Arc<TestKey>>,
    header: Map<String, Value>,
    claims: Map<String, Value>,
    kid: KidChoice,
}

impl std::fmt::Debug for TokenBuilder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBuilder")
            .field("alg", &self.alg)
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

impl<'a> TokenBuilder<'a> {
    pub(super) fn new(issuer: &'a TestIssuer) -> Self {
        Self {
            issuer: Some(issuer),
            ..Self::with_key(issuer.issuer(), None, Algorithm::RS256)
        }
    }

    /// A token of `iss` signed by `key` (or the issuer's, when `None`).
    pub(super) fn with_key(iss: &str, key: Option<Arc<TestKey>>, alg: Algorithm) -> Self {
        let now = crate::verify::now_secs() as i64;
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(iss));
        claims.insert("sub".into(), json!("user-1"));
        claims.insert("aud".into(), json!(AUDIENCE));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now + 600));
        TokenBuilder {
            issuer: None,
            alg,
            key,
            header: Map::new(),
            claims,
            kid: KidChoice::Key,
        }
    }

    /// The signing algorithm (and so the key family). Defaults to RS256.
    pub fn alg(mut self, alg: Algorithm) -> Self {
        self.alg = alg;
        self
    }

    /// Sign with this key instead of the issuer's current one.
    pub fn key(mut self, key: Arc<TestKey>) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets (or replaces) a claim.
    pub fn claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes a claim.
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// Sets a header member (`alg` and `kid` are set at signing unless given here).
    pub fn header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// `sub`.
    pub fn subject(self, sub: &str) -> Self {
        self.claim("sub", sub)
    }

    /// `aud`.
    pub fn audience(self, aud: impl Into<Value>) -> Self {
        self.claim("aud", aud)
    }

    /// `scope`, space-separated.
    pub fn scope(self, scope: &str) -> Self {
        self.claim("scope", scope)
    }

    /// `exp` this many seconds from now (negative: in the past).
    pub fn expires_in(self, secs: i64) -> Self {
        let now = crate::verify::now_secs() as i64;
        self.claim("exp", now + secs)
    }

    /// Bind the token to a DPoP key: `cnf: {"jkt": <its thumbprint>}` (RFC 9449 §6.1).
    pub fn bound_to(self, key: &super::DpopKey) -> Self {
        self.claim("cnf", serde_json::json!({"jkt": key.thumbprint()}))
    }

    /// Leave `kid` out of the header.
    pub fn no_kid(mut self) -> Self {
        self.kid = KidChoice::None;
        self
    }

    /// Put this `kid` in the header, whatever key signs.
    pub fn kid(mut self, kid: &str) -> Self {
        self.kid = KidChoice::Custom(kid.to_owned());
        self
    }

    /// The header and payload JSON texts this builder would sign.
    pub fn parts(&self) -> (String, String) {
        let key = self.signing_key();
        let mut header = Map::new();
        header.insert("alg".into(), json!(self.alg.as_str()));
        header.insert("typ".into(), json!("JWT"));
        match &self.kid {
            KidChoice::Key => {
                header.insert("kid".into(), json!(key.kid()));
            }
            KidChoice::Custom(kid) => {
                header.insert("kid".into(), json!(kid));
            }
            KidChoice::None => {}
        }
        for (k, v) in &self.header {
            header.insert(k.clone(), v.clone());
        }
        (
            Value::Object(header).to_string(),
            Value::Object(self.claims.clone()).to_string(),
        )
    }

    fn signing_key(&self) -> Arc<TestKey> {
        self.key
            .clone()
            .or_else(|| self.issuer.map(|i| i.key(self.alg)))
            .expect("a token builder has an issuer or a key")
    }

    /// Signs and returns the compact token.
    pub fn sign(self) -> String {
        let (header, payload) = self.parts();
        self.signing_key().sign_compact(self.alg, &header, &payload)
    }
}
