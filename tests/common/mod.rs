//! Helpers shared by the integration tests: a router with a counting handler, and a
//! one-shot request that returns what a client would see.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::get;
use jwks_auth::{Claims, JwksAuth};
use tower::ServiceExt;

pub mod example;
#[cfg(feature = "redis")]
pub mod redis;

/// Resident memory of this process, in bytes (Linux).
pub fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// Runs `work` on a current-thread runtime with a Prometheus recorder local to this
/// thread (the runtime keeps everything on it), and returns the recorder's scrape.
pub fn scrape(work: impl std::future::Future<Output = ()>) -> String {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    metrics::with_local_recorder(&recorder, || runtime.block_on(work));
    handle.render()
}

/// The value of the first series of a Prometheus scrape whose line starts with `prefix`.
pub fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse::<f64>().expect("a number"))
}

/// Unpadded base64url, as JWS segments are encoded.
pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Counts how many requests reached the handler.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// `GET /me` returns the subject; counts the calls.
pub fn app(auth: JwksAuth) -> (Router, Hits) {
    app_at(auth, &["/me"])
}

/// [`app`] with the same handler on each of these routes.
pub fn app_at(auth: JwksAuth, routes: &[&str]) -> (Router, Hits) {
    let hits = Hits::default();
    let mut router = Router::new();
    for route in routes {
        let h = hits.clone();
        router = router.route(
            route,
            get(move |Claims(c): Claims| {
                let h = h.clone();
                async move {
                    h.0.fetch_add(1, Ordering::SeqCst);
                    c.sub.unwrap_or_default()
                }
            }),
        );
    }
    (router.layer(auth), hits)
}

/// What came back.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn challenge(&self) -> Option<&str> {
        self.headers
            .get("www-authenticate")
            .map(|v| v.to_str().expect("challenge is visible ASCII"))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

pub async fn send_request(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// `GET /me` with `Authorization: Bearer {token}`.
pub async fn send(app: &Router, token: &str) -> Reply {
    send_auth(app, &[format!("Bearer {token}").as_bytes()]).await
}

/// `GET /me` with these raw `Authorization` values.
pub async fn send_auth(app: &Router, values: &[&[u8]]) -> Reply {
    let mut request = Request::get("/me");
    for v in values {
        request = request.header("authorization", *v);
    }
    send_request(app, request.body(Body::empty()).unwrap()).await
}

/// A 401 `invalid_token` with a fixed description, nothing of the request echoed.
#[track_caller]
pub fn assert_invalid_token(reply: &Reply, description: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(
        reply.challenge(),
        Some(
            format!(r#"Bearer error="invalid_token", error_description="{description}""#).as_str()
        ),
        "{reply:?}"
    );
    assert_eq!(reply.json()["error"], "invalid_token");
}

/// The panic message of applying a misconfigured layer (it must panic).
#[allow(dead_code)]
pub fn panic_of_applying<T>(auth: JwksAuth<T>) -> String
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    let applied = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Router = Router::new().route("/", get(|| async { "" })).layer(auth);
    }));
    let Err(panic) = applied else {
        panic!("a misconfigured layer was applied without a panic");
    };
    match panic.downcast::<String>() {
        Ok(message) => *message,
        Err(panic) => panic
            .downcast::<&str>()
            .map_or_else(|_| String::new(), |m| (*m).to_owned()),
    }
}

/// The events logged on this thread: (level, message and fields).
#[derive(Clone, Default)]
#[allow(dead_code)]
pub struct Logs(Arc<std::sync::Mutex<Vec<(tracing::Level, String)>>>);

#[allow(dead_code)]
impl Logs {
    /// Captures this thread's events until the guard is dropped.
    pub fn capture(&self) -> tracing::subscriber::DefaultGuard {
        use tracing_subscriber::layer::SubscriberExt;
        tracing::subscriber::set_default(tracing_subscriber::registry().with(self.clone()))
    }

    pub fn count(&self, level: tracing::Level, text: &str) -> usize {
        let logs = self.0.lock().unwrap();
        logs.iter()
            .filter(|(l, m)| *l == level && m.contains(text))
            .count()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Text(String);
        impl tracing::field::Visit for Text {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                self.0.push_str(&format!(" {}={value:?}", field.name()));
            }
        }
        let mut text = Text(String::new());
        event.record(&mut text);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), text.0));
    }
}
