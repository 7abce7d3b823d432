//! [`JwksAuthService`]: the middleware service, and its [`ResponseFuture`].
//!
//! The common case, a token whose key is in the snapshot, is decided synchronously in
//! `call`: no lock, no await, no allocation of keys. Only a request that must wait (for
//! the first key set, or a forced refresh after an unknown `kid`) takes the boxed,
//! asynchronous path. A rejection is always a response; the inner service's error type
//! is never changed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::BoxError;
use axum::body::{Body, Bytes, HttpBody};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request};
use pin_project_lite::pin_project;
use serde::de::DeserializeOwned;
use tower::Service;

use crate::authenticate::{Authenticator, Decision, Pending};
use crate::error::AuthError;
use crate::respond::{DPOP_NONCE, Responder, is_grpc, rerender};

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

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let auth = &self.auth;
        auth.start();
        let grpc = is_grpc(req.headers());
        match auth.decide(&req) {
            Decision::Accept(claims) => {
                auth.admit(&mut req, Some(claims));
                ResponseFuture::inner(self.inner.call(req), auth.responder().clone(), grpc, None)
            }
            Decision::Anonymous => {
                auth.admit(&mut req, None);
                ResponseFuture::inner(self.inner.call(req), auth.responder().clone(), grpc, None)
            }
            Decision::Reject(e) => ResponseFuture {
                state: State::Rejected {
                    response: Some(auth.respond(e, grpc)),
                },
            },
            Decision::Wait(wait) => {
                // The readied service goes into the future; keep a fresh clone here.
                let clone = self.inner.clone();
                let svc = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Waiting {
                        wait,
                        svc: Some(svc),
                        req: Some(req),
                        auth: self.auth.clone(),
                    },
                }
            }
        }
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
            grpc: bool,
            // A `DPoP-Nonce` for the response.
            nonce: Option<HeaderValue>,
        },
        Waiting {
            wait: Pending<T>,
            svc: Option<S>,
            req: Option<Request<B>>,
            auth: Arc<Authenticator<T>>,
        },
        Rejected {
            response: Option<Response>,
        },
    }
}

impl<F, S, B, T> ResponseFuture<F, S, B, T> {
    fn inner(fut: F, responder: Arc<Responder>, grpc: bool, nonce: Option<HeaderValue>) -> Self {
        Self {
            state: State::Inner {
                fut,
                responder,
                grpc,
                nonce,
            },
        }
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
                    grpc,
                    nonce,
                } => {
                    let response = ready!(fut.poll(cx))?;
                    let mut response = match rerender(responder, response, *grpc) {
                        Ok(rendered) => rendered,
                        Err(response) => response.map(Body::new),
                    };
                    if let Some(nonce) = nonce.take() {
                        response.headers_mut().insert(DPOP_NONCE, nonce);
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Rejected { response } => {
                    // Polled again after completion: answer 503 rather than panic.
                    return Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                        AuthError::unavailable(std::time::Duration::from_secs(1)).into_response()
                    })));
                }
                StateProj::Waiting {
                    wait,
                    svc,
                    req,
                    auth,
                } => {
                    let verdict = ready!(wait.as_mut().poll(cx));
                    match (verdict, svc.take(), req.take()) {
                        (Ok((claims, nonce)), Some(mut svc), Some(mut req)) => {
                            auth.admit(&mut req, Some(claims));
                            let grpc = is_grpc(req.headers());
                            State::Inner {
                                fut: svc.call(req),
                                responder: auth.responder().clone(),
                                grpc,
                                nonce,
                            }
                        }
                        (Err(e), _, req) => State::Rejected {
                            response: Some(
                                auth.respond(e, req.as_ref().is_some_and(|r| is_grpc(r.headers()))),
                            ),
                        },
                        _ => State::Rejected { response: None },
                    }
                }
            };
            this.state.set(next);
        }
    }
}
