//! What the layer hands to handlers: the [`Claims<T>`] and [`SharedClaims<T>`] extractors.
//!
//! The layer puts one private value in the extensions of every request it lets through:
//! the verified claims (shared, never copied by the layer: a cache hit hands out the same
//! allocation) and the layer's renderer, for the route layers behind it. [`Claims<T>`]
//! clones the claims out of it; [`SharedClaims<T>`] takes a reference-counted handle
//! without copying. Outside axum (a tonic handler, a plain tower service) read them with
//! [`Claims::from_extensions`] or [`SharedClaims::from_extensions`].
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use jwks_auth::{Claims, JwksAuth};
//! use serde::Deserialize;
//!
//! #[derive(Clone, Deserialize)]
//! struct MyClaims {
//!     sub: String,
//!     tenant: String,
//! }
//!
//! async fn me(Claims(claims): Claims<MyClaims>) -> String {
//!     format!("{} of {}", claims.sub, claims.tenant)
//! }
//!
//! async fn maybe(claims: Option<Claims>) -> String {
//!     claims.and_then(|Claims(c)| c.sub).unwrap_or_else(|| "anonymous".into())
//! }
//!
//! let api: Router = Router::new()
//!     .route("/me", get(me))
//!     .layer(JwksAuth::from_issuer("https://idp.example").audience("api").claims::<MyClaims>());
//! let public: Router = Router::new()
//!     .route("/maybe", get(maybe))
//!     .layer(JwksAuth::from_issuer("https://idp.example").audience("api").optional());
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{Extensions, StatusCode};

use crate::claims::StandardClaims;
use crate::respond::Responder;

/// What the layer puts in an admitted request: its renderer, the claims unless the
/// request is anonymous (behind an `optional` layer), and whether it used the DPoP
/// scheme (later rejections are told in it).
#[derive(Clone)]
pub(crate) struct Admitted {
    pub(crate) responder: Arc<Responder>,
    pub(crate) claims: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) dpop: bool,
}

impl fmt::Debug for Admitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admitted")
            .field("responder", &self.responder)
            .field("claims", &self.claims.is_some())
            .field("dpop", &self.dpop)
            .finish()
    }
}

impl Admitted {
    pub(crate) fn new<T: Send + Sync + 'static>(
        responder: Arc<Responder>,
        claims: Option<Arc<T>>,
        dpop: bool,
    ) -> Self {
        Self {
            responder,
            claims: claims.map(|c| c as Arc<dyn Any + Send + Sync>),
            dpop,
        }
    }

    /// The claims, if the request has claims of type `T`.
    pub(crate) fn claims<T: Send + Sync + 'static>(&self) -> Option<Arc<T>> {
        self.claims.clone()?.downcast::<T>().ok()
    }

    /// Whether the layer produces claims of another type than `T` (a wiring mistake).
    pub(crate) fn other_type<T>(&self) -> bool {
        self.responder.claims_type != std::any::type_name::<T>()
    }
}

/// The claims of type `T` in `extensions`, if the layer put them there.
fn shared<T: Send + Sync + 'static>(extensions: &Extensions) -> Option<Arc<T>> {
    extensions.get::<Admitted>()?.claims::<T>()
}

/// The claims of type `T` for an extractor: `Ok(None)` only for a request an `optional`
/// layer let through anonymously; a wiring mistake is the 500, logged once.
fn extract<T: Send + Sync + 'static>(
    extensions: &Extensions,
    optional: bool,
) -> Result<Option<Arc<T>>, MissingClaims> {
    let admitted = extensions.get::<Admitted>();
    let why = match admitted {
        Some(a) => match a.claims::<T>() {
            Some(claims) => return Ok(Some(claims)),
            None if a.other_type::<T>() => Missing::OtherType(a.responder.claims_type),
            None if optional => return Ok(None),
            None => Missing::Anonymous,
        },
        None => Missing::NoLayer,
    };
    Err(MissingClaims::new::<T>(why))
}

/// Verified claims of the request's token, from [`JwksAuth`](crate::JwksAuth).
///
/// As an extractor it clones the claims (use [`SharedClaims<T>`] to share them without
/// copying). `Option<Claims<T>>` is `None` only for a request an
/// [`optional`](crate::JwksAuth::optional) layer let through without a token.
///
/// A wiring mistake is answered 500 with one ERROR in the log (per distinct mistake)
/// naming the fix, never a silent `None` or a misleading 401: no `JwksAuth` layer ran on
/// the route, the layer produces another claims type than `T` (both are named), or
/// `Claims<T>` (not `Option`) behind an optional layer got an anonymous request.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub struct Claims<T = StandardClaims>(pub T);

