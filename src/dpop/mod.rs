//! DPoP (RFC 9449): sender-constrained access tokens.
//!
//! A DPoP-bound token carries `cnf.jkt`, the thumbprint of a key its client holds; each
//! request comes with `Authorization: DPoP <token>` and a fresh proof, a JWT signed by
//! that key over the request's method and URL and the token's hash. A leaked token is
//! useless without the key, and a leaked proof is good for one request to one URL, once.
//!
//! Off by default. [`JwksAuth::dpop`](crate::JwksAuth::dpop) with [`Dpop::allowed`]
//! (bearer and DPoP-bound tokens) or [`Dpop::required`] (DPoP-bound only). The layer:
//!
//! 1. reads the proof, with no key set, no I/O and no signature check: at most
//!    [`MAX_PROOF_LEN`](crate::limits::MAX_PROOF_LEN) bytes, strict base64url, no
//!    duplicate JSON members, no `crit`, `typ` `dpop+jwt`, an asymmetric `alg` from the
//!    proof allow-list, a public `jwk` (RSA: at most 4096 bits, exponent 65537); `jti`
//!    of 1 to [`MAX_JTI_LEN`](crate::limits::MAX_JTI_LEN) bytes; `htm` the method; `htu`
//!    the configured base URL plus the request's path as the router routes it (see
//!    below); `iat` within the window either way (default 60 s); `ath` the hash of the
//!    token; the server nonce when nonces are on;
//! 2. checks the token's key-free rules (size, shape, header, claims), which must
//!    carry `cnf.jkt` equal to the proof key's RFC 7638 thumbprint (a cache hit needs
//!    the same binding);
//! 3. verifies the token's signature, then the proof's: without a valid token no proof
//!    signature is ever checked, so a request from someone without a token costs what
//!    a bearer request does (a request that must wait for a key set has its proof
//!    verified before it waits);
//! 4. records the proof (a digest of `jti` and the thumbprint) in the [`ReplayStore`]
//!    until its `iat` leaves the window: a second use is refused.
//!
//! Decisions where the RFC leaves room, all fail-closed:
//!
//! - the `htu` base is configuration ([`Dpop::base_url`]): behind a proxy the `Host`
//!   header is not what the client called; [`Dpop::trust_host_header`] opts into it,
//!   with a configured scheme (an HTTP/1.1 request does not say whether it came over
//!   TLS). Inside `Router::nest` the full original path is used;
//! - a `DPoP` header with the `Bearer` scheme (or without credentials) is a 400; a bearer
//!   token on a `required` layer is 401 `DpopRequired`; tokens from the other token
//!   sources are bearer tokens; [`JwksAuth::verify`](crate::JwksAuth::verify) is
//!   bearer-only;
//! - a bound token is cached with its binding: a hit needs the same `jkt`, and the proof
//!   is checked on every request;
//! - the default [`MemoryReplayStore`] is per process and bounded; full of live entries
//!   it answers 503 rather than forget one, and one client key may fill at most a
//!   sixteenth of it. Layers built from one [`Dpop`] value share it; put one DPoP layer
//!   on a route (a second would see a replay). `RedisReplayStore` (feature `redis`)
//!   shares the record between replicas; while Redis cannot answer (1 s bound), or may
//!   evict keys (`maxmemory` with an evicting policy), requests get 503;
//! - nonces ([`Dpop::nonces`]) are stateless, a time slot and a MAC; every response to
//!   a DPoP request carries the current one (`DPoP-Nonce`), and the previous slot's
//!   stays valid. Browser clients need CORS to expose `DPoP-Nonce` and
//!   `WWW-Authenticate`;
//! - errors are told in the scheme the request used, with `algs`, by the layer, its
//!   route layers and handlers alike; `allowed` layers name both schemes, `Bearer` first
//!   (a client that reads one challenge reads the first), the other one bare.
//!
//! | case (DPoP on) | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials | 401 | `Bearer, DPoP algs="…"` (`allowed`), `DPoP algs="…"` (`required`) |
//! | bad, replayed or foreign-key proof | 401 | `DPoP error="invalid_dpop_proof", …` |
//! | bad or unbound token with the DPoP scheme | 401 | `DPoP error="invalid_token", …` |
//! | proof without the current nonce | 401 | `DPoP error="use_dpop_nonce", …` and `DPoP-Nonce` |
//! | replay store unreachable | 503 | none; `Retry-After` |
//!
//! Inside: [`Dpop`] is the configuration; `proof` the proof check, pure; `htu` the URL
//! comparison; `nonce` server nonces; `replay` and `redis` the stores; `DpopCheck` the
//! configuration made runtime state, a step of the layer's pipeline.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::alg::{AlgSet, Algorithm, DEFAULT_ALGORITHMS};
use crate::diagnose;
use crate::error::{AuthError, AuthErrorKind, ConfigError, ConfigErrorKind};
use crate::limits::{DPOP_WINDOW, MIN_RETRY_AFTER, NONCE_LIFETIME, REPLAY_STORE_TIMEOUT};
use crate::respond::DpopChallenge;

