//! The request-time decision, top to bottom: credentials → cache → verification → check →
//! verdict.
//!
//! [`Authenticator`] is built once per layer configuration, on first use, and shared by
//! every service the layer makes. Its [`decide`](Authenticator::decide) is synchronous:
//! no lock (but the cache's shard, when enabled), no await. Only a token that needs the
//! first key set or a forced refresh gets [`Decision::Wait`], and then
//! [`after_wait`](Authenticator::after_wait) waits (bounded) and decides once more.
//!
//! 1. credentials from the configured token sources ([`token`](crate::token)): none is
//!    401, or anonymous behind an `optional` layer; a malformed one is 400;
//! 2. the verified-token cache, when enabled: an exact hit whose `exp`/`nbf` still hold
//!    and whose key is still in the current key set;
//! 3. everything that needs no key ([`Rules::check`]): size, shape, header, claims;
//! 4. the key store of the token's issuer, key selection and the signature;
//! 5. the claims deserialized into `T`, remembered in the cache;
//! 6. the user's check, on fresh and cached claims alike.
//!
//! With DPoP ([`Dpop`](crate::Dpop)), a token sent as `Authorization: DPoP` takes its own
//! path: its proof is checked first (no key set, no I/O), then the token as above (the
//! token may come from the cache; the proof never does) bound to the proof's key, then
//! the proof is recorded in the replay store, which may be remote: that last step is
//! always [`Decision::Wait`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderValue, Request};
use serde::de::DeserializeOwned;

use crate::cache::{Provenance, TokenCache};
use crate::config::{Check, KeyStores, RequestConfig, SourceConfig};
use crate::dpop::DpopCheck;
use crate::dpop::proof::Proof;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::extract::Admitted;
use crate::limits::RETRY_AFTER_CLAMP;
use crate::metrics;
use crate::refresh;
use crate::respond::Responder;
use crate::store::{KeyStore, NoKeys};
use crate::token::{TokenSource, dpop_token, find_token};
use crate::verify::{Checked, KeyStep, Rules, Scheme, now_secs};

/// What an accepted request gets: its claims, and a `DPoP-Nonce` for the response.
pub(crate) type Admission<T> = (Arc<T>, Option<HeaderValue>);

/// The rest of a decision that must wait (for keys, or for the replay store).
pub(crate) type Pending<T> = Pin<Box<dyn Future<Output = Result<Admission<T>, AuthError>> + Send>>;

/// What [`Authenticator::decide`] concluded without waiting.
pub(crate) enum Decision<T> {
    /// Verified: let the request through with these claims.
    Accept(Arc<T>),
    /// No credentials behind an `optional` layer: let it through without claims.
    Anonymous,
    /// Answer with this rejection.
    Reject(AuthError),
    /// The token passed its cheap checks but needs a key set or a refresh, or its DPoP
    /// proof must be recorded: await this.
    Wait(Pending<T>),
}

/// The same, for one token (no credentials step).
enum Verdict<T> {
    Accept(Arc<T>),
    Reject(AuthError),
    Wait,
}

/// The runtime state of one layer configuration.
pub(crate) struct Authenticator<T> {
    /// `Err` when the configuration makes verification impossible: every request gets 503.
    rules: Result<Rules, ConfigError>,
    keys: Arc<KeyStores>,
    cache: Option<TokenCache<T>>,
    check: Option<Check<T>>,
    sources: Vec<TokenSource>,
    optional: bool,
    dpop: Option<DpopCheck>,
    responder: Arc<Responder>,
}

impl<T> fmt::Debug for Authenticator<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("rules", &self.rules)
            .field("keys", &self.keys)
            .field("cache", &self.cache)
            .field("check", &self.check.is_some())
            .field("sources", &self.sources)
            .field("optional", &self.optional)
            .field("dpop", &self.dpop)
            .field("responder", &self.responder)
            .finish()
    }
}

