//! The request-time pipeline, in one pass, top to bottom.
//!
//! [`Authenticator`] is built once per layer configuration, on first use, and shared by
//! every service the layer makes. [`authenticate`](Authenticator::authenticate) runs the
//! steps in order and stops at the first that decides; every step works on what the
//! previous ones computed, and nothing is done twice:
//!
//! 1. **credentials** ([`token`](crate::token)): none is 401, or anonymous behind an
//!    `optional` layer; a malformed one is 400; with DPoP on, `Authorization: DPoP`
//!    first;
//! 2. **the DPoP proof read**, for a token sent with the DPoP scheme: every check but
//!    its signature, with no key set and no I/O ([`DpopCheck::read_proof`]);
//! 3. **the verified-token cache**: an exact hit with the same binding, within
//!    `exp`/`nbf`, whose key is still in its key set;
//! 4. **the token, parsed once** ([`Rules::check`]): size, shape, header, claims, and the
//!    binding the scheme asks for (the proof key's thumbprint). Everything that needs no
//!    key;
//! 5. **the key store** of the token's issuer: key selection and the signature. A key
//!    set that is not there yet, or an unknown `kid`, makes the request wait for the
//!    fetch or forced refresh the store allows; the wait then continues with the parsed
//!    token (its `exp`/`nbf` checked again), never parsing it again;
//! 6. **the proof's signature**, once the token is known good (on a cache hit, after
//!    the hit; before a wait, so that only well-proved requests wait): someone without
//!    a valid token never makes the layer verify a proof;
//! 7. **the claims** deserialized into `T` and remembered in the cache;
//! 8. **the user's check**, on fresh and cached claims alike;
//! 9. **the replay record** of the DPoP proof, last: only a proof that got everything
//!    else right is spent; a store that answers at once needs no wait.
//!
//! The result is a [`Step`]: admit, reject, or wait (boxed, only when something must
//! really be waited for). The service counts and renders it once, at the boundary.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderValue, Request};
use serde::de::DeserializeOwned;

use crate::cache::{Provenance, TokenCache};
use crate::config::{Check, RequestConfig, Validated};
use crate::dpop::proof::{Proof, Read};
use crate::dpop::{DpopCheck, Record};
use crate::error::{AuthError, AuthErrorKind};
use crate::introspect::{AnswerCache, Introspector};
use crate::key_stores::{ForIssuer, KeyStores};
use crate::metrics;
use crate::respond::Responder;
use crate::store::{KeyStore, NoKeys};
use crate::tenants;
use crate::token::{Credentials, TokenSource, find_credentials};
use crate::verify::{KeyStep, Rules, Scheme, Unverified, now_secs};

/// What a request must wait for, and then its claims.
pub(crate) type Pending<T> = Pin<Box<dyn Future<Output = Result<Arc<T>, AuthError>> + Send>>;

/// Where one request's authentication stands.
pub(crate) enum Step<T> {
    /// Let it through with these claims (`None`: anonymous, behind an `optional` layer).
    Admit(Option<Arc<T>>),
    /// Answer with this rejection.
    Reject(AuthError),
    /// Wait for the first key set, a forced refresh or a remote replay store, then admit
    /// or reject.
    Wait(Pending<T>),
}

impl<T> Step<T> {
    /// The claims it comes to, waiting if it must (outside the service: a wait, `verify`).
    async fn finish(self) -> Result<Arc<T>, AuthError> {
        match self {
            Step::Admit(Some(claims)) => Ok(claims),
            Step::Admit(None) => Err(AuthErrorKind::MissingCredentials.into()),
            Step::Reject(e) => Err(e),
            Step::Wait(wait) => wait.await,
        }
    }
}

impl<T> From<Result<Arc<T>, AuthError>> for Step<T> {
    fn from(result: Result<Arc<T>, AuthError>) -> Self {
        match result {
            Ok(claims) => Step::Admit(Some(claims)),
            Err(e) => Step::Reject(e),
        }
    }
}

/// The key that verified a token's signature, as the cache remembers it.
struct KeyRef {
    /// The key store (issuer) it is in.
    store: usize,
    kid: Option<Arc<str>>,
    id: u64,
    /// The key's own `issuer` member.
    issuer: Option<Arc<str>>,
    /// The key set generation it was seen in.
    generation: u64,
}

/// The outcome of key resolution for one parsed token.
enum Keys<'s> {
    /// The key that verified the signature.
    Verified(KeyRef),
    /// No key set yet, or an unknown `kid`: this store can fetch, so waiting may help.
    Wait(&'s Arc<KeyStore>),
}