/// `iat` is whole seconds: a narrower window would refuse honest proofs.
const MIN_DPOP_WINDOW: Duration = Duration::from_secs(1);

/// A wider window would let a captured proof live for hours; it is also what keeps every
/// duration computed from it representable.
const MAX_DPOP_WINDOW: Duration = Duration::from_secs(60 * 60);

mod htu;
mod nonce;
pub(crate) mod proof;
#[cfg(feature = "redis")]
pub(crate) mod redis;
mod replay;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::RedisReplayStore;
pub use replay::{MemoryReplayStore, ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};

/// DPoP settings for a layer ([`JwksAuth::dpop`](crate::JwksAuth::dpop)).
///
/// Plain data: nothing is checked or built until the layer is first used; a bad base URL
/// or an empty algorithm list is then a [`ConfigError`] (applying the layer panics naming it, and
/// [`JwksAuth::ready`](crate::JwksAuth::ready) returns it).
///
/// ```
/// use std::sync::Arc;
/// use jwks_auth::dpop::MemoryReplayStore;
/// use jwks_auth::{Dpop, JwksAuth};
///
/// let auth = JwksAuth::from_issuer("https://idp.example").audience("api").dpop(
///     Dpop::required()
///         .base_url("https://api.example.com")
///         .replay_store(Arc::new(MemoryReplayStore::with_capacity(100_000))),
/// );
/// ```
#[derive(Clone)]
pub struct Dpop {
    required: bool,
    window: Duration,
    algorithms: Vec<Algorithm>,
    base_url: Option<String>,
    /// The scheme of `htu`s built from the `Host` header, when that is trusted.
    trust_host: Option<String>,
    replay: Option<Arc<dyn ReplayStore>>,
    /// The default in-memory store, made on first use and shared by every layer built
    /// from this value (clones included), so that derived layers share one record.
    default_replay: Arc<OnceLock<Arc<dyn ReplayStore>>>,
    nonces: bool,
    nonce_secret: Option<Vec<u8>>,
    nonce_lifetime: Duration,
}

impl fmt::Debug for Dpop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dpop")
            .field("required", &self.required)
            .field("window", &self.window)
            .field("algorithms", &self.algorithms)
            .field("base_url", &self.base_url)
            .field("trust_host", &self.trust_host)
            .field("replay", &self.replay)
            .field("nonces", &self.nonces)
            .field("nonce_lifetime", &self.nonce_lifetime)
            .finish_non_exhaustive()
    }
}

impl Dpop {
    fn new(required: bool) -> Self {
        Self {
            required,
            window: DPOP_WINDOW,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            base_url: None,
            trust_host: None,
            replay: None,
            default_replay: Arc::new(OnceLock::new()),
            nonces: false,
            nonce_secret: None,
            nonce_lifetime: NONCE_LIFETIME,
        }
    }

