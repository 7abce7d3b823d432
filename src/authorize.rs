//! Per-route authorization on verified claims: [`Authorize`], made by the layer.
//!
//! (The public documentation is on [`Authorize`].)

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};
use http::Request;
use pin_project_lite::pin_project;
use tower::Service;
use tower_layer::Layer;

use crate::claims::{ScopeHierarchy, Scopes, StandardClaims, demand_in};
use crate::error::{AuthError, AuthErrorKind};
use crate::extract::{Admitted, Missing, MissingClaims};
use crate::layer::JwksAuth;
use crate::respond::{Reply, Responder};

/// A [`Layer`] that lets a request through only if its verified claims pass a check.
///
/// These layers go *inside* a [`JwksAuth`](crate::JwksAuth) layer (axum's `route_layer`
/// on a router that `JwksAuth` wraps, or a `.layer` closer to the handler). They read the
/// [`Claims<T>`](crate::Claims) that `JwksAuth` put in the request extensions and answer 403 when the
/// check fails:
///
/// They are made by the layer, typed to its claims type, so a route layer for another
/// claims type cannot be taken from it:
///
/// - [`JwksAuth::require_scopes`] / [`JwksAuth::require_any_scope`]: scopes from
///   [`Scopes`], exact and case-sensitive; 403 `insufficient_scope` with `scope="…"`
///   naming what is required;
/// - [`JwksAuth::authorize`]: any yes/no test on the claims (roles, tenant, …); 403
///   `insufficient_scope` without a `scope` attribute;
/// - [`JwksAuth::authorize_with`]: the escape hatch, a check returning the
///   [`AuthError`] to answer with.
///
/// A request an [`optional`](crate::JwksAuth::optional) layer let through without a
/// token is answered 401. Every answer (401 and 403) goes through the layer's renderer:
/// its `realm`, its [`on_rejection`](crate::JwksAuth::on_rejection) hook, the scheme the
/// request used.
///
/// A route layer that runs before any `JwksAuth` layer (in axum, `.route_layer(..)`
/// called after `.layer(auth)` wraps the auth layer instead of being wrapped by it) is a
/// wiring mistake: 500 and one ERROR naming the fix, never a misleading 401.
///
/// A route layer taken from one layer but placed under a layer of another claims type is
/// a wiring mistake: it answers 500 and logs an ERROR naming both types, never a
/// misleading 401.
///
/// # Example
///
/// ```
/// use axum::{routing::{get, post}, Router};
/// use jwks_auth::JwksAuth;
///
/// let auth = JwksAuth::new("https://idp.example/jwks.json")
///     .issuer("https://idp.example/")
///     .audience("orders-api");
/// let orders: Router = Router::new()
///     .route("/orders", post(|| async { "created" }))
///     .route_layer(auth.require_scopes(["orders:write"]));
/// let admin: Router = Router::new()
///     .route("/admin", get(|| async { "hello admin" }))
///     .route_layer(auth.authorize(|c| {
///         c.extra.get("roles").and_then(|r| r.as_array()).is_some_and(|r| r.iter().any(|r| r == "admin"))
///     }));
/// let app: Router = orders.merge(admin).layer(auth);
/// ```
#[must_use = "a layer does nothing until it wraps a service"]
pub struct Authorize<T = StandardClaims> {
    check: RouteCheck<T>,
}

/// A route layer's check: the claims, and the admitting layer's scope hierarchy.
type RouteCheck<T> =
    Arc<dyn Fn(&T, Option<&ScopeHierarchy>) -> Result<(), AuthError> + Send + Sync>;

impl<T> Clone for Authorize<T> {
    fn clone(&self) -> Self {
        Self {
            check: self.check.clone(),
        }
    }
}

impl<T> fmt::Debug for Authorize<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorize")
            .field("claims", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Send + Sync + 'static> Authorize<T> {
    fn new<F>(check: F) -> Self
    where
        F: Fn(&T) -> Result<(), AuthError> + Send + Sync + 'static,
    {
        Self {
            check: Arc::new(move |claims, _| check(claims)),
        }
    }
}