/// The runtime state of one layer configuration.
pub(crate) struct Authenticator<T> {
    rules: Rules,
    /// Introspection of opaque tokens, and its cache of answers.
    introspect: Option<(Introspector, AnswerCache<T>)>,
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
            .field("introspect", &self.introspect.as_ref().map(|(i, _)| i))
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
    /// The runtime state of a validated configuration.
    pub(crate) fn new(request: &RequestConfig<T>, valid: Validated, keys: Arc<KeyStores>) -> Self {
        Self {
            rules: valid.rules,
            introspect: valid.introspect.map(|i| (i, AnswerCache::new())),
            keys,
            cache: (request.cache > 0).then(|| TokenCache::new(request.cache)),
            check: request.check.clone(),
            sources: request.sources.clone(),
            optional: request.optional,
            responder: Arc::new(Responder {
                realm: request.realm.clone(),
                hook: request.on_rejection.clone(),
                claims_type: std::any::type_name::<T>(),
                dpop: valid.dpop.as_ref().map(|d| d.challenge.clone()),
                resource: valid.resource,
                scopes: request.scopes.clone(),
            }),
            dpop: valid.dpop,
        }
    }

    /// Starts the refresh tasks that are not running (cheap when they are).
    pub(crate) fn start(&self) {
        self.keys.ensure_running();
    }

    /// The pipeline for one request (see the module docs). Returns the scheme the
    /// request used, which decides how a rejection is told.
    pub(crate) fn authenticate<B>(self: &Arc<Self>, req: &Request<B>) -> (Scheme, Step<T>) {
        let (headers, uri) = (req.headers(), req.uri());
        // 1. credentials
        let dpop_on = self.dpop.is_some();
        let max = self.rules.max_token_len;
        let Credentials { scheme, token } = match find_credentials(
            &self.sources,
            dpop_on,
            headers,
            uri,
            max,
        ) {
            Ok(Some(credentials)) => credentials,
            Ok(None) if self.optional => return (Scheme::Bearer, Step::Admit(None)),
            Ok(None) => {
                if !dpop_on
                    && find_credentials(&[], true, headers, uri, max).is_ok_and(|c| c.is_some())
                {
                    // RFC 9449 §7.2: a resource server without DPoP answers the DPoP
                    // scheme as no credentials, with its Bearer challenge.
                    tracing::debug!(
                        "jwks-auth: Authorization: DPoP on a layer without DPoP; answered as no credentials"
                    );
                }
                let missing = AuthErrorKind::MissingCredentials.into();
                return (Scheme::Bearer, Step::Reject(missing));
            }
            Err((scheme, e)) => return (scheme, Step::Reject(e)),
        };
        let now = now_secs();
        // 2. the DPoP proof, read
        let proof = match (&self.dpop, scheme) {
            (Some(dpop), Scheme::Dpop) => {
                // The URL as the client sent it, before any `nest` stripped a prefix.
                let uri = req
                    .extensions()
                    .get::<axum::extract::OriginalUri>()
                    .map_or(uri, |o| &o.0);
                match dpop.read_proof(req.method(), uri, headers, &token, now) {
                    Ok(proof) => Some(proof),
                    Err(kind) => return (scheme, Step::Reject(kind.into())),
                }
            }
            (Some(dpop), Scheme::Bearer) if dpop.required => {
                return (scheme, Step::Reject(AuthErrorKind::DpopRequired.into()));
            }
            _ => None,
        };
        (scheme, self.token_step(token, scheme, proof, now))
    }