    /// Bearer tokens and DPoP-bound tokens are both accepted (a bound token only with
    /// its proof). Challenges name both schemes.
    pub fn allowed() -> Self {
        Self::new(false)
    }

    /// Only DPoP-bound tokens with their proofs are accepted; a bearer token gets 401
    /// ([`AuthErrorKind::DpopRequired`]).
    pub fn required() -> Self {
        Self::new(true)
    }

    /// How far a proof's `iat` may be from the server's clock, either way (default 60 s,
    /// at least 1 s: `iat` is whole seconds; at most an hour, larger values are lowered
    /// to it). A proof is remembered for replay until its `iat` leaves this window.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// The algorithms a proof may be signed with (default: the layer's default list,
    /// asymmetric only). A list with none the backend verifies (empty, or only ES512
    /// with `rust_crypto` alone) is a [`ConfigError`].
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// The externally visible base of this service's URLs, as clients call it
    /// (`https://api.example.com`, or with a path prefix a proxy strips:
    /// `https://example.com/api`). A proof's `htu` must equal this base followed by the
    /// request's path. Required unless [`trust_host_header`](Self::trust_host_header).
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = Some(base_url.into());
        self
    }

    /// Without a [`base_url`](Self::base_url): take the expected `htu`'s host from the
    /// request itself (its URI's authority, as HTTP/2 sends it, or its `Host` header),
    /// with this `scheme` (`"https"` when the service terminates TLS itself, `"http"`
    /// when it does not: an HTTP/1.1 request does not say which). Only right when
    /// nothing in front of the service rewrites the host or path, and weaker: the client
    /// chooses the `Host` it is compared with. A scheme other than `http` or `https` is
    /// a [`ConfigError`].
    pub fn trust_host_header(mut self, scheme: impl Into<String>) -> Self {
        self.trust_host = Some(scheme.into());
        self
    }

    /// Where proofs already seen are remembered (default: one [`MemoryReplayStore`],
    /// shared by every layer built from this `Dpop` value, e.g. a layer and its
    /// `.optional()` variant). Share a store between other layers, or between replicas
    /// with the Redis store (feature `redis`).
    pub fn replay_store(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = Some(store);
        self
    }

    /// Require server-issued nonces (RFC 9449 §9): a proof without the current nonce gets
    /// 401 `use_dpop_nonce` and a `DPoP-Nonce` header; every response to a DPoP request
    /// carries the current nonce. The secret is random per process unless
    /// [`nonce_secret`](Self::nonce_secret) is set.
    pub fn nonces(mut self) -> Self {
        self.nonces = true;
        self
    }

    /// Require nonces, made with this secret (at least 32 bytes of randomness; shorter is
    /// a configuration error): replicas that share it, and serve the same base URL, accept
    /// each other's nonces.
    pub fn nonce_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.nonces = true;
        self.nonce_secret = Some(secret.into());
        self
    }

    /// How long a nonce stays current (default 5 minutes); the previous one is accepted
    /// for as long again.
    pub fn nonce_lifetime(mut self, lifetime: Duration) -> Self {
        self.nonce_lifetime = lifetime;
        self
    }

    /// The configured algorithms the backend can verify: ES512 only with `aws_lc_rs`
    /// (with `rust_crypto` alone it cannot), so that `algs` never names one it refuses.
    fn proof_algorithms(&self) -> AlgSet {
        AlgSet::from_algs(
            self.algorithms
                .iter()
                .copied()
                .filter(|a| *a != Algorithm::ES512 || crate::crypto::SUPPORTS_P521),
        )
    }

    /// What RFC 9728 metadata says of this DPoP setting: the proof algorithms, and
    /// whether bound tokens are required.
    pub(crate) fn advertised(&self) -> (Vec<&'static str>, bool) {
        let algs = self
            .proof_algorithms()
            .iter()
            .map(Algorithm::as_str)
            .collect();
        (algs, self.required)
    }

    /// Checks what can be wrong without building anything.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.proof_algorithms().is_empty() {
            return Err(ConfigError::new(ConfigErrorKind::NoAlgorithms));
        }
        if self
            .nonce_secret
            .as_ref()
            .is_some_and(|s| s.len() < nonce::MIN_SECRET)
        {
            return Err(ConfigError::new(ConfigErrorKind::DpopNonceSecret));
        }
        let scheme_ok = |scheme: &str| matches!(scheme, "http" | "https");
        match (&self.base_url, &self.trust_host) {
            (Some(url), _) if base(url).is_none() => {
                Err(ConfigError::new(ConfigErrorKind::DpopBaseUrl))
            }
            (_, Some(scheme)) if !scheme_ok(scheme) => {
                Err(ConfigError::new(ConfigErrorKind::DpopBaseUrl))
            }
            (None, None) => Err(ConfigError::new(ConfigErrorKind::DpopBaseUrl)),
            _ => Ok(()),
        }
    }
}

