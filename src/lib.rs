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
//!     .route_layer(auth.require_scopes(["orders:read"]))
//!     .layer(auth);
//!
//! async fn me(Claims(claims): Claims) -> String {
//!     claims.sub.unwrap_or_default()
//! }
//! ```
//!
//! The layer takes the token from the request, verifies it against a key set snapshot
//! that a background task keeps fresh, and hands the verified claims to handlers as
//! [`Claims<T>`] (or [`SharedClaims<T>`], without a copy). `.layer(auth)` on a `Router`
//! also wraps its fallback: an unknown path without a token gets 401, not 404 (use
//! `route_layer` to protect matched routes only).
//!
//! # Using it
//!
//! - **The layer** is [`JwksAuth`]: plain configuration, cheap to clone, no I/O until it
//!   is used; it judges its configuration when applied ([`JwksAuth::validate`]) and
//!   reports its key sets in [`JwksAuth::status`] and [`JwksAuth::ready`]. Key sources:
//!   [`JwksAuth::new`] (a JWKS URL), [`JwksAuth::from_issuer`] (OpenID discovery),
//!   [`JwksAuth::multi_issuer`] ([`TrustedIssuer`]s, and [`IssuerRule`]s for tenants
//!   whose issuers follow a template: see the `tenants` module's rules below),
//!   [`JwksAuth::from_jwks`] (fixed).
//! - **Claims**: [`StandardClaims`] by default, your own type with [`JwksAuth::claims`].
//!   `Option<Claims<T>>` is `None` only behind an [`optional`](JwksAuth::optional) layer.
//! - **Authorization**: route layers made by the layer, typed to its claims
//!   ([`JwksAuth::require_scopes`], [`JwksAuth::require_any_scope`],
//!   [`JwksAuth::authorize`], [`JwksAuth::authorize_with`]); [`Scopes`] in handlers
//!   (`claims.require_scopes([..])?`); [`JwksAuth::check`] for every route.
//! - **Where the token comes from**: [`TokenSource`]s ([`JwksAuth::token_sources`]); two
//!   different tokens in one request are a 400.
//! - **Responses**: one renderer for the layer's rejections, the route layers' and a
//!   handler's [`AuthError`], with the [`realm`](JwksAuth::realm) and your
//!   [`on_rejection`](JwksAuth::on_rejection) hook; gRPC calls get gRPC statuses.
//! - **DPoP** (RFC 9449): [`JwksAuth::dpop`] with a [`Dpop`]; see the [`dpop`] module.
//! - **Protected Resource Metadata** (RFC 9728, the MCP authorization spec):
//!   [`JwksAuth::protected_resource`] with a [`ResourceMetadata`]: the document at its
//!   well-known URLs ([`JwksAuth::resource_metadata_router`]), `resource_metadata` in
//!   every challenge, the resource as the required audience.
//! - **Opaque tokens** (RFC 7662): [`JwksAuth::introspection`] with an [`Introspection`]:
//!   the answer judged like a token's claims, a cache bounded by `exp` and a maximum
//!   (what a cached accept can outlive: a revocation, for at most that maximum), a budget
//!   of calls that a flood cannot exceed; signed answers (RFC 9701) verified with the key
//!   set.
//! - **Outside HTTP**: [`JwksAuth::verify`] checks one token with the same rules.
//! - **Mistakes are loud**: a configuration mistake (no audience, no issuer, DPoP without
//!   a base URL, …) stops the service when the layer is applied, naming the fix; a wiring
//!   mistake (a route layer outside the auth layer, an extractor or route layer for
//!   another claims type, `Option<Claims<T>>` on a route no layer ran on) is a 500 with
//!   one ERROR naming the fix; claims that do not fit `T` are a WARN naming the field.
//!
//! # Responses (RFC 6750)
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no credentials (no `Authorization`, or another scheme) | 401 | `Bearer` (+ `realm`) |
//! | malformed header: `Bearer` without token, two tokens, two `Authorization` headers, bad characters | 400 | `Bearer error="invalid_request"` |
//! | bad token: signature, expired, `nbf`, `iss`/`aud`/`typ`, unknown `kid` after refresh, encoding, claims | 401 | `Bearer error="invalid_token", error_description="…"` |
//! | missing scope, or a role/claims check refused | 403 | `Bearer error="insufficient_scope"` (+ `scope="…"`) |
//! | no usable key set (never fetched, stale past `max_stale`), replay store down | 503 | none; `Retry-After` |
//! | wiring mistake (a route layer for another claims type) | 500 | none; an ERROR in the log |
//!
//! Bodies are small JSON (`{"error":…,"error_description":…}`) with fixed descriptions:
//! nothing from the request is echoed. Every [`AuthErrorKind`] has one row of facts
//! (status, gRPC code, RFC 6750 `error`, a stable [`as_str`](AuthErrorKind::as_str)
//! code: the [stable codes](AuthErrorKind#stable-codes) table); the [`AuthError`] rides
//! in the response's extensions for outer layers to log.
//!
//! # Verification rules
//!
//! Fail closed, cheapest checks first, the token parsed once:
//!
//! - at most 16 KiB ([`JwksAuth::max_token_len`]) before any decoding; three strict
//!   base64url segments; header and payload JSON objects without duplicate members;
//! - `alg` in the allow-list ([`DEFAULT_ALGORITHMS`]; `none` and HS* are not even
//!   [`Algorithm`]s) *and* fitting the key's type, curve and `alg`; `jku`, `x5u`, `jwk`
//!   and `x5c` never find a key; any `crit` and any JWE are rejected;
//! - the key by `kid` in a prebuilt map, no fallback on a mismatch; a token without `kid`
//!   tries at most [`limits::MAX_KIDLESS_CANDIDATES`] keys fitting its algorithm;
//! - `exp` required, `nbf` checked, leeway 60 s; `iss` and `aud` required and exact
//!   (giving either up is an explicit, named call); claims
//!   of the wrong JSON type are invalid, never absent; `nbf` after `exp` is invalid; a
//!   `null` required claim is missing; a token carrying `cnf` is refused as a bearer
//!   token (RFC 9449 §7.2, RFC 8705).
//!
//! # Keys, refresh and the cache
//!
//! The key set is an immutable snapshot (`ArcSwap`), each JWK parsed on its own: an
//! unusable key is skipped and reported ([`SkipReason`]). A task refreshes it on a
//! schedule with conditional requests and backoff, and an unknown `kid` forces one
//! refresh per cooldown, which the request waits for; after `max_stale` without a good
//! refresh, requests get 503. Every knob and default is on [`Refresh`]. HTTP: https
//! except loopback, no redirects, body cap, proxies from the environment but never for
//! loopback. The task ends with the last clone of the layer.
//!
//! Verified tokens are cached (on by default, [`JwksAuth::cache`]): a hit compares the
//! whole token, re-checks `exp`/`nbf`, needs its key still in the set and runs the
//! check again; memory is bounded by entries and bytes ([`limits::CACHE_BYTES`]).
//!
//! # Defaults
//!
//! | setting | default | method |
//! |---|---|---|
//! | algorithms | [`DEFAULT_ALGORITHMS`] | [`JwksAuth::algorithms`] |
//! | leeway | 60 s | [`JwksAuth::leeway`] |
//! | issuer / audience | required (a configuration error without them) | [`JwksAuth::issuer`], [`JwksAuth::audience`]; opt-outs [`JwksAuth::accept_any_issuer`], [`JwksAuth::accept_any_audience`] |
//! | max token size | 16 KiB | [`JwksAuth::max_token_len`] |
//! | token source | `Authorization: Bearer` | [`JwksAuth::token_sources`] |
//! | refresh | 5 min ±10 %, cooldown 30 s, stale after 24 h, fetch 5 s | [`JwksAuth::refresh`] |
//! | plain http | loopback only | [`Refresh::allow_http`] |
//! | verified-token cache | on: 10,000 entries, 16 MiB | [`JwksAuth::cache`] |
//! | DPoP | off | [`JwksAuth::dpop`] |
//! | introspection | off; when on: opaque tokens only, answers cached ≤ 60 s, a burst of 100 calls then 50/s, 16 in flight | [`JwksAuth::introspection`] |
//! | issuer-rule tenants | at most 1,000 key stores; new ones: a burst of 30, then 3/s | [`Refresh::tenant_stores`], [`Refresh::new_tenants`] |
//!
//! # Tenants by rule
//!
//! [`IssuerRule`]s (on [`JwksAuth::multi_issuer`], beside fixed issuers) trust issuers
//! that follow a template (`https://kc.example.com/realms/{realm}`), each tenant's keys
//! found on first use. A placeholder is a whole path segment or host label and matches
//! letters, digits, `-`, `_`, `.` only (never `/`, `@`, `:`, `%`, `.`/`..`), the token's
//! `iss` must be the expansion exactly, and the origin is the template's: a token cannot
//! steer a fetch elsewhere (no SSRF). A token matching no issuer and no rule, or refused
//! by the rule's [`allow`](IssuerRule::allow) predicate, is a 401 with no I/O. Key stores
//! are made on first use, at most [`Refresh::tenant_stores`] live (least recently used
//! out), and making one is charged to a budget ([`Refresh::new_tenants`]): past it a new
//! tenant's token gets 503 with `Retry-After` at once, while known tenants keep working.
//! [`IssuerRule::shared_keys`] is Entra ID's shape (one key set, keys naming their
//! issuer, `tid` checked). `testing::TenantIssuer` serves many tenants for your tests.
//!
//! # Features
//!
//! `aws_lc_rs` (default) or `rust_crypto`: the signature backend, called directly (no
//! process-wide default to panic on). `metrics` (default): counters, histograms and
//! gauges through the [`metrics`](https://docs.rs/metrics) facade, each request counted
//! once by its final outcome; without a recorder installed they cost little, and
//! without the feature nothing. `redis`: a DPoP replay store
//! shared by replicas. `test-util`: [`testing`], a real loopback identity provider.
//!
//! # Layout
//!
//! One concept per file, modules a DAG; `ARCHITECTURE.md` is the map (the request path,
//! the task). `layer` and `builder` ([`JwksAuth`]), `config` (the configuration and
//! `validate`), `service` and `authorize` (the services and [`future`]s),
//! `authenticate` (the one-pass pipeline), `token` (credentials), `verify` on `json` and
//! `alg` (the token rules), `keys` and `crypto` (the key set), `cache` on `shards`, `budget` (the token bucket), `dpop` (DPoP),
//! `respond` (the renderer), `resource` (RFC 9728 metadata), `extract` and `claims` (what handlers get), `store`, `gate`,
//! `status`, `refresh`, `refresh_config` ([`Refresh`]) and `fetch` (key sets and their task), `key_stores` (a layer's
//! stores and the choice of one for a token), `tenants` (issuer rules: `template`, and
//! `stores`, the bounded set and its budget), `introspect` (opaque tokens, RFC 7662, and
//! its `cache` of answers), `error` and `diagnose` (logs
//! that cannot flood), [`limits`],
//! `metrics`, [`testing`].

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod alg;
mod authenticate;
mod authorize;
mod budget;
mod builder;
mod cache;
mod claims;
mod config;
mod crypto;
mod diagnose;
pub mod dpop;
mod error;
mod extract;
mod fetch;
mod gate;
mod introspect;
mod json;
mod key_stores;
mod keys;
mod layer;
pub mod limits;
mod metrics;
mod refresh;
mod refresh_config;
mod resource;
mod respond;
mod service;
mod shards;
mod status;
mod store;
mod tenants;
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

pub use alg::{Algorithm, DEFAULT_ALGORITHMS};
pub use authorize::{Authorize, AuthorizeService};
pub use claims::{ScopeHierarchy, Scopes, StandardClaims};
pub use config::TrustedIssuer;
pub use dpop::Dpop;
pub use error::{
    AuthError, AuthErrorKind, ConfigError, ConfigErrorKind, ReadyError, RefreshError,
    RefreshErrorKind,
};
pub use extract::{Claims, MissingClaims, SharedClaims};
pub use introspect::Introspection;
pub use keys::{SkipReason, SkippedKey};
pub use layer::JwksAuth;
pub use refresh_config::Refresh;
pub use resource::ResourceMetadata;
pub use service::JwksAuthService;
pub use status::{IntrospectionStatus, Status};
pub use tenants::{IssuerRule, Tenant};
pub use token::TokenSource;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
