//! Bearer JWT authentication for axum and any tower service, verified against an identity
//! provider's JSON Web Key Set.
//!
//! ```
//! use axum::{routing::get, Router};
//! use jwks_auth::{Claims, JwksAuth};
//!
//! let auth = JwksAuth::new("https://idp.example.com/.well-known/jwks.json")
//!     .issuer("https://idp.example.com/")
//!     .audience("orders-api");
//!
//! let app: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(auth);
//!
//! async fn me(Claims(claims): Claims) -> String {
//!     claims.sub.unwrap_or_default()
//! }
//! ```
//!
//! The layer takes the bearer token from the request, verifies it against a key set
//! snapshot that a background task keeps fresh, and hands the verified claims to
//! handlers as [`Claims<T>`]. Key rotation, identity provider outages and hostile tokens
//! are handled by the layer; see below for how.
//!
//! # The shape of it
//!
//! A [`JwksAuth`] is plain configuration: building it and calling its setters does no
//! I/O, parses nothing and needs no runtime, like tower-http's `CorsLayer`. The first time
//! it is used (as a layer, or through [`ready`](JwksAuth::ready),
//! [`status`](JwksAuth::status), [`verify`](JwksAuth::verify)) it builds its runtime state
//! once: the **key stores** (the key set snapshot and the refresh task of each key
//! source) and the **authenticator** (rules, cache, check, token sources). Clones share
//! both. Layers derived from one `JwksAuth` by request options (`.optional()`, a check,
//! token sources, the rejection hook, the claims type) share its key stores: one fetch
//! and one refresh task for a required and an optional route. Every rejection, the
//! layer's and the route layers' and a handler's [`AuthError`], goes through one renderer,
//! with the configured realm and [`on_rejection`](JwksAuth::on_rejection) hook. The
//! refresh task ends with the last clone of the layer, and is started again if the
//! runtime that ran it is gone.
//!
//! # Putting it together
//!
//! Authentication is the layer; authorization is a route layer ([`RequireScope`],
//! [`Authorize`]) or a check in the handler ([`StandardClaims::require_scopes`]). Options
//! on the layer compose: where the token comes from, a claims check for every route, the
//! shape of rejections, and which issuers to trust.
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use jwks_auth::{AuthError, AuthErrorKind, Authorize, Claims, JwksAuth, RequireScope, StandardClaims};
//!
//! let auth = JwksAuth::multi_issuer()
//!     .trust_discovered_issuer("https://login.acme.example")
//!     .trust_issuer("https://idp.zeta.example/", "https://idp.zeta.example/keys")
//!     .audience("orders-api")
//!     .token_from_cookie("session")
//!     .check(|c: &StandardClaims| match c.extra.get("email_verified") {
//!         Some(serde_json::Value::Bool(true)) => Ok(()),
//!         _ => Err(AuthErrorKind::AccessDenied.into()),
//!     })
//!     .on_rejection(|err: &AuthError| err.response_with_body(err.kind().as_str()));
//!
//! let app: Router = Router::new()
//!     .route("/orders", post(|| async { "created" }))
//!     .route_layer(RequireScope::all(["orders:write"]))
//!     .merge(
//!         Router::new()
//!             .route("/admin", get(|| async { "admin" }))
//!             .route_layer(Authorize::predicate(|c: &StandardClaims| {
//!                 c.extra.get("roles").and_then(|r| r.as_array())
//!                     .is_some_and(|roles| roles.iter().any(|r| r == "admin"))
//!             })),
//!     )
//!     .route("/me", get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }))
//!     .layer(auth);
//! ```
//!
//! For your own claims type, take the route layers from the layer itself:
//! [`JwksAuth::require_scopes`] and [`JwksAuth::authorize`] are typed to its claims (with
//! [`Scopes`] implemented in one line), so a route layer for another type cannot compile.
//!
//! Token sources: the `Authorization: Bearer` header unless turned off
//! ([`JwksAuth::bearer_header`]), plus any of [`JwksAuth::token_from_cookie`],
//! [`JwksAuth::token_from_header`], [`JwksAuth::token_from`] and, only when asked for,
//! [`JwksAuth::token_from_query`]. Two sources carrying different tokens are a malformed
//! request (400): the layer never chooses between two credentials. A cookie source reads
//! only its own cookie, parsed pair by pair over the raw bytes of every `Cookie` header:
//! other cookies, whatever their bytes, never change the answer.
//!
//! # Responses (RFC 6750)
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials (no `Authorization`, or another scheme) | 401 | `Bearer` (+ `realm`) |
//! | malformed header: `Bearer` without token, two tokens, two `Authorization` headers, bad characters | 400 | `Bearer error="invalid_request"` |
//! | bad token: signature, expired, `nbf`, `iss`/`aud`/`typ`, unknown `kid` after refresh, encoding, claims | 401 | `Bearer error="invalid_token", error_description="…"` |
//! | missing scope ([`AuthError::insufficient_scope`]), or a role/claims check refused ([`AuthErrorKind::AccessDenied`]) | 403 | `Bearer error="insufficient_scope"` (+ `scope="…"`) |
//! | no usable key set (never fetched, stale past `max_stale`, bad configuration) | 503 | none; `Retry-After` |
//!
//! Bodies are small JSON: `{"error":…,"error_description":…}`. Descriptions are fixed
//! strings ([`AuthErrorKind::description`]): nothing from the request (token, `kid`, claims)
//! is ever echoed. The [`AuthError`] rides in the response extensions for outer layers
//! to log; [`AuthErrorKind::as_str`] is a stable snake_case code per kind for logs and
//! custom bodies. [`AuthError::response_with_body`] replaces the body and keeps the
//! status, the challenge, `Cache-Control` and `Retry-After`. The inner service's error
//! type is never changed.
//!
//! A configured realm is in every challenge: the layer's, the route layers', and those of
//! [`AuthError`]s returned by handlers behind the layer (the layer renders them again).
//!
//! gRPC calls (`content-type: application/grpc*`, e.g. a tonic server behind the layer)
//! get trailers-only gRPC answers instead, from every rejection: HTTP 200, `grpc-status`
//! 16 `UNAUTHENTICATED`, 7 `PERMISSION_DENIED`, 14 `UNAVAILABLE` or 3 `INVALID_ARGUMENT`
//! ([`AuthErrorKind::grpc_code`]), a fixed `grpc-message`, and the challenge kept. The
//! `on_rejection` hook is for HTTP answers and is not used for them.
//!
//! # Verification rules
//!
//! Fail closed, cheapest checks first (details in the `verify` module source):
//!
//! - token at most 16 KiB ([`JwksAuth::max_token_len`]) before any decoding; exactly three
//!   strict base64url segments (no padding, no `+`/`/`, canonical trailing bits); header
//!   and payload JSON objects **without duplicate member names** (RFC 7519 allows
//!   last-wins; we reject, closing parser-differential attacks);
//! - the algorithm must be in the allow-list (default RS256/384/512, PS256/384/512, ES256,
//!   ES384, ES512, EdDSA and RFC 9864's Ed25519) *and* fit the selected key's type, curve
//!   and `alg` (`EdDSA` and `Ed25519` are one algorithm, Ed25519 keys only). `none` and
//!   HS* are not even [`Algorithm`]s, so they cannot be configured. ES512 needs the
//!   `aws_lc_rs` backend (with `rust_crypto` alone, P-521 keys are skipped); `jku`, `x5u`, `jwk`, `x5c` are never used to find a key. Any `crit`
//!   header is rejected (this crate implements no JWS extension). JWE is rejected;
//! - key selection by `kid` in a prebuilt map. A `kid` naming a key of the wrong type is a
//!   rejection, with no fallback. A token without `kid` is tried against the keys fitting
//!   its algorithm, at most [`limits::MAX_KIDLESS_CANDIDATES`] of them;
//! - `exp` required; `nbf` checked; leeway 60 s; `iss` exact match when configured; `aud`
//!   (string or array) when configured. NumericDates may be fractional. A registered claim
//!   of the wrong JSON type (`exp: "123"`, `aud: 5`, `sub: 1`) is invalid, never "absent".
//!   A token whose `nbf` is later than its `exp` is valid at no instant: invalid;
//! - [`require_claims`](JwksAuth::require_claims): a claim whose value is `null` counts as
//!   missing;
//! - a token carrying `cnf` (sender-constrained: DPoP `jkt`, mutual-TLS `x5t#S256`) is
//!   rejected when presented as a bearer token ([`AuthErrorKind::BoundToken`]): a stolen
//!   bound token must not replay as a plain bearer token (RFC 9449 §7.2, RFC 8705). With
//!   DPoP on, a token sent as `Authorization: DPoP` must carry `cnf.jkt` instead (see
//!   [DPoP](#dpop-sender-constrained-tokens)).
//!
//! # DPoP: sender-constrained tokens
//!
//! Off by default. [`JwksAuth::dpop`] with [`Dpop::allowed`] (bearer and DPoP-bound
//! tokens) or [`Dpop::required`] (DPoP-bound only) turns on RFC 9449. A request is then
//! `Authorization: DPoP <token>` plus exactly one `DPoP: <proof>` header, and the layer:
//!
//! 1. checks the proof, with no key set and no I/O (`dpop/proof.rs`): at most
//!    [`limits::MAX_PROOF_LEN`] bytes, strict base64url, no duplicate JSON members, no
//!    `crit`, `typ` `dpop+jwt`, an `alg` from the proof allow-list (asymmetric only), a
//!    public `jwk` (no private members; EC coordinates at full length) that verifies the
//!    signature; `jti` of 1 to [`limits::MAX_JTI_LEN`] bytes; `htm` the method; `htu`
//!    the configured base URL plus the request's path, both normalised (RFC 3986: case,
//!    default port, percent-encoding, dot segments; query and fragment ignored); `iat`
//!    within the window either way (default 60 s); `ath` the hash of the token; the
//!    server nonce when nonces are on;
//! 2. verifies the token as above (from the cache or in full), which must carry
//!    `cnf.jkt` equal to the proof key's RFC 7638 thumbprint;
//! 3. records the proof (a digest of `jti` and the thumbprint) in the [`ReplayStore`]
//!    until its `iat` leaves the window: a second use is refused.
//!
//! Decisions where the RFC leaves room, all fail-closed:
//!
//! - the `htu` base is configuration ([`Dpop::base_url`]), because behind a proxy the
//!   `Host` header is not what the client called; without it the layer is misconfigured
//!   ([`ConfigErrorKind::DpopBaseUrl`]: `ready()` says so, requests get 503) unless
//!   [`Dpop::trust_host_header`] opts into taking it from the request. Inside
//!   `Router::nest` the full original path is used;
//! - a `DPoP` header with the `Bearer` scheme (or without credentials) is a malformed
//!   request (400): the layer does not guess which the client meant. A bearer token on a
//!   `required` layer is [`AuthErrorKind::DpopRequired`] (401); tokens from the other
//!   token sources (cookie, header, query, function) are bearer tokens;
//! - a bound token is cached with its binding: a cache hit needs the same `jkt`, so a
//!   cached DPoP token is never accepted as a bearer token, and the proof is checked on
//!   every request;
//! - the default [`MemoryReplayStore`] is per process and bounded
//!   ([`limits::REPLAY_ENTRIES`]); full of live entries it answers 503 rather than
//!   forget one. Layers built from one [`Dpop`] value (a layer and its `.optional()`
//!   variant) share it. Put one DPoP layer on a route: a second would see the proof the
//!   first recorded as a replay. `RedisReplayStore` (feature `redis`) shares the record between
//!   replicas (`SET NX PX`); while Redis cannot answer (1 s bound), requests get 503. A
//!   Redis restart without persistence forgets proofs seen in the last window;
//! - nonces ([`Dpop::nonces`]) are stateless: a time slot and a MAC. Every response to a
//!   DPoP request carries the current one (`DPoP-Nonce`); the previous slot's stays
//!   valid. Replicas accept each other's only with a shared [`Dpop::nonce_secret`].
//!   Browser clients read it across origins only if your CORS layer exposes
//!   `DPoP-Nonce` and `WWW-Authenticate`;
//! - ES512 is left out of the proof algorithms where the backend cannot verify it
//!   (`rust_crypto` alone); [`JwksAuth::verify`] is bearer-only;
//! - errors are told in the scheme the request used ([`AuthError::www_authenticate`]),
//!   with `algs`; `allowed` layers add the other scheme's bare challenge.
//!
//! | case (DPoP on) | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials | 401 | `Bearer, DPoP algs="…"` (`allowed`), `DPoP algs="…"` (`required`) |
//! | bad, replayed or foreign-key proof | 401 | `DPoP error="invalid_dpop_proof", …` |
//! | bad or unbound token with the DPoP scheme | 401 | `DPoP error="invalid_token", …` |
//! | proof without the current nonce | 401 | `DPoP error="use_dpop_nonce", …` and `DPoP-Nonce` |
//! | replay store unreachable | 503 | none; `Retry-After` |
//!
//! With feature `test-util`, `testing::DpopKey` signs proofs and
//! `TokenBuilder::bound_to` mints bound tokens.
//!
//! # Key sources
//!
//! - [`JwksAuth::new`]: a JWKS URL.
//! - [`JwksAuth::from_issuer`]: an OpenID Connect issuer; the JWKS URL comes from its
//!   discovery document (`/.well-known/openid-configuration`, then RFC 8414's
//!   `/.well-known/oauth-authorization-server`), whose `issuer` must equal the configured
//!   one exactly; `iss` is then enforced on every token.
//! - [`JwksAuth::from_jwks`]: a fixed key set, for offline use and tests (parsed once, at
//!   first use).
//!
//! None of them does I/O or needs a runtime when built. The refresh task starts when the
//! layer is first used inside a Tokio runtime (`Layer::layer`, a request, [`JwksAuth::ready`],
//! [`JwksAuth::refresh_now`]).
//!
//! # Keys and refresh
//!
//! The key set is an immutable snapshot in an `ArcSwap`, built once per fetch. Each JWK is
//! parsed on its own; unusable keys are skipped and listed in [`Status::skipped`] with a
//! [`SkipReason`]: symmetric keys, keys carrying private members (`d`, and for RSA `p`,
//! `q`, `dp`, `dq`, `qi`, `oth`, whatever the `kty`), `use`/`key_ops` not for
//! verification, an unusable `alg`, weak or oversized RSA, unsupported curves (Ed448
//! included), bad encodings, and keys past [`limits::MAX_KEYS`]. Shapes real exporters
//! write are accepted: WebCrypto's Ed25519 JWK (`alg: "Ed25519"`, `key_ops`, `ext`), and
//! EC coordinates without their leading zero bytes (left-padded; longer ones are
//! refused).
//!
//! A background task refreshes the set every 5 minutes (±10 %) or at `Cache-Control:
//! max-age` (clamped to [1 min, 24 h], and never later than an interval you set with
//! [`refresh_interval`](JwksAuth::refresh_interval)) with conditional requests. An
//! unknown `kid` forces one refresh (single flight, at most one per 30 s cooldown, never
//! less than 1 s) and the request waits for it, so the first token after a rotation is
//! accepted. On failure
//! the last good set is kept and retried with backoff; after 24 h without a good refresh
//! requests get 503. HTTP: connect 2 s, total 5 s, 512 KiB body cap, no redirects, `https`
//! except on loopback. The default client honours `HTTPS_PROXY`, `HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY` as curl and Go do, but never sends a loopback URL through a
//! proxy. The task ends when the last clone of the layer is dropped; if the runtime that
//! ran it is dropped instead (a layer kept in a static across test runtimes), the next
//! use starts a new one. A [`RefreshError`] names the URL it fetched and keeps the
//! transport error as its `source()`.
//!
//! Decisions where the design left room, all fail-closed:
//!
//! - requests that arrive before the first key set wait for the first fetch (bounded by
//!   the fetch timeout plus 1 s), then get 503 if it failed; never 401;
//! - a request whose `kid` is unknown waits for the forced refresh it joined for at most
//!   the same bound; if the refresh has not finished by then, the token is rejected as
//!   `UnknownKey` (401) rather than held;
//! - while there is no key set, a request can start a forced refresh only once per
//!   cooldown; others get 503 at once with `Retry-After` set to the next scheduled attempt
//!   (clamped to [1 s, 60 s]);
//! - `Cache-Control: no-store` and `no-cache` mean "use the refresh interval", never
//!   "refetch per request"; `max-age` takes the smallest value when repeated; other
//!   directives are ignored;
//! - after a key set fetch fails, a discovered JWKS URL is discovered again on the next
//!   attempt (the provider may have moved its keys);
//! - a `304` counts as a successful refresh (it resets staleness and the failure count)
//!   only when the request carried a validator (`If-None-Match`, `If-Modified-Since`) and
//!   there is a key set to keep; otherwise it is a failure;
//! - a discovery document naming another issuer is fatal for [`JwksAuth::ready`], which
//!   returns it at once naming both values (a trailing-slash difference is called out);
//!   the task keeps retrying in case the provider fixes it;
//! - builder-order mistakes never fail silently: [`claims`](JwksAuth::claims) after
//!   [`check`](JwksAuth::check) (the check would be lost) and
//!   [`issuer`](JwksAuth::issuer) on a multi-issuer layer are [`ConfigError`]s: `ready()`
//!   returns them and every request gets 503;
//! - an HTTP client that cannot be built is terminal: `ready()` returns the error at once.
//!
//! # Verified-token cache
//!
//! On by default ([`limits::CACHE_ENTRIES`], 10,000 entries); [`JwksAuth::cache`] sets
//! the size and [`JwksAuth::no_cache`] turns it off. A token seen before and still valid
//! skips parsing and the signature check. A hit compares the whole token (the hash only
//! picks a slot: a collision can never accept a token), re-checks `exp` and `nbf`,
//! requires the key that verified the token to still be in the current key set (so a
//! removed key's tokens stop being accepted at the refresh that removes it, and a stale
//! set answers 503 first), and runs the layer's [`check`](JwksAuth::check) again. A
//! cached accept cannot outlive the token's `exp`, its key's presence, or the layer's
//! configuration (a changed configuration is a new cache). It can outlive a revocation
//! the crate never sees anyway (no introspection). See SECURITY.md.
//!
//! Memory: at most `max_entries` entries and [`limits::CACHE_BYTES`] (16 MiB) of token
//! text and per-entry overhead, whatever the token sizes, plus the claims; 16
//! mutex-guarded shards; a full shard drops expired entries first.
//! [`JwksAuth::cache_usage`] reports what it holds. The claims are shared, not copied:
//! handlers take [`Claims<T>`] (one copy, at extraction) or [`SharedClaims<T>`] (none).
//!
//! # Defaults
//!
//! | setting | default | method |
//! |---|---|---|
//! | algorithms | RS256/384/512, PS256/384/512, ES256, ES384, ES512, EdDSA, Ed25519 | [`JwksAuth::algorithms`] |
//! | leeway | 60 s | [`JwksAuth::leeway`] |
//! | issuer / audience | not checked | [`JwksAuth::issuer`], [`JwksAuth::audience`] |
//! | max token size | 16 KiB | [`JwksAuth::max_token_len`] |
//! | refresh interval | 5 min ±10 % | [`JwksAuth::refresh_interval`] |
//! | forced-refresh cooldown | 30 s (at least 1 s) | [`JwksAuth::cooldown`] |
//! | max staleness | 24 h | [`JwksAuth::max_stale`] |
//! | fetch timeout | 5 s (connect 2 s) | [`JwksAuth::fetch_timeout`] |
//! | plain http | loopback only | [`JwksAuth::allow_http`] |
//! | verified-token cache | on: 10,000 entries, 16 MiB | [`JwksAuth::cache`], [`JwksAuth::no_cache`] |
//! | DPoP | off; when on: `iat` ±60 s, the default algorithms, in-memory replay store (1,000,000 entries), no nonces | [`JwksAuth::dpop`], [`Dpop`] |
//!
//! # Metrics
//!
//! Feature `metrics` emits, through the [`metrics`](https://docs.rs/metrics) facade (any
//! exporter): `jwks_auth_requests_total{outcome, kind}` (accepted, anonymous, rejected
//! by [`AuthErrorKind::as_str`], unavailable), `jwks_auth_cache_hits_total`,
//! `jwks_auth_key_fetches_total{issuer, outcome}` (ok, not_modified, or the error kind),
//! the histogram `jwks_auth_key_fetch_seconds{issuer}`, and the gauges
//! `jwks_auth_keys{issuer}` and `jwks_auth_key_set_age_seconds{issuer}` (kept current
//! every second, so the age grows through an outage with no traffic). Label values come
//! from fixed sets and the configuration (`issuer` is a trusted issuer of a multi-issuer
//! layer, else empty): never a token, a `kid` or request text. Without the feature the
//! request path pays nothing.
//!
//! # Crypto backend
//!
//! jsonwebtoken's `aws_lc_rs` backend is the default feature; `rust_crypto` is the
//! pure-Rust alternative (`default-features = false, features = ["rust_crypto"]`). If both
//! are enabled, `aws_lc_rs` is used ([`CRYPTO_BACKEND`]). The backend is called directly,
//! never through jsonwebtoken's process-wide default, so no feature combination can panic.
//!
//! # Layout
//!
//! One concept per file; the modules form a DAG (no two import each other). In the order
//! a request meets them:
//!
//! - `layer` ([`JwksAuth`]: plain configuration, constructors, operator handles, `impl
//!   Layer`) and `builder` (its setters, each O(1));
//! - `config` (the configuration in two parts, the key source and the request options,
//!   and their validation into [`ConfigError`]s);
//! - `service` ([`JwksAuthService`]) and [`future`] (the response futures);
//! - `authenticate` (the whole request-time decision, top to bottom: credentials, cache,
//!   verification, check, verdict);
//! - `token` (credentials: RFC 6750 parsing and the other token sources);
//! - `verify` (size, shape, header, claims, key selection, signature) on `json` (strict
//!   JSON: no duplicate members) and `alg` (the [`Algorithm`] type, key families,
//!   base64url: the leaf);
//! - `keys` (the key set snapshot, per-key filtering, [`SkipReason`]) and `crypto` (the
//!   compile-time signature backend);
//! - `cache` (the verified-token cache, typed over the claims type);
//! - `dpop` (DPoP: [`Dpop`] and its runtime form in `mod.rs`; `proof.rs` the proof
//!   check and thumbprint, pure; `htu.rs` URL normalisation; `nonce.rs` server nonces;
//!   `replay.rs` [`ReplayStore`] and [`MemoryReplayStore`]; `redis.rs`
//!   `RedisReplayStore`, feature `redis`);
//! - `respond` (the one renderer of rejections, and `AuthError`'s responses);
//! - `authorize` ([`Authorize`], [`RequireScope`], [`Scopes`], and the typed route layers
//!   on `JwksAuth`);
//! - `extract` ([`Claims`], [`SharedClaims`]: what the layer hands to handlers) and
//!   `claims` ([`StandardClaims`]);
//! - `store` (a key source's snapshot, status and what the task reports), `gate` (the
//!   forced-refresh gate: single flight and cooldown, pure),
//!   `status` ([`Status`]), `refresh` (the background task: schedule, backoff, its own
//!   state, its life cycle) and `fetch` (HTTP, discovery, proxies, limits);
//! - `error` ([`AuthError`], [`AuthErrorKind`]; `error/operator.rs`: [`ConfigError`],
//!   [`RefreshError`], [`ReadyError`]) and [`limits`] (every bound, in one place);
//! - `metrics` (feature `metrics`: counters, a histogram and gauges through the `metrics`
//!   facade; empty inline functions without the feature);
//! - `testing` (feature `test-util`: a real loopback identity provider; `key.rs` the
//!   keys, `token.rs` the token builder, `dpop.rs` DPoP client keys and proofs).
//!
//! Outside `src/`: `tests/` has one integration suite per concern (`builder.rs` for how
//! layers are built and share state), with hostile input in `adversarial.rs` (by class)
//! and `properties.rs` (proptest), DPoP in `dpop.rs` and, with feature `redis`, against
//! real Redis servers in `redis.rs`; `interop/` holds the Node run against `jose` and
//! `oidc-provider` (DPoP included) and the Python gRPC check that `.ci/run` starts; `SECURITY.md` is the threat model and what each
//! class of attack gets; `CHANGELOG.md` lists the breaking changes.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod alg;
mod authenticate;
mod authorize;
mod builder;
mod cache;
mod claims;
mod config;
mod crypto;
mod dpop;
mod error;
mod extract;
mod fetch;
mod gate;
mod json;
mod keys;
mod layer;
pub mod limits;
mod metrics;
mod refresh;
mod respond;
mod service;
mod status;
mod store;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod testing;
mod token;
mod verify;

/// The response futures of the crate's services.
pub mod future {
    pub use crate::authorize::AuthorizeFuture;
    pub use crate::service::ResponseFuture;
}

pub use alg::{ALL_ALGORITHMS, Algorithm, DEFAULT_ALGORITHMS};
pub use authorize::{Authorize, AuthorizeService, RequireScope, Scopes};
pub use claims::StandardClaims;
pub use crypto::CRYPTO_BACKEND;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use dpop::redis::RedisReplayStore;
pub use dpop::{Dpop, MemoryReplayStore, ReplayFuture, ReplayKey, ReplayStore, ReplayStoreError};
pub use error::{
    AuthError, AuthErrorKind, ConfigError, ConfigErrorKind, ReadyError, RefreshError,
    RefreshErrorKind,
};
pub use extract::{Claims, MissingClaims, SharedClaims};
pub use keys::{SkipReason, SkippedKey};
pub use layer::JwksAuth;
pub use service::JwksAuthService;
pub use status::Status;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