/// A base URL normalised, without a trailing slash; `None` if it has a query or
/// fragment or is not an absolute `http(s)` URL.
fn base(url: &str) -> Option<String> {
    if url.contains(['?', '#']) {
        return None;
    }
    htu::normalize(url).map(|n| n.trim_end_matches('/').to_owned())
}

/// The runtime form of [`Dpop`].
pub(crate) struct DpopCheck {
    pub(crate) required: bool,
    algorithms: AlgSet,
    window: f64,
    base: Option<String>,
    /// The scheme of a URL built from the `Host` header (no base URL).
    host_scheme: String,
    replay: Arc<dyn ReplayStore>,
    nonces: Option<nonce::Nonces>,
    pub(crate) challenge: DpopChallenge,
}

impl fmt::Debug for DpopCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopCheck")
            .field("required", &self.required)
            .field("algorithms", &self.algorithms)
            .field("base", &self.base)
            .field("replay", &self.replay)
            .field("nonces", &self.nonces)
            .finish_non_exhaustive()
    }
}

impl DpopCheck {
    pub(crate) fn build(config: &Dpop) -> Result<Self, ConfigError> {
        config.validate()?;
        let algorithms = config.proof_algorithms();
        let algs: Vec<&str> = algorithms.iter().map(Algorithm::as_str).collect();
        Ok(Self {
            required: config.required,
            algorithms,
            window: config
                .window
                .clamp(MIN_DPOP_WINDOW, MAX_DPOP_WINDOW)
                .as_secs_f64(),
            base: config.base_url.as_deref().and_then(base),
            host_scheme: config.trust_host.clone().unwrap_or_default(),
            replay: match &config.replay {
                Some(store) => store.clone(),
                None => config
                    .default_replay
                    .get_or_init(|| Arc::new(MemoryReplayStore::new()))
                    .clone(),
            },
            nonces: match config.nonces {
                true => {
                    let secret = match &config.nonce_secret {
                        Some(secret) => secret.clone(),
                        None => nonce::random_secret()
                            .ok_or_else(|| ConfigError::new(ConfigErrorKind::DpopNonceSecret))?,
                    };
                    let scope = config
                        .base_url
                        .as_deref()
                        .and_then(base)
                        .unwrap_or_default();
                    Some(nonce::Nonces::new(secret, &scope, config.nonce_lifetime))
                }
                false => None,
            },
            challenge: DpopChallenge {
                required: config.required,
                algs: Arc::from(algs.join(" ")),
            },
        })
    }

    /// The normalised URL the client sent the request to; `None` when it cannot be
    /// known (no `Host` with `trust_host_header`) or its path is not the one the router
    /// routes ([`htu::routable`]), which fails the proof.
    fn request_url(&self, uri: &Uri, headers: &HeaderMap) -> Option<String> {
        if !htu::routable(uri.path()) {
            return None;
        }
        let url = match &self.base {
            Some(base) => htu::request_url(base, uri.path()),
            None => {
                let scheme = &self.host_scheme;
                let host = match uri.authority() {
                    Some(authority) => authority.as_str(),
                    None => headers.get(http::header::HOST)?.to_str().ok()?,
                };
                format!("{scheme}://{host}{}", uri.path())
            }
        };
        htu::normalize(&url)
    }