impl<T: Clone + Send + Sync + 'static> Claims<T> {
    /// The claims the layer put in these extensions (a tonic `Request::extensions()`, an
    /// `http::Request`'s), if any.
    ///
    /// In a tonic service behind the layer (see `examples/grpc_api.rs`):
    ///
    /// ```
    /// use jwks_auth::{Claims, StandardClaims};
    ///
    /// fn subject<T>(request: &tonic::Request<T>) -> Result<String, tonic::Status> {
    ///     let Claims(claims) = Claims::<StandardClaims>::from_extensions(request.extensions())
    ///         .ok_or_else(|| tonic::Status::unauthenticated("no verified claims"))?;
    ///     Ok(claims.sub.unwrap_or_default())
    /// }
    /// ```
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        shared::<T>(extensions).map(|c| Claims(T::clone(&c)))
    }
}

impl<T> std::ops::Deref for Claims<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Claims<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<S, T> FromRequestParts<S> for Claims<T>
where
    T: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = extract::<T>(&parts.extensions, false)?;
        claims
            .map(|c| Claims(T::clone(&c)))
            .ok_or_else(|| MissingClaims::new::<T>(Missing::Anonymous))
    }
}

impl<S, T> OptionalFromRequestParts<S> for Claims<T>
where
    T: Clone + Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let claims = extract::<T>(&parts.extensions, true)?;
        Ok(claims.map(|c| Claims(T::clone(&c))))
    }
}

/// Verified claims shared with the layer (and its cache) instead of copied: the same
/// as [`Claims<T>`] for handlers that want no clone of the claims.
///
/// ```
/// use jwks_auth::SharedClaims;
///
/// async fn whoami(claims: SharedClaims) -> String {
///     claims.sub.clone().unwrap_or_default()
/// }
/// ```
#[derive(Debug)]
#[must_use]
pub struct SharedClaims<T = StandardClaims>(pub Arc<T>);

impl<T> Clone for SharedClaims<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Send + Sync + 'static> SharedClaims<T> {
    /// The claims the layer put in these extensions, if any.
    pub fn from_extensions(extensions: &Extensions) -> Option<Self> {
        shared::<T>(extensions).map(SharedClaims)
    }
}

impl<T> std::ops::Deref for SharedClaims<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<S, T> FromRequestParts<S> for SharedClaims<T>
where
    T: Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let claims = extract::<T>(&parts.extensions, false)?;
        claims
            .map(SharedClaims)
            .ok_or_else(|| MissingClaims::new::<T>(Missing::Anonymous))
    }
}

impl<S, T> OptionalFromRequestParts<S> for SharedClaims<T>
where
    T: Send + Sync + 'static,
    S: Send + Sync,
{
    type Rejection = MissingClaims;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(extract::<T>(&parts.extensions, true)?.map(SharedClaims))
    }
}

/// Why an extractor found no claims: each a wiring mistake of the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Missing {
    /// No `JwksAuth` layer ran on this route.
    NoLayer,
    /// The layer produces claims of this other type.
    OtherType(&'static str),
    /// `Claims<T>`, not `Option`, and an optional layer let the request through
    /// without a token.
    Anonymous,
    /// A route layer ran before any `JwksAuth` layer (added after it, so outside it).
    RouteLayerOutside,
}

/// Rejection of [`Claims<T>`] and [`SharedClaims<T>`] when the request carries no claims
/// of that type: a server-side wiring mistake, answered with 500 (and logged as an ERROR
/// naming the fix, once per distinct mistake).
#[derive(Debug, Clone)]
pub struct MissingClaims {
    type_name: &'static str,
    why: Missing,
}

impl MissingClaims {
    /// The rejection, logged once per distinct mistake.
    pub(crate) fn new<T>(why: Missing) -> Self {
        let missing = MissingClaims {
            type_name: std::any::type_name::<T>(),
            why,
        };
        crate::diagnose::once(("claims", missing.type_name, why), || {
            tracing::error!("jwks-auth: {missing}");
        });
        missing
    }

    /// The status of the response: 500.
    pub fn status(&self) -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }

    /// The body of the response (it does not name the type, which stays in the log).
    pub fn body_text(&self) -> &'static str {
        "internal server error"
    }
}

impl fmt::Display for MissingClaims {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.type_name;
        match self.why {
            Missing::NoLayer => write!(
                f,
                "Claims<{t}> requested on a route no JwksAuth layer ran on: wrap the route with \
                 .layer(auth) (or .route_layer(auth)), with auth built with .claims::<{t}>()"
            ),
            Missing::OtherType(layer) => write!(
                f,
                "Claims<{t}> requested, but the JwksAuth layer produces Claims<{layer}>: extract \
                 Claims<{layer}>, or build the layer with .claims::<{t}>()"
            ),
            Missing::Anonymous => write!(
                f,
                "Claims<{t}> requested behind an .optional() layer that let a request through \
                 without a token: take Option<Claims<{t}>> there"
            ),
            Missing::RouteLayerOutside => write!(
                f,
                "a route layer checking Claims<{t}> ran before any JwksAuth layer: add it with \
                 .route_layer(..) before .layer(auth) (a layer wraps only what is already on \
                 the router), or put it on a router that .layer(auth) wraps"
            ),
        }
    }
}

impl std::error::Error for MissingClaims {}

impl IntoResponse for MissingClaims {
    fn into_response(self) -> Response {
        (self.status(), self.body_text()).into_response()
    }
}