    /// Steps 3 to 9 for one token.
    fn token_step(
        self: &Arc<Self>,
        token: Cow<'_, str>,
        scheme: Scheme,
        proof: Option<Read<'_>>,
        now: f64,
    ) -> Step<T> {
        if self
            .introspect
            .as_ref()
            .is_some_and(|(i, _)| i.takes(&token))
        {
            return self.introspected(token, scheme, proof, now);
        }
        let jkt = proof.as_ref().map(Read::jkt);
        // 3. the cache
        if let Some(claims) = self.cached(&token, jkt, now) {
            return match verified(proof) {
                Ok(proof) => self.settle(Ok(claims), proof),
                Err(e) => Step::Reject(e),
            };
        }
        // 4. the token, parsed once, and its binding
        let unverified = match self.rules.check(&token, scheme, now) {
            Ok(unverified) => unverified,
            Err(kind) => return Step::Reject(kind.into()),
        };
        if unverified.jkt.as_deref() != jkt {
            return Step::Reject(AuthErrorKind::DpopKeyMismatch.into());
        }
        // 5. the key store, the signature
        let ForIssuer {
            index,
            store,
            tenant,
        } = match self.keys.for_issuer(unverified.issuer()) {
            Ok(Some(found)) => found,
            Ok(None) => return Step::Reject(AuthErrorKind::InvalidIssuer.into()),
            Err(e) => return Step::Reject(e),
        };
        let resolved = match self.resolve(&token, &unverified, (index, &store), true) {
            Ok(resolved) => resolved,
            Err(e) => return Step::Reject(e),
        };
        // 6. the proof's signature
        let proof = match verified(proof) {
            Ok(proof) => proof,
            Err(e) => return Step::Reject(e),
        };
        match resolved {
            Keys::Verified(key) => {
                if !tenants::fits(&unverified, key.issuer.as_deref(), tenant.as_deref()) {
                    return Step::Reject(AuthErrorKind::InvalidIssuer.into());
                }
                let claims = self.accept(&token, unverified, key, now);
                self.settle(claims, proof)
            }
            Keys::Wait(store) => {
                let (this, store, token) = (self.clone(), store.clone(), token.into_owned());
                Step::Wait(Box::pin(async move {
                    this.keys.wait_for_keys(index).await;
                    let now = now_secs();
                    this.rules.in_time(unverified.exp, unverified.nbf, now)?;
                    let Keys::Verified(key) =
                        this.resolve(&token, &unverified, (index, &store), false)?
                    else {
                        // Not returned without waiting allowed; fail closed all the same.
                        return Err(AuthErrorKind::UnknownKey.into());
                    };
                    if !tenants::fits(&unverified, key.issuer.as_deref(), tenant.as_deref()) {
                        return Err(AuthErrorKind::InvalidIssuer.into());
                    }
                    let claims = this.accept(&token, unverified, key, now);
                    this.settle(claims, proof).finish().await
                }))
            }
        }
    }

    /// Steps 3 to 9 for a token that goes to introspection ([`crate::introspect`]): the
    /// cache of answers by digest, the proof's signature, a call within the budget, the
    /// answer judged as a token, its binding, the claims; then the check and the replay
    /// record as for any token.
    fn introspected(
        self: &Arc<Self>,
        token: Cow<'_, str>,
        scheme: Scheme,
        proof: Option<Read<'_>>,
        now: f64,
    ) -> Step<T> {
        let Some((intro, cache)) = &self.introspect else {
            return Step::Reject(AuthErrorKind::Misconfigured.into());
        };
        if token.len() > self.rules.max_token_len {
            return Step::Reject(AuthErrorKind::TokenTooLarge.into());
        }
        let jkt = proof.as_ref().map(|p| p.jkt().to_owned());
        if let Some(claims) = cache.get(&token, jkt.as_deref(), now, &self.rules) {
            metrics::introspection_cache_hit();
            return match verified(proof) {
                Ok(proof) => self.settle(Ok(claims), proof),
                Err(e) => Step::Reject(e),
            };
        }
        let proof = match verified(proof) {
            Ok(proof) => proof,
            Err(e) => return Step::Reject(e),
        };
        let permit = match intro.admit() {
            Ok(permit) => permit,
            Err(e) => return Step::Reject(e),
        };
        let (this, token) = (self.clone(), token.into_owned());
        Step::Wait(Box::pin(async move {
            let Some((intro, cache)) = &this.introspect else {
                return Err(AuthErrorKind::Misconfigured.into());
            };
            let claims = intro
                .answer(
                    cache,
                    &token,
                    permit,
                    (&this.rules, &this.keys),
                    scheme,
                    jkt,
                )
                .await;
            this.settle(claims, proof).finish().await
        }))
    }