/// Route layers typed to the layer's claims type: a mismatch between the route layer and
/// the layer above it cannot compile.
impl<T: Send + Sync + 'static> JwksAuth<T> {
    /// A route layer that lets a request through when `test` accepts its claims, and
    /// answers 403 ([`AuthErrorKind::AccessDenied`]) otherwise; typed to this layer's
    /// claims.
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use jwks_auth::JwksAuth;
    ///
    /// #[derive(Clone, serde::Deserialize)]
    /// struct MyClaims { roles: Vec<String> }
    ///
    /// let auth = JwksAuth::new("https://idp.example/jwks.json")
    ///     .issuer("https://idp.example/")
    ///     .audience("orders-api")
    ///     .claims::<MyClaims>();
    /// let app: Router = Router::new()
    ///     .route("/admin", get(|| async { "admin" }))
    ///     .route_layer(auth.authorize(|c| c.roles.iter().any(|r| r == "admin")))
    ///     .layer(auth);
    /// ```
    pub fn authorize<F>(&self, test: F) -> Authorize<T>
    where
        F: Fn(&T) -> bool + Send + Sync + 'static,
    {
        Authorize::new(move |claims| {
            if test(claims) {
                Ok(())
            } else {
                Err(AuthErrorKind::AccessDenied.into())
            }
        })
    }

    /// A route layer running `check` on the claims, answering with the [`AuthError`] it
    /// returns; typed to this layer's claims.
    pub fn authorize_with<F>(&self, check: F) -> Authorize<T>
    where
        F: Fn(&T) -> Result<(), AuthError> + Send + Sync + 'static,
    {
        Authorize::new(check)
    }

    /// A route layer requiring every one of `scopes` (403 `insufficient_scope` naming
    /// them otherwise); typed to this layer's claims, which implement [`Scopes`].
    pub fn require_scopes(
        &self,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Authorize<T>
    where
        T: Scopes,
    {
        scope_layer(scopes, true)
    }

    /// A route layer requiring at least one of `scopes`; typed to this layer's claims.
    pub fn require_any_scope(
        &self,
        scopes: impl IntoIterator<Item = impl Into<String>>,
    ) -> Authorize<T>
    where
        T: Scopes,
    {
        scope_layer(scopes, false)
    }
}

/// A route layer requiring `scopes` (`all`, or any), with the scope hierarchy of the
/// layer that admitted the request (read at request time: the order of builder calls
/// does not matter).
fn scope_layer<T: Scopes + Send + Sync + 'static>(
    scopes: impl IntoIterator<Item = impl Into<String>>,
    all: bool,
) -> Authorize<T> {
    let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
    Authorize {
        check: Arc::new(move |claims: &T, hierarchy| demand_in(hierarchy, claims, &scopes, all)),
    }
}

impl<S, T> Layer<S> for Authorize<T> {
    type Service = AuthorizeService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthorizeService {
            inner,
            check: self.check.clone(),
            _claims: PhantomData,
        }
    }
}

/// The service produced by [`Authorize`].
pub struct AuthorizeService<S, T> {
    inner: S,
    check: RouteCheck<T>,
    _claims: PhantomData<fn() -> T>,
}

impl<S, T> AuthorizeService<S, T> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming this one.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, T> Clone for AuthorizeService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            check: self.check.clone(),
            _claims: PhantomData,
        }
    }
}

impl<S: fmt::Debug, T> fmt::Debug for AuthorizeService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for AuthorizeService<S, T>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    T: Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = AuthorizeFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let admitted = req.extensions().get::<Admitted>();
        let claims = admitted.and_then(Admitted::claims::<T>);
        let verdict = match (&claims, admitted) {
            (Some(claims), a) => {
                (self.check)(claims, a.and_then(|a| a.responder.scopes.as_deref()))
            }
            // Anonymous, behind an optional layer: unauthenticated.
            (None, Some(a)) if !a.other_type::<T>() => {
                Err(AuthErrorKind::MissingCredentials.into())
            }
            // Wiring mistakes, not the client's: 500, and one ERROR naming the fix.
            (None, Some(a)) => {
                return refused(MissingClaims::new::<T>(Missing::OtherType(
                    a.responder.claims_type,
                )));
            }
            (None, None) => return refused(MissingClaims::new::<T>(Missing::RouteLayerOutside)),
        };
        match verdict {
            Ok(()) => AuthorizeFuture {
                state: AuthorizeState::Inner {
                    fut: self.inner.call(req),
                },
            },
            Err(error) => {
                tracing::debug!(
                    kind = error.kind().as_str(),
                    "jwks-auth: request refused by an authorization check"
                );
                // Told as the layer above tells its own rejections: its realm, its hook,
                // the scheme the request used. Counted once, by that layer.
                let reply = Reply {
                    dpop: admitted.is_some_and(|a| a.dpop),
                    ..Reply::to(req.headers())
                };
                let response = match admitted {
                    Some(a) => a.responder.respond(error, &reply),
                    None => Responder::default().respond(error, &reply),
                };
                AuthorizeFuture {
                    state: AuthorizeState::Refused {
                        response: Some(response),
                    },
                }
            }
        }
    }
}

/// A route layer's answer without calling the inner service.
fn refused<F>(missing: MissingClaims) -> AuthorizeFuture<F> {
    AuthorizeFuture {
        state: AuthorizeState::Refused {
            response: Some(missing.into_response()),
        },
    }
}

pin_project! {
    /// Response future of [`AuthorizeService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct AuthorizeFuture<F> {
        #[pin]
        state: AuthorizeState<F>,
    }
}

pin_project! {
    #[project = AuthorizeProj]
    enum AuthorizeState<F> {
        Inner {
            #[pin]
            fut: F,
        },
        Refused {
            response: Option<Response>,
        },
    }
}

impl<F> fmt::Debug for AuthorizeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeFuture").finish_non_exhaustive()
    }
}

impl<F, ResBody, E> Future for AuthorizeFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            AuthorizeProj::Inner { fut } => fut.poll(cx).map(|r| r.map(|res| res.map(Body::new))),
            AuthorizeProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| AuthError::from(AuthErrorKind::AccessDenied).into_response()))),
        }
    }
}