impl<T> Authenticator<T>
where
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(crate) fn new(
        request: &RequestConfig<T>,
        source: &SourceConfig,
        keys: Arc<KeyStores>,
    ) -> Self {
        let dpop = request.dpop.as_ref().map(DpopCheck::build).transpose();
        let (rules, dpop) = match (request.rules_for(source), dpop) {
            (Ok(rules), Ok(dpop)) => (Ok(rules), dpop),
            (Err(e), _) | (_, Err(e)) => (Err(e), None),
        };
        if let Err(e) = &rules {
            tracing::error!(error = %e, "jwks-auth: the layer is misconfigured; every request will get 503");
        }
        Self {
            rules,
            keys,
            cache: (request.cache > 0).then(|| TokenCache::new(request.cache)),
            check: request.check.clone(),
            sources: request.sources.clone(),
            optional: request.optional,
            responder: Arc::new(Responder {
                realm: request.realm.clone(),
                hook: request.on_rejection.clone(),
                claims_type: std::any::type_name::<T>(),
                dpop: dpop.as_ref().map(|d| d.challenge.clone()),
            }),
            dpop,
        }
    }

    /// Starts the refresh tasks that are not running (cheap when they are).
    pub(crate) fn start(&self) {
        for store in self.keys.iter() {
            refresh::ensure_started(store);
        }
    }

    /// The request path, without waiting; counted (feature `metrics`).
    pub(crate) fn decide<B>(self: &Arc<Self>, req: &Request<B>) -> Decision<T> {
        let decision = self.decide_uncounted(req);
        match &decision {
            Decision::Accept(_) => metrics::request(Ok(())),
            Decision::Anonymous => metrics::anonymous(),
            Decision::Reject(e) => metrics::request(Err(e)),
            Decision::Wait(_) => {}
        }
        decision
    }

    fn decide_uncounted<B>(self: &Arc<Self>, req: &Request<B>) -> Decision<T> {
        let rules = match &self.rules {
            Ok(rules) => rules,
            Err(_) => return Decision::Reject(AuthError::unavailable(RETRY_AFTER_CLAMP.1)),
        };
        let (headers, uri) = (req.headers(), req.uri());
        if let Some(dpop) = &self.dpop {
            let now = now_secs();
            let token = match dpop_token(headers, rules.max_token_len) {
                Ok(token) => token,
                Err(e) => return Decision::Reject(dpop.flag(e, now)),
            };
            if let Some(token) = token {
                // Another source carrying another token: two credentials.
                return match find_token(&self.sources, headers, uri, rules.max_token_len) {
                    Ok(Some(other)) if other != token => {
                        Decision::Reject(dpop.flag(AuthErrorKind::InvalidRequest.into(), now))
                    }
                    Err(e) => Decision::Reject(dpop.flag(e, now)),
                    Ok(_) => self.decide_dpop(dpop, rules, req, token, now),
                };
            }
            if headers.contains_key("dpop") {
                // A proof without the DPoP scheme: the client is confused, say so.
                return Decision::Reject(dpop.flag(AuthErrorKind::InvalidRequest.into(), now));
            }
        }
        let token = match find_token(&self.sources, headers, uri, rules.max_token_len) {
            Ok(Some(token)) => token,
            Ok(None) if self.optional => return Decision::Anonymous,
            Ok(None) => return Decision::Reject(AuthErrorKind::MissingCredentials.into()),
            Err(e) => return Decision::Reject(e),
        };
        if self.dpop.as_ref().is_some_and(|d| d.required) {
            return Decision::Reject(AuthErrorKind::DpopRequired.into());
        }
        match self.verify_now(rules, &token, None) {
            Verdict::Accept(claims) => Decision::Accept(claims),
            Verdict::Reject(e) => Decision::Reject(e),
            Verdict::Wait => {
                let (this, token) = (self.clone(), token.into_owned());
                Decision::Wait(Box::pin(async move {
                    this.after_wait(token, None)
                        .await
                        .map(|claims| (claims, None))
                }))
            }
        }
    }

    /// A token sent with the DPoP scheme: the proof, the token bound to its key, then
    /// the replay store.
    fn decide_dpop<B>(
        self: &Arc<Self>,
        dpop: &DpopCheck,
        rules: &Rules,
        req: &Request<B>,
        token: &str,
        now: f64,
    ) -> Decision<T> {
        // The URL as the client sent it, before any `nest` stripped a prefix.
        let uri = req
            .extensions()
            .get::<axum::extract::OriginalUri>()
            .map_or(req.uri(), |o| &o.0);
        let proof = match dpop.check_proof(req.method(), uri, req.headers(), token, now) {
            Ok(proof) => proof,
            Err(e) => return Decision::Reject(e),
        };
        let verdict = self.verify_now(rules, token, Some(&proof.jkt));
        if let Verdict::Reject(e) = verdict {
            return Decision::Reject(dpop.flag(e, now));
        }
        let this = self.clone();
        let token = token.to_owned();
        Decision::Wait(Box::pin(async move {
            let result = this.dpop_rest(verdict, token, proof).await;
            metrics::request(result.as_ref().map(|_| ()));
            result
        }))
    }

    async fn dpop_rest(
        self: Arc<Self>,
        verdict: Verdict<T>,
        token: String,
        proof: Proof,
    ) -> Result<Admission<T>, AuthError> {
        let Some(dpop) = &self.dpop else {
            return Err(AuthErrorKind::InvalidDpopProof.into());
        };
        let claims = match verdict {
            Verdict::Accept(claims) => Ok(claims),
            Verdict::Reject(e) => Err(e),
            Verdict::Wait => self.after_wait_uncounted(token, Some(&proof.jkt)).await,
        };
        let now = now_secs();
        let claims = claims.map_err(|e| dpop.flag(e, now))?;
        dpop.remember(&proof, now).await?;
        Ok((claims, dpop.nonce(now)))
    }

    /// Verifies one token: [`JwksAuth::verify`](crate::JwksAuth::verify) outside HTTP.
    pub(crate) async fn verify(self: &Arc<Self>, token: &str) -> Result<Arc<T>, AuthError> {
        let rules = self
            .rules
            .as_ref()
            .map_err(|_| AuthError::unavailable(RETRY_AFTER_CLAMP.1))?;
        let result = match self.verify_now(rules, token, None) {
            Verdict::Accept(claims) => Ok(claims),
            Verdict::Reject(e) => Err(e),
            Verdict::Wait => return self.clone().after_wait(token.to_owned(), None).await,
        };
        metrics::request(result.as_ref().map(|_| ()));
        result
    }

    /// `jkt`: the thumbprint of the DPoP proof's key, for a token sent with the DPoP
    /// scheme (which must be bound to it); `None` for a bearer token (which must not be
    /// bound).
    fn verify_now(&self, rules: &Rules, token: &str, jkt: Option<&str>) -> Verdict<T> {
        let now = now_secs();
        if let Some(claims) = self.cached(rules, token, jkt, now) {
            return self.checked(claims).into();
        }
        let scheme = if jkt.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        };
        let checked = match rules.check(token, scheme, now) {
            Ok(checked) => checked,
            Err(kind) => return Verdict::Reject(kind.into()),
        };
        let Some((index, store)) = self.keys.for_issuer(checked.issuer()) else {
            return Verdict::Reject(AuthErrorKind::InvalidIssuer.into());
        };
        self.verify_with(token, checked, index, store, true, jkt, now)
    }

    /// A cache hit: the same token with the same binding, still within `exp`/`nbf`, its
    /// key still in the set.
    fn cached(&self, rules: &Rules, token: &str, jkt: Option<&str>, now: f64) -> Option<Arc<T>> {
        let cache = self.cache.as_ref()?;
        let leeway = rules.leeway.as_secs_f64();
        // The set that verified the token, or one that still has its key (a key id
        // lookup only after a refresh replaced the set).
        let key_present = |p: &Provenance| {
            let store = self.keys.get(p.store)?;
            store
                .with_keys(|keys| {
                    let present = keys.generation() == p.generation
                        || keys.contains(p.kid.as_deref(), p.key_id);
                    present.then(|| keys.generation())
                })
                .ok()
                .flatten()
        };
        let hit = cache.get(token, jkt, now, leeway, key_present);
        if hit.is_some() {
            metrics::cache_hit();
        }
        hit
    }

    /// Steps 4 to 6 against one store. With `may_wait`, a missing key set or an unknown
    /// `kid` is `Wait` when the store can fetch; without, they are final. A DPoP token
    /// must be bound to `jkt`, the proof's key.
    #[allow(clippy::too_many_arguments)]
    fn verify_with(
        &self,
        token: &str,
        checked: Checked<'_>,
        index: usize,
        store: &KeyStore,
        may_wait: bool,
        jkt: Option<&str>,
        now: f64,
    ) -> Verdict<T> {
        let may_wait = may_wait && store.remote().is_some();
        let found = store.with_keys(|keys| {
            checked
                .verify_signature(keys)
                .map(|key| (key.kid.clone(), key.id, keys.generation()))
        });
        let (kid, key_id, generation) = match found {
            Ok(Ok(key)) => key,
            Ok(Err(KeyStep::Reject(kind))) => return Verdict::Reject(kind.into()),
            Ok(Err(KeyStep::UnknownKid)) if may_wait => return Verdict::Wait,
            Ok(Err(KeyStep::UnknownKid)) => {
                return Verdict::Reject(AuthErrorKind::UnknownKey.into());
            }
            Err(NoKeys::NotYet) if may_wait => return Verdict::Wait,
            Err(NoKeys::NotYet | NoKeys::Unavailable) => {
                return Verdict::Reject(store.unavailable());
            }
        };
        if checked.jkt.as_deref() != jkt {
            return Verdict::Reject(AuthErrorKind::DpopKeyMismatch.into());
        }
        let provenance = Provenance {
            exp: checked.exp,
            nbf: checked.nbf,
            kid,
            key_id,
            store: index,
            generation,
            jkt: checked.jkt.clone(),
        };
        let claims = match checked.into_claims::<T>() {
            Ok(claims) => claims,
            Err(kind) => return Verdict::Reject(kind.into()),
        };
        let claims = Arc::new(claims);
        if let Some(cache) = &self.cache {
            cache.insert(token, claims.clone(), provenance, now);
        }
        self.checked(claims).into()
    }

    /// The slow path: wait for keys as the refresh gate allows, then verify once more
    /// (counted, feature `metrics`).
    pub(crate) async fn after_wait(
        self: Arc<Self>,
        token: String,
        jkt: Option<&str>,
    ) -> Result<Arc<T>, AuthError> {
        let result = self.after_wait_uncounted(token, jkt).await;
        metrics::request(result.as_ref().map(|_| ()));
        result
    }

    async fn after_wait_uncounted(
        self: &Arc<Self>,
        token: String,
        jkt: Option<&str>,
    ) -> Result<Arc<T>, AuthError> {
        let scheme = if jkt.is_some() {
            Scheme::Dpop
        } else {
            Scheme::Bearer
        };
        let rules = self
            .rules
            .as_ref()
            .map_err(|_| AuthError::unavailable(RETRY_AFTER_CLAMP.1))?;
        let (index, store) = {
            let checked = rules.check(&token, scheme, now_secs())?;
            let (index, store) = self
                .keys
                .for_issuer(checked.issuer())
                .ok_or_else(|| AuthError::from(AuthErrorKind::InvalidIssuer))?;
            (index, store.clone())
        };
        refresh::ensure_started(&store);
        store.wait_for_keys().await;
        let now = now_secs();
        let checked = rules.check(&token, scheme, now)?;
        match self.verify_with(&token, checked, index, &store, false, jkt, now) {
            Verdict::Accept(claims) => Ok(claims),
            Verdict::Reject(e) => Err(e),
            // Not returned without `may_wait`; fail closed all the same.
            Verdict::Wait => Err(AuthErrorKind::UnknownKey.into()),
        }
    }

    /// Runs the user's check, if any, on verified claims.
    fn checked(&self, claims: Arc<T>) -> Result<Arc<T>, AuthError> {
        match &self.check {
            Some(check) => check(&claims).map(|()| claims),
            None => Ok(claims),
        }
    }

    /// Puts the claims (shared, not copied) and the layer's responder in an accepted
    /// request: one extension.
    pub(crate) fn admit<B>(&self, req: &mut http::Request<B>, claims: Option<Arc<T>>) {
        req.extensions_mut().insert(Admitted {
            responder: self.responder.clone(),
            claims: claims.map(|c| c as Arc<dyn std::any::Any + Send + Sync>),
        });
    }

    /// Entries and bytes the verified-token cache holds now (zeros when it is off).
    pub(crate) fn cache_usage(&self) -> (usize, usize) {
        self.cache.as_ref().map_or((0, 0), TokenCache::usage)
    }

    /// The layer's renderer.
    pub(crate) fn responder(&self) -> &Arc<Responder> {
        &self.responder
    }

    /// The response to a rejection (a gRPC status for a gRPC call).
    pub(crate) fn respond(&self, error: AuthError, grpc: bool) -> axum::response::Response {
        self.responder.respond(error, grpc)
    }
}