    /// A cache hit: the same token, binding and key, still within `exp`/`nbf`.
    fn cached(&self, token: &str, jkt: Option<&str>, now: f64) -> Option<Arc<T>> {
        let cache = self.cache.as_ref()?;
        let leeway = self.rules.leeway.as_secs_f64();
        // The set that verified the token, or one that still has its key (a key id
        // lookup only after a refresh replaced the set).
        let key_present = |p: &Provenance| {
            self.keys
                .get(p.store)?
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

    /// Step 5: the key that verifies the token's signature in `store`. With `may_wait`,
    /// a missing key set or an unknown `kid` is [`Keys::Wait`] when the store can
    /// fetch; without (after a wait), they are final.
    fn resolve<'s>(
        &self,
        token: &str,
        unverified: &Unverified,
        (index, store): (usize, &'s Arc<KeyStore>),
        may_wait: bool,
    ) -> Result<Keys<'s>, AuthError> {
        let may_wait = may_wait && store.remote().is_some();
        let found = store.with_keys(|keys| {
            unverified.verify_signature(token, keys).map(|key| {
                Keys::Verified(KeyRef {
                    store: index,
                    kid: key.kid.clone(),
                    id: key.id,
                    issuer: key.issuer.clone(),
                    generation: keys.generation(),
                })
            })
        });
        match found {
            Ok(Ok(keys)) => Ok(keys),
            Ok(Err(KeyStep::Reject(kind))) => Err(kind.into()),
            Ok(Err(KeyStep::UnknownKid)) if may_wait => Ok(Keys::Wait(store)),
            Ok(Err(KeyStep::UnknownKid)) => Err(AuthErrorKind::UnknownKey.into()),
            Err(NoKeys::NotYet) if may_wait => Ok(Keys::Wait(store)),
            Err(NoKeys::NotYet | NoKeys::Unavailable) => Err(store.unavailable()),
        }
    }

    /// Step 7: the verified token's claims into `T`, remembered in the cache.
    fn accept(
        &self,
        token: &str,
        unverified: Unverified,
        key: KeyRef,
        now: f64,
    ) -> Result<Arc<T>, AuthError> {
        let provenance = Provenance {
            exp: unverified.exp,
            nbf: unverified.nbf,
            kid: key.kid,
            key_id: key.id,
            store: key.store,
            generation: key.generation,
            jkt: unverified.jkt.clone(),
        };
        let claims = Arc::new(unverified.into_claims::<T>()?);
        if let Some(cache) = &self.cache {
            cache.insert(token, claims.clone(), provenance, now);
        }
        Ok(claims)
    }

    /// Steps 8 and 9: the user's check, then the proof's replay record.
    fn settle(&self, claims: Result<Arc<T>, AuthError>, proof: Option<Proof>) -> Step<T> {
        let claims = match claims.and_then(|claims| self.checked(claims)) {
            Ok(claims) => claims,
            Err(e) => return Step::Reject(e),
        };
        let (Some(dpop), Some(proof)) = (&self.dpop, proof) else {
            return Step::Admit(Some(claims));
        };
        match dpop.record(&proof) {
            Record::Done(result) => result.map(|()| claims).into(),
            Record::Wait(wait) => Step::Wait(Box::pin(async move { wait.await.map(|()| claims) })),
        }
    }

    /// Runs the user's check, if any, on verified claims.
    fn checked(&self, claims: Arc<T>) -> Result<Arc<T>, AuthError> {
        match &self.check {
            Some(check) => check(&claims).map(|()| claims),
            None => Ok(claims),
        }
    }

    /// Verifies one token outside HTTP ([`JwksAuth::verify`](crate::JwksAuth::verify)):
    /// steps 3 to 8 for a bearer token.
    pub(crate) async fn verify(self: &Arc<Self>, token: &str) -> Result<Arc<T>, AuthError> {
        let step = self.token_step(Cow::Borrowed(token), Scheme::Bearer, None, now_secs());
        let result = step.finish().await;
        metrics::request(result.as_ref().map(|_| true));
        result
    }
}

/// Step 6: a read proof's signature verified (`None`: a bearer request).
fn verified(proof: Option<Read<'_>>) -> Result<Option<Proof>, AuthError> {
    proof.map(Read::verify).transpose().map_err(AuthError::from)
}

impl<T> Authenticator<T> {
    /// The current DPoP nonce for a response to a request that used `scheme`.
    pub(crate) fn nonce(&self, scheme: Scheme) -> Option<HeaderValue> {
        match (&self.dpop, scheme) {
            (Some(dpop), Scheme::Dpop) => dpop.nonce(now_secs()),
            _ => None,
        }
    }

    /// Introspection's health, if the layer introspects.
    pub(crate) fn introspection_status(&self) -> Option<crate::status::IntrospectionStatus> {
        self.introspect
            .as_ref()
            .map(|(intro, cache)| intro.status(cache.len()))
    }

    /// Entries and bytes the verified-token cache holds now (zeros when it is off).
    pub(crate) fn cache_usage(&self) -> (usize, usize) {
        self.cache.as_ref().map_or((0, 0), TokenCache::usage)
    }

    /// The layer's renderer.
    pub(crate) fn responder(&self) -> &Arc<Responder> {
        &self.responder
    }
}
