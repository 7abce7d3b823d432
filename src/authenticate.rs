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

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, Uri};
use serde::de::DeserializeOwned;

use crate::cache::{Provenance, TokenCache};
use crate::config::{Check, KeyStores, RequestConfig, SourceConfig};
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::extract::Admitted;
use crate::limits::RETRY_AFTER_CLAMP;
use crate::metrics;
use crate::refresh;
use crate::respond::Responder;
use crate::store::{KeyStore, NoKeys};
use crate::token::{TokenSource, find_token};
use crate::verify::{Checked, KeyStep, Rules, now_secs};

/// What [`Authenticator::decide`] concluded without waiting.
pub(crate) enum Decision<T> {
    /// Verified: let the request through with these claims.
    Accept(Arc<T>),
    /// No credentials behind an `optional` layer: let it through without claims.
    Anonymous,
    /// Answer with this rejection.
    Reject(AuthError),
    /// The token passed its cheap checks but needs a key set or a refresh: call
    /// [`Authenticator::after_wait`] with it.
    Wait(String),
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
        let rules = request.rules_for(source);
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
            }),
        }
    }

    /// Starts the refresh tasks that are not running (cheap when they are).
    pub(crate) fn start(&self) {
        for store in self.keys.iter() {
            refresh::ensure_started(store);
        }
    }

    /// The request path, without waiting; counted (feature `metrics`).
    pub(crate) fn decide(&self, headers: &HeaderMap, uri: &Uri) -> Decision<T> {
        let decision = self.decide_uncounted(headers, uri);
        match &decision {
            Decision::Accept(_) => metrics::request(Ok(())),
            Decision::Anonymous => metrics::anonymous(),
            Decision::Reject(e) => metrics::request(Err(e)),
            Decision::Wait(_) => {}
        }
        decision
    }

    fn decide_uncounted(&self, headers: &HeaderMap, uri: &Uri) -> Decision<T> {
        let rules = match &self.rules {
            Ok(rules) => rules,
            Err(_) => return Decision::Reject(AuthError::unavailable(RETRY_AFTER_CLAMP.1)),
        };
        let token = match find_token(&self.sources, headers, uri, rules.max_token_len) {
            Ok(Some(token)) => token,
            Ok(None) if self.optional => return Decision::Anonymous,
            Ok(None) => return Decision::Reject(AuthErrorKind::MissingCredentials.into()),
            Err(e) => return Decision::Reject(e),
        };
        match self.verify_now(rules, &token) {
            Verdict::Accept(claims) => Decision::Accept(claims),
            Verdict::Reject(e) => Decision::Reject(e),
            Verdict::Wait => Decision::Wait(token.into_owned()),
        }
    }

    /// Verifies one token: [`JwksAuth::verify`](crate::JwksAuth::verify) outside HTTP.
    pub(crate) async fn verify(self: &Arc<Self>, token: &str) -> Result<Arc<T>, AuthError> {
        let rules = self
            .rules
            .as_ref()
            .map_err(|_| AuthError::unavailable(RETRY_AFTER_CLAMP.1))?;
        let result = match self.verify_now(rules, token) {
            Verdict::Accept(claims) => Ok(claims),
            Verdict::Reject(e) => Err(e),
            Verdict::Wait => return self.clone().after_wait(token.to_owned()).await,
        };
        metrics::request(result.as_ref().map(|_| ()));
        result
    }

    fn verify_now(&self, rules: &Rules, token: &str) -> Verdict<T> {
        let now = now_secs();
        if let Some(claims) = self.cached(rules, token, now) {
            return self.checked(claims).into();
        }
        let checked = match rules.check(token, now) {
            Ok(checked) => checked,
            Err(kind) => return Verdict::Reject(kind.into()),
        };
        let Some((index, store)) = self.keys.for_issuer(checked.issuer()) else {
            return Verdict::Reject(AuthErrorKind::InvalidIssuer.into());
        };
        self.verify_with(token, checked, index, store, true, now)
    }

    /// A cache hit: the same token, still within `exp`/`nbf`, its key still in the set.
    fn cached(&self, rules: &Rules, token: &str, now: f64) -> Option<Arc<T>> {
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
        let hit = cache.get(token, now, leeway, key_present);
        if hit.is_some() {
            metrics::cache_hit();
        }
        hit
    }

    /// Steps 4 to 6 against one store. With `may_wait`, a missing key set or an unknown
    /// `kid` is `Wait` when the store can fetch; without, they are final.
    fn verify_with(
        &self,
        token: &str,
        checked: Checked<'_>,
        index: usize,
        store: &KeyStore,
        may_wait: bool,
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
        let provenance = Provenance {
            exp: checked.exp,
            nbf: checked.nbf,
            kid,
            key_id,
            store: index,
            generation,
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
    pub(crate) async fn after_wait(self: Arc<Self>, token: String) -> Result<Arc<T>, AuthError> {
        let result = self.after_wait_uncounted(token).await;
        metrics::request(result.as_ref().map(|_| ()));
        result
    }

    async fn after_wait_uncounted(self: Arc<Self>, token: String) -> Result<Arc<T>, AuthError> {
        let rules = self
            .rules
            .as_ref()
            .map_err(|_| AuthError::unavailable(RETRY_AFTER_CLAMP.1))?;
        let (index, store) = {
            let checked = rules.check(&token, now_secs())?;
            let (index, store) = self
                .keys
                .for_issuer(checked.issuer())
                .ok_or_else(|| AuthError::from(AuthErrorKind::InvalidIssuer))?;
            (index, store.clone())
        };
        refresh::ensure_started(&store);
        store.wait_for_keys().await;
        let now = now_secs();
        let checked = rules.check(&token, now)?;
        match self.verify_with(&token, checked, index, &store, false, now) {
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

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        headers
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
        let uri = Uri::from_static("/");
        // 1. credentials
        assert_eq!(
            kind(auth.decide(&HeaderMap::new(), &uri)),
            Some(AuthErrorKind::MissingCredentials)
        );
        assert_eq!(
            kind(auth.decide(&bearer("a,b"), &uri)),
            Some(AuthErrorKind::InvalidRequest)
        );
        // 3. checks that need no key come before the key lookup
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"k"}"#);
        let expired = b64_encode(br#"{"exp":1}"#);
        let token = format!("{header}.{expired}.c2ln");
        assert_eq!(
            kind(auth.decide(&bearer(&token), &uri)),
            Some(AuthErrorKind::Expired)
        );
        // 4. a static set never waits: an unknown kid is final
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"other"}"#);
        let claims = b64_encode(br#"{"exp":99999999999}"#);
        let token = format!("{header}.{claims}.c2ln");
        assert_eq!(
            kind(auth.decide(&bearer(&token), &uri)),
            Some(AuthErrorKind::UnknownKey)
        );
        // 4. the signature, with the key the kid names
        let header = b64_encode(br#"{"alg":"EdDSA","kid":"k"}"#);
        let token = format!("{header}.{claims}.{}", b64_encode(&[0u8; 64]));
        assert_eq!(
            kind(auth.decide(&bearer(&token), &uri)),
            Some(AuthErrorKind::InvalidSignature)
        );
    }

    #[test]
    fn optional_and_misconfigured_layers() {
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": X}]});
        let uri = Uri::from_static("/");
        let optional = authenticator(JwksAuth::from_jwks(jwks.clone()).optional());
        assert!(matches!(
            optional.decide(&HeaderMap::new(), &uri),
            Decision::Anonymous
        ));
        // Present but bad is still rejected behind an optional layer.
        assert_eq!(
            kind(optional.decide(&bearer("x.y.z"), &uri)),
            Some(AuthErrorKind::Malformed)
        );
        // A configuration error answers 503 to everything, credentials or not.
        let broken = authenticator(JwksAuth::from_jwks(jwks).algorithms([]));
        assert_eq!(
            kind(broken.decide(&HeaderMap::new(), &uri)),
            Some(AuthErrorKind::KeysUnavailable)
        );
    }
}