    /// Reads the request's proof (exactly one `DPoP` header) for `token`: every check
    /// but its signature ([`proof::read`]).
    pub(crate) fn read_proof<'h>(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &'h HeaderMap,
        token: &str,
        now: f64,
    ) -> Result<proof::Read<'h>, AuthErrorKind> {
        let mut proofs = headers.get_all("dpop").iter();
        let (Some(proof), None) = (proofs.next(), proofs.next()) else {
            return Err(AuthErrorKind::InvalidDpopProof);
        };
        let proof = proof
            .to_str()
            .map_err(|_| AuthErrorKind::InvalidDpopProof)?;
        let url = self
            .request_url(uri, headers)
            .ok_or(AuthErrorKind::InvalidDpopProof)?;
        let rules = proof::ProofRules {
            algorithms: self.algorithms,
            window: self.window,
            nonces: self.nonces.as_ref(),
        };
        let request = proof::ProofRequest {
            method: method.as_str(),
            url: &url,
            token,
            now,
        };
        proof::read(proof, &rules, &request)
    }

    /// The current nonce, for a `DPoP-Nonce` header, when nonces are on.
    pub(crate) fn nonce(&self, now: f64) -> Option<HeaderValue> {
        let nonce = self.nonces.as_ref()?.current(now);
        HeaderValue::try_from(nonce).ok()
    }

    /// Records the proof in the replay store. A store that answers at once (the
    /// in-memory one) is answered here, with no timer and no allocation of ours; any
    /// other is waited for, at most [`REPLAY_STORE_TIMEOUT`]. A replay, or a store that
    /// does not answer, is a rejection.
    pub(crate) fn record(&self, proof: &proof::Proof) -> Record {
        // Bounded by the clamped window: always a representable duration.
        let ttl = Duration::try_from_secs_f64(proof.remember_for.min(2.0 * self.window + 1.0))
            .unwrap_or(MAX_DPOP_WINDOW);
        let mut insert = self.replay.insert(proof.replay_key, ttl);
        let mut cx = Context::from_waker(Waker::noop());
        match insert.as_mut().poll(&mut cx) {
            Poll::Ready(answer) => Record::Done(judge(Some(answer))),
            Poll::Pending => Record::Wait(Box::pin(async move {
                judge(
                    tokio::time::timeout(REPLAY_STORE_TIMEOUT, insert)
                        .await
                        .ok(),
                )
            })),
        }
    }
}

/// What a replay record came to.
pub(crate) enum Record {
    /// The store answered at once.
    Done(Result<(), AuthError>),
    /// The store answers later (a remote one).
    Wait(Pin<Box<dyn Future<Output = Result<(), AuthError>> + Send>>),
}

/// A replay store's answer (`None`: none within the bound) as the request's fate.
fn judge(answer: Option<Result<bool, ReplayStoreError>>) -> Result<(), AuthError> {
    let unavailable =
        || AuthError::unavailable(AuthErrorKind::ReplayStoreUnavailable, MIN_RETRY_AFTER);
    match answer {
        Some(Ok(true)) => Ok(()),
        Some(Ok(false)) => Err(AuthErrorKind::DpopReplay.into()),
        // Once a minute per cause: a full store or a store that is down fails every
        // request alike, and one line says it.
        Some(Err(e)) => {
            let error = e.to_string();
            diagnose::per_minute(("dpop-replay-store", &error), || {
                tracing::warn!(%error, "jwks-auth: DPoP replay store failed; answering 503 (logged once a minute)");
            });
            Err(unavailable())
        }
        None => {
            diagnose::per_minute("dpop-replay-store-timeout", || {
                tracing::warn!(
                    "jwks-auth: DPoP replay store timed out; answering 503 (logged once a minute)"
                );
            });
            Err(unavailable())
        }
    }
}
