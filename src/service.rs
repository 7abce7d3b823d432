//! [`JwksAuthService`]: the middleware service, and its [`ResponseFuture`].
//!
//! The common case, a token whose key is in the snapshot, is decided synchronously in
//! `call`: no await, no allocation of keys (the verified-token cache takes one shard
//! mutex). Only a request that must wait (for the first key set, a forced refresh after
//! an unknown `kid`, or a remote DPoP replay store) takes the boxed, asynchronous path.
//! A rejection is always a response; the inner service's error type is never changed.
//! The outcome is counted once, by the response that leaves the layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};
use http::Request;
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower::Service;

use crate::authenticate::{Authenticator, Pending, Step};
use crate::error::{AuthError, AuthErrorKind};
use crate::extract::Admitted;
use crate::metrics;
use crate::respond::{DPOP_NONCE, Reply, Responder, rerender};
use crate::verify::Scheme;

/// The service produced by [`JwksAuth`](crate::JwksAuth): verifies the bearer token, then
/// calls the inner service with [`Claims<T>`](crate::Claims) in the request extensions.
///
/// Responses are `http::Response<axum::body::Body>` whatever the inner service's body
/// type (it must implement [`HttpBody`] with `Bytes` data): the inner body is wrapped once
/// by `Body::new` (axum's own body is not boxed again), rejections get a small JSON body.
/// Plain tower users get the same type; `axum::body::Body` is a `http_body::Body`.
pub struct JwksAuthService<S, T> {
    inner: S,
    auth: Arc<Authenticator<T>>,
}

impl<S, T> JwksAuthService<S, T> {
    pub(crate) fn new(inner: S, auth: Arc<Authenticator<T>>) -> Self {
        Self { inner, auth }
    }

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

impl<S: Clone, T> Clone for JwksAuthService<S, T> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone(), self.auth.clone())
    }
}

impl<S: fmt::Debug, T> fmt::Debug for JwksAuthService<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwksAuthService")
            .field("inner", &self.inner)
            .field("auth", &self.auth)
            .finish()
    }
}

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for JwksAuthService<S, T>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    T: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S, ReqBody, T>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        self.auth.start();
        let (scheme, step) = self.auth.authenticate(&req);
        let reply = Reply {
            dpop: scheme == Scheme::Dpop,
            nonce: self.auth.nonce(scheme),
            ..Reply::to(req.headers())
        };
        let state = match step {
            Step::Admit(claims) => settle(&self.auth, &mut self.inner, req, Ok(claims), reply),
            Step::Reject(e) => settle(&self.auth, &mut self.inner, req, Err(e), reply),
            Step::Wait(wait) => {
                // The readied service goes into the future; keep a fresh clone here.
                let clone = self.inner.clone();
                State::Waiting {
                    wait,
                    svc: Some(std::mem::replace(&mut self.inner, clone)),
                    req: Some(req),
                    auth: self.auth.clone(),
                    reply: Some(reply),
                }
            }
        };
        ResponseFuture { state }
    }
}

/// Where a request goes once its authentication is decided: into the inner service
/// with its claims, or answered with the rejection.
fn settle<S, B, T>(
    auth: &Arc<Authenticator<T>>,
    svc: &mut S,
    mut req: Request<B>,
    admitted: Result<Option<Arc<T>>, AuthError>,
    reply: Reply,
) -> State<S::Future, S, B, T>
where
    S: Service<Request<B>>,
    T: Send + Sync + 'static,
{
    match admitted {
        Ok(claims) => {
            let with_claims = claims.is_some();
            req.extensions_mut().insert(Admitted::new(
                auth.responder().clone(),
                claims,
                reply.dpop,
            ));
            State::Inner {
                fut: svc.call(req),
                responder: auth.responder().clone(),
                with_claims,
                reply,
            }
        }
        Err(e) => State::Rejected {
            response: Some(auth.responder().respond(e, &reply)),
        },
    }
}

pin_project! {
    /// Response future of [`JwksAuthService`].
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, S, B, T> {
        #[pin]
        state: State<F, S, B, T>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, S, B, T> {
        Inner {
            #[pin]
            fut: F,
            responder: Arc<Responder>,
            // Admitted with claims (else anonymously), for the count.
            with_claims: bool,
            reply: Reply,
        },
        Waiting {
            wait: Pending<T>,
            svc: Option<S>,
            req: Option<Request<B>>,
            auth: Arc<Authenticator<T>>,
            reply: Option<Reply>,
        },
        Rejected {
            response: Option<Response>,
        },
    }
}

impl<F, S, B, T> fmt::Debug for ResponseFuture<F, S, B, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, S, B, T, ResBody, E> Future for ResponseFuture<F, S, B, T>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    S: Service<Request<B>, Future = F, Response = http::Response<ResBody>, Error = E>,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError>,
    T: DeserializeOwned + Send + Sync + Clone + 'static,
{
    type Output = Result<Response, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let mut this = self.as_mut().project();
            let next = match this.state.as_mut().project() {
                StateProj::Inner {
                    fut,
                    responder,
                    with_claims,
                    reply,
                } => {
                    let response = ready!(fut.poll(cx))?;
                    let mut response = match rerender(responder, response, reply) {
                        Ok(rendered) => rendered,
                        Err(response) => response.map(Body::new),
                    };
                    if let Some(nonce) = reply.nonce.take() {
                        response.headers_mut().insert(DPOP_NONCE, nonce);
                    }
                    return Poll::Ready(Ok(counted(response, *with_claims)));
                }
                StateProj::Rejected { response } => {
                    // Polled again after completion: answer 500 rather than panic.
                    let response = response.take().unwrap_or_else(|| {
                        AuthError::from(AuthErrorKind::Misconfigured).into_response()
                    });
                    return Poll::Ready(Ok(counted(response, false)));
                }
                StateProj::Waiting {
                    wait,
                    svc,
                    req,
                    auth,
                    reply,
                } => {
                    let admitted = ready!(wait.as_mut().poll(cx)).map(Some);
                    match (svc.as_mut(), req.take(), reply.take()) {
                        (Some(svc), Some(req), Some(reply)) => {
                            settle(auth, svc, req, admitted, reply)
                        }
                        _ => State::Rejected { response: None },
                    }
                }
            };
            this.state.set(next);
        }
    }
}

/// The one place a request is counted (feature `metrics`; nothing without it), by the
/// response that leaves the layer.
fn counted(response: Response, with_claims: bool) -> Response {
    metrics::response(&response, with_claims);
    response
}