impl<T> From<Result<Arc<T>, AuthError>> for Verdict<T> {
    fn from(result: Result<Arc<T>, AuthError>) -> Self {
        match result {
            Ok(v) => Verdict::Accept(v),
            Err(e) => Verdict::Reject(e),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The decision without HTTP: a static key set, real keys, real signatures.
    use super::*;
    use crate::StandardClaims;
    use crate::alg::b64_encode;
    use crate::layer::JwksAuth;
    use http::header::AUTHORIZATION;

    const X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn authenticator(auth: JwksAuth) -> Arc<Authenticator<StandardClaims>> {
        let keys = Arc::new(auth.source.build());
        Arc::new(Authenticator::new(&auth.request, &auth.source, keys))
    }

    fn bearer(token: &str) -> Request<()> {
        let mut req = Request::new(());
        req.headers_mut()
            .insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        req
    }

    fn anonymous() -> Request<()> {
        Request::new(())
    }

    fn kind<T>(decision: Decision<T>) -> Option<AuthErrorKind> {
        match decision {
            Decision::Reject(e) => Some(e.kind()),
            _ => None,
        }
    }

    #[test]
    fn the_decision_steps_in_order() {
        let auth = authenticator(JwksAuth::from_jwks(serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": X}
        ]})));
        // 1. credentials
        assert_eq!(
            kind(auth.decide(&anonymous())),
            Some(AuthErrorKind::MissingCredentials)
        );
        assert_eq!(
            kind(auth.decide(&bearer("a,b"))),
            Some(AuthErrorKind::InvalidRequest)
        );
        // 3. checks that need no key come before the key lookup
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"k"}"#);
        let expired = b64_encode(br#"{"exp":1}"#);
        let token = format!("{header}.{expired}.c2ln");
        assert_eq!(
            kind(auth.decide(&bearer(&token))),
            Some(AuthErrorKind::Expired)
        );
        // 4. a static set never waits: an unknown kid is final
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"other"}"#);
        let claims = b64_encode(br#"{"exp":99999999999}"#);
        let token = format!("{header}.{claims}.c2ln");
        assert_eq!(
            kind(auth.decide(&bearer(&token))),
            Some(AuthErrorKind::UnknownKey)
        );
        // 4. the signature, with the key the kid names
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"k"}"#);
        let token = format!("{header}.{claims}.{}", b64_encode(&[0u8; 64]));
        assert_eq!(
            kind(auth.decide(&bearer(&token))),
            Some(AuthErrorKind::InvalidSignature)
        );
    }

    #[test]
    fn optional_and_misconfigured_layers() {
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X}]});
        let optional = authenticator(JwksAuth::from_jwks(jwks.clone()).optional());
        assert!(matches!(optional.decide(&anonymous()), Decision::Anonymous));
        // Present but bad is still rejected behind an optional layer.
        assert_eq!(
            kind(optional.decide(&bearer("x.y.z"))),
            Some(AuthErrorKind::Malformed)
        );
        // A configuration error answers 503 to everything, credentials or not.
        let broken = authenticator(JwksAuth::from_jwks(jwks).algorithms([]));
        assert_eq!(
            kind(broken.decide(&anonymous())),
            Some(AuthErrorKind::KeysUnavailable)
        );
    }
}
