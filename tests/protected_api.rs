//! Drives the `protected_api` example binary through its stable interface: environment
//! variables, the `listening on ADDR` line, and the four routes, against a real loopback
//! identity provider.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use jwks_auth::testing::TestIssuer;

mod common;

use common::example::{Server, binary};

fn example_binary() -> PathBuf {
    binary("protected_api")
}

fn start(envs: &[(&str, &str)]) -> (Server, String) {
    start_logging(envs, Stdio::null())
}

/// Like [`start`], with the server's stderr (its log) going to `stderr`.
fn start_logging(envs: &[(&str, &str)], stderr: Stdio) -> (Server, String) {
    common::example::start("protected_api", envs, stderr)
}

async fn get(url: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let client = reqwest::Client::new();
    let mut request = client.get(url).timeout(Duration::from_secs(10));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    reply(request).await
}

/// Sends `request`: status, challenge, body.
async fn reply(request: reqwest::RequestBuilder) -> (u16, Option<String>, String) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, challenge, response.text().await.unwrap_or_default())
}

#[tokio::test]
async fn the_example_server_protects_its_routes() {
    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let (_server, base) = start(&[
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
        ("JWKS_COOLDOWN_SECS", "1"),
        ("JWT_CACHE_ENTRIES", "100"),
    ]);

    assert_eq!(get(&format!("{base}/public"), None).await.0, 200);
    let (status, challenge, _) = get(&format!("{base}/me"), None).await;
    assert_eq!((status, challenge.as_deref()), (401, Some("Bearer")));

    let token = issuer.token().subject("carol").sign();
    let (status, _, body) = get(&format!("{base}/me"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    let claims: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["iss"], issuer.issuer());

    let (status, _, body) = get(&format!("{base}/health"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ready"],
        true
    );

    let (status, challenge, _) = get(&format!("{base}/admin"), Some(&token)).await;
    assert_eq!(status, 403);
    assert!(challenge.unwrap().contains(r#"error="insufficient_scope""#));
    let admin = issuer.token().scope("admin").sign();
    assert_eq!(get(&format!("{base}/admin"), Some(&admin)).await.0, 200);

    let other_audience = issuer.token().audience("other").sign();
    let (status, challenge, _) = get(&format!("{base}/me"), Some(&other_audience)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains(r#"error="invalid_token""#));
}

#[tokio::test]
async fn health_is_503_until_keys_load() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let (_server, base) = start(&[
        ("JWKS_URL", dead.as_str()),
        ("JWT_ISSUER", "https://idp.example/"),
        ("JWT_AUDIENCE", "test-api"),
    ]);
    // The first request starts the refresh; health reports not ready while it fails.
    let _ = get(&format!("{base}/me"), Some("a.b.c")).await;
    let (status, _, body) = get(&format!("{base}/health"), None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["ready"],
        false
    );
}

#[tokio::test]
async fn oidc_issuer_discovers_the_key_set_and_enforces_iss() {
    let issuer = TestIssuer::start().await;
    let (_server, base) = start(&[
        ("OIDC_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
    ]);
    let token = issuer.token().subject("dave").sign();
    let (status, _, body) = get(&format!("{base}/me"), Some(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(issuer.discovery_count(), 1);
    let foreign = issuer.token().claim("iss", "https://other.example").sign();
    let (status, challenge, _) = get(&format!("{base}/me"), Some(&foreign)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("issuer"));
}

/// `JWT_ISSUER_TEMPLATE`: each tenant's keys discovered at its issuer on first use; a
/// token of an issuer outside the template is refused; /health is ready at once.
#[tokio::test]
async fn an_issuer_template_serves_every_tenant() {
    let tenants = jwks_auth::testing::TenantIssuer::start().await;
    let template = tenants.template();
    let (_server, base) = start(&[
        ("JWT_ISSUER_TEMPLATE", &template),
        ("JWT_AUDIENCE", "test-api"),
        ("JWT_TENANT_STORES", "5"),
    ]);
    let (status, _, _) = get(&format!("{base}/health"), None).await;
    assert_eq!(status, 200, "a rules-only layer has nothing to load first");
    for tenant in ["acme", "globex"] {
        let token = tenants.token(tenant).subject(tenant).sign();
        let (status, _, body) = get(&format!("{base}/whoami"), Some(&token)).await;
        assert_eq!((status, body.as_str()), (200, tenant));
    }
    assert_eq!(tenants.discovery_count(), 2);
    let foreign = tenants
        .token("acme")
        .claim("iss", "https://evil.example/acme")
        .sign();
    let (status, challenge, _) = get(&format!("{base}/me"), Some(&foreign)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("issuer"));
    assert_eq!(tenants.discovery_count(), 2);
}

/// `JWT_INTROSPECTION_*`: opaque tokens introspected (the endpoint from discovery), JWTs
/// on the key set path, a revoked token refused once the cache is off.
#[tokio::test]
async fn opaque_tokens_are_introspected() {
    use jwks_auth::testing::{INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET};
    let issuer = TestIssuer::start().await;
    let (_server, base) = start(&[
        ("OIDC_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
        ("JWT_INTROSPECTION_CLIENT_ID", INTROSPECTION_CLIENT_ID),
        (
            "JWT_INTROSPECTION_CLIENT_SECRET",
            INTROSPECTION_CLIENT_SECRET,
        ),
        ("JWT_INTROSPECTION_CACHE_SECS", "0"),
    ]);
    let opaque = issuer.opaque(issuer.token().subject("opal").scope("admin"));
    let (status, _, body) = get(&format!("{base}/whoami"), Some(&opaque)).await;
    assert_eq!((status, body.as_str()), (200, "opal"));
    let (status, _, _) = get(&format!("{base}/admin"), Some(&opaque)).await;
    assert_eq!(status, 200);
    let jwt = issuer.token().subject("jay").sign();
    let (status, _, body) = get(&format!("{base}/whoami"), Some(&jwt)).await;
    assert_eq!((status, body.as_str()), (200, "jay"));
    assert_eq!(issuer.introspection_count(), 2);
    issuer.revoke(&opaque);
    let (status, challenge, _) = get(&format!("{base}/whoami"), Some(&opaque)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("not active"));
}

/// `RESOURCE_URL`/`AUTHORIZATION_SERVERS`: the RFC 9728 document, `resource_metadata` in
/// challenges, the resource as the audience.
#[tokio::test]
async fn resource_metadata_from_the_environment() {
    let issuer = TestIssuer::start().await;
    let (_server, base) = start(&[
        ("OIDC_ISSUER", issuer.issuer()),
        ("RESOURCE_URL", "https://api.example.com/v1"),
        ("AUTHORIZATION_SERVERS", issuer.issuer()),
    ]);
    let (status, _, doc) = get(
        &format!("{base}/.well-known/oauth-protected-resource/v1"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(doc["resource"], "https://api.example.com/v1");
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([issuer.issuer()])
    );
    let meta = "https://api.example.com/.well-known/oauth-protected-resource/v1";
    let (status, challenge, _) = get(&format!("{base}/me"), None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.unwrap(),
        format!(r#"Bearer resource_metadata="{meta}""#)
    );
    let token = issuer
        .token()
        .audience("https://api.example.com/v1")
        .subject("res")
        .sign();
    let (status, _, body) = get(&format!("{base}/whoami"), Some(&token)).await;
    assert_eq!((status, body.as_str()), (200, "res"));
    let (status, _, _) = get(&format!("{base}/whoami"), Some(&issuer.token().sign())).await;
    assert_eq!(status, 401, "another audience");
}

#[test]
fn bad_configuration_exits_non_zero_with_a_message() {
    // Each case is otherwise complete: it fails for its own reason, named in the message.
    let base = |extra: &[(&'static str, &'static str)]| {
        let mut envs = vec![
            ("JWKS_URL", "https://idp.example/jwks.json"),
            ("JWT_ISSUER", "https://idp.example/"),
            ("JWT_AUDIENCE", "orders-api"),
        ];
        for (name, value) in extra {
            envs.retain(|(n, _)| n != name);
            if !value.is_empty() {
                envs.push((name, value));
            }
        }
        envs
    };
    for (envs, named) in [
        (vec![], "JWKS_URL"),
        (
            base(&[("JWKS_URL", "http://idp.example/jwks.json")]),
            "https",
        ),
        (base(&[("JWKS_REFRESH_SECS", "soon")]), "JWKS_REFRESH_SECS"),
        (base(&[("LISTEN_ADDR", "nowhere")]), "LISTEN_ADDR"),
        (
            base(&[("JWKS_URL", ""), ("OIDC_ISSUER", "http://idp.example")]),
            "https",
        ),
        (base(&[("OIDC_ISSUER", "https://idp.example")]), "not both"),
        (base(&[("JWT_DPOP", "maybe")]), "JWT_DPOP"),
        (
            base(&[
                ("LISTEN_ADDR", "127.0.0.1:0"),
                ("JWT_DPOP", "required"),
                ("PUBLIC_BASE_URL", "api.example.com"),
            ]),
            "PUBLIC_BASE_URL",
        ),
        (
            base(&[
                ("JWT_DPOP", "required"),
                ("DPOP_REPLAY_REDIS_URL", "not a url"),
            ]),
            "DPOP_REPLAY_REDIS_URL",
        ),
        // Audience and issuer are required, and the message names the opt-out.
        (base(&[("JWT_AUDIENCE", "")]), "JWT_ACCEPT_ANY_AUDIENCE=1"),
        (base(&[("JWT_ISSUER", "")]), "JWT_ACCEPT_ANY_ISSUER=1"),
        // Introspection: the client's id and secret together, an endpoint to find.
        (
            base(&[("JWT_INTROSPECTION_URL", "https://idp.example/introspect")]),
            "JWT_INTROSPECTION_CLIENT_ID is required",
        ),
        (
            base(&[("JWT_INTROSPECTION_CLIENT_ID", "api")]),
            "JWT_INTROSPECTION_CLIENT_SECRET is required",
        ),
        (
            base(&[
                ("JWT_INTROSPECTION_CLIENT_ID", "api"),
                ("JWT_INTROSPECTION_CLIENT_SECRET", "s"),
            ]),
            "needs OIDC_ISSUER",
        ),
        // RFC 9728 metadata: both, and a usable resource.
        (
            base(&[("RESOURCE_URL", "https://api.example.com/")]),
            "AUTHORIZATION_SERVERS is required",
        ),
        (
            base(&[("AUTHORIZATION_SERVERS", "https://idp.example/")]),
            "needs RESOURCE_URL",
        ),
        (
            base(&[
                ("RESOURCE_URL", "http://api.example.com/"),
                ("AUTHORIZATION_SERVERS", "https://idp.example/"),
            ]),
            "RESOURCE_URL/AUTHORIZATION_SERVERS: invalid protected resource metadata",
        ),
        // Tenants by rule: a template alone, and a good one.
        (
            base(&[(
                "JWT_ISSUER_TEMPLATE",
                "https://kc.example.com/realms/{tenant}",
            )]),
            "set it alone",
        ),
        (
            base(&[
                ("JWKS_URL", ""),
                ("JWT_ISSUER", ""),
                (
                    "JWT_ISSUER_TEMPLATE",
                    "https://kc.example.com/realms/x{tenant}",
                ),
            ]),
            "JWT_ISSUER_TEMPLATE: invalid issuer template",
        ),
        (
            base(&[
                ("JWKS_URL", ""),
                ("JWT_ISSUER", ""),
                (
                    "JWT_ISSUER_TEMPLATE",
                    "https://kc.example.com/realms/{tenant}",
                ),
                ("JWT_TENANT_STORES", "0"),
            ]),
            "JWT_TENANT_STORES",
        ),
    ] {
        let output = Command::new(example_binary())
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .expect("run protected_api");
        assert_eq!(output.status.code(), Some(2), "{envs:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.starts_with("configuration error: "), "{stderr}");
        assert!(stderr.contains(named), "{envs:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

/// The opt-outs, set by name, start the server; OIDC_ISSUER binds its own issuer.
#[tokio::test]
async fn the_explicit_opt_outs_start_the_server() {
    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let (_server, base) = start(&[
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ACCEPT_ANY_ISSUER", "1"),
        ("JWT_ACCEPT_ANY_AUDIENCE", "1"),
    ]);
    let token = issuer
        .token()
        .claim("iss", "https://anyone.example")
        .claim("aud", "any-api")
        .sign();
    assert_eq!(get(&format!("{base}/me"), Some(&token)).await.0, 200);
    let (_server, base) = start(&[
        ("OIDC_ISSUER", issuer.issuer()),
        ("JWT_ACCEPT_ANY_AUDIENCE", "1"),
    ]);
    assert_eq!(
        get(&format!("{base}/me"), Some(&token)).await.0,
        401,
        "iss is bound"
    );
}

#[tokio::test]
async fn jwt_realm_is_in_every_challenge_including_the_403() {
    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let (_server, base) = start(&[
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
        ("JWT_REALM", "orders"),
    ]);
    let (status, challenge, _) = get(&format!("{base}/me"), None).await;
    assert_eq!(
        (status, challenge.as_deref()),
        (401, Some(r#"Bearer realm="orders""#))
    );
    let (status, challenge, _) = get(&format!("{base}/me"), Some("a.b.c")).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"Bearer realm="orders", error="invalid_token""#)
    );
    let token = issuer.token().sign();
    let (status, challenge, _) = get(&format!("{base}/admin"), Some(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(
        challenge.as_deref(),
        Some(
            r#"Bearer realm="orders", error="insufficient_scope", error_description="the token lacks a required scope", scope="admin""#
        )
    );
}

/// A loopback stand-in for a corporate forward proxy: it answers every request itself
/// (with `body`) and records the request targets it was asked for.
async fn start_proxy(body: String) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::Request;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (log, body) = (log.clone(), body.clone());
        async move {
            log.lock().unwrap().push(req.uri().to_string());
            body
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), seen)
}

async fn wait_ready(base: &str, token: &str) -> u16 {
    // A request starts the refresh task; then health turns 200 once keys are loaded.
    let _ = get(&format!("{base}/me"), Some(token)).await;
    for _ in 0..50 {
        if get(&format!("{base}/health"), None).await.0 == 200 {
            return 200;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    503
}

#[tokio::test]
async fn proxies_from_the_environment_are_honoured_except_for_loopback() {
    let issuer = TestIssuer::start().await;
    let (proxy, seen) = start_proxy(issuer.jwks_document()).await;
    let token = issuer.token().sign();

    // A remote key set URL goes through HTTP_PROXY (the name does not even resolve).
    let (_server, base) = start(&[
        ("JWKS_URL", "http://idp.invalid/.well-known/jwks.json"),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
        ("JWKS_ALLOW_HTTP", "1"),
        ("HTTP_PROXY", proxy.as_str()),
    ]);
    assert_eq!(wait_ready(&base, &token).await, 200);
    assert_eq!(get(&format!("{base}/me"), Some(&token)).await.0, 200);
    assert_eq!(
        seen.lock().unwrap().first().map(String::as_str),
        Some("http://idp.invalid/.well-known/jwks.json")
    );
    assert_eq!(issuer.fetch_count(), 0, "the proxy answered");

    // A loopback key set URL never does, whatever the proxy variables say.
    let before = seen.lock().unwrap().len();
    let jwks = issuer.jwks_url();
    let (_server, base) = start(&[
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
        ("HTTP_PROXY", proxy.as_str()),
        ("http_proxy", proxy.as_str()),
        ("ALL_PROXY", proxy.as_str()),
    ]);
    assert_eq!(wait_ready(&base, &token).await, 200);
    assert_eq!(
        seen.lock().unwrap().len(),
        before,
        "loopback bypassed the proxy"
    );
    assert!(issuer.fetch_count() >= 1);
}

#[tokio::test]
async fn the_log_has_no_colour_codes_when_stderr_is_not_a_terminal() {
    let issuer = TestIssuer::start().await;
    let log = std::env::temp_dir().join(format!("jwks-auth-log-{}.txt", std::process::id()));
    let file = std::fs::File::create(&log).unwrap();
    let jwks = issuer.jwks_url();
    let (server, base) = start_logging(
        &[
            ("JWKS_URL", jwks.as_str()),
            ("JWT_ISSUER", issuer.issuer()),
            ("JWT_AUDIENCE", "test-api"),
        ],
        Stdio::from(file),
    );
    assert_eq!(wait_ready(&base, &issuer.token().sign()).await, 200);
    drop(server);
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    assert!(text.contains("key set refreshed"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "ANSI escapes in a piped log: {text:?}"
    );
}

/// Feature `metrics`: GET /metrics, parsed as Prometheus text, counts what was sent.
#[cfg(feature = "metrics")]
#[tokio::test]
async fn the_metrics_endpoint_counts_decisions_fetches_and_keys() {
    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let (_server, base) = start(&[
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", "test-api"),
    ]);
    let token = issuer.token().sign();
    assert_eq!(get(&format!("{base}/me"), Some(&token)).await.0, 200);
    assert_eq!(get(&format!("{base}/me"), Some(&token)).await.0, 200);
    assert_eq!(get(&format!("{base}/me"), None).await.0, 401);
    let expired = issuer.token().expires_in(-3600).sign();
    assert_eq!(get(&format!("{base}/me"), Some(&expired)).await.0, 401);
    let (status, _, text) = get(&format!("{base}/metrics"), None).await;
    assert_eq!(status, 200);
    eprintln!("{text}");
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    let requests = "jwks_auth_requests_total";
    assert_eq!(
        value(requests, &[("outcome", "accepted"), ("kind", "none")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            requests,
            &[("outcome", "rejected"), ("kind", "missing_credentials")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(requests, &[("outcome", "rejected"), ("kind", "expired")]),
        Some(1.0)
    );
    assert_eq!(value("jwks_auth_cache_hits_total", &[]), Some(1.0));
    assert_eq!(
        value("jwks_auth_key_fetches_total", &[("outcome", "ok")]),
        Some(1.0)
    );
    assert_eq!(value("jwks_auth_keys", &[]), Some(4.0));
    assert!(value("jwks_auth_key_set_age_seconds", &[]).is_some_and(|age| age >= 0.0));
    assert!(text.contains("jwks_auth_key_fetch_seconds"), "{text}");
    // Label values come from fixed sets: no token, no kid.
    assert!(
        !text.contains(&token[..20]) && !text.contains("rsa-1"),
        "{text}"
    );
}

/// `GET url` with `Authorization: DPoP {token}` and a `DPoP` proof.
async fn get_dpop(url: &str, token: &str, proof: &str) -> (u16, Option<String>, String) {
    let request = reqwest::Client::new()
        .get(url)
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .timeout(Duration::from_secs(10));
    reply(request).await
}

async fn dpop_server_accepts_proofs_once(envs: &[(&str, &str)]) {
    use jwks_auth::Algorithm;
    use jwks_auth::testing::DpopKey;

    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let mut all = vec![
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", jwks_auth::testing::AUDIENCE),
        ("JWT_DPOP", "required"),
    ];
    all.extend_from_slice(envs);
    let (_server, base) = start(&all);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer
        .token()
        .bound_to(&client)
        .subject("alice")
        .scope("admin")
        .sign();
    // PUBLIC_BASE_URL defaults to http:// and the address bound.
    let me = format!("{base}/me");
    let proof = client.proof("GET", &me, &token);
    let (status, _, body) = get_dpop(&me, &token, &proof).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("alice"), "{body}");
    let (status, challenge, _) = get_dpop(&me, &token, &proof).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"DPoP error="invalid_dpop_proof""#),
        "a replay"
    );
    let admin = format!("{base}/admin");
    let (status, _, _) = get_dpop(&admin, &token, &client.proof("GET", &admin, &token)).await;
    assert_eq!(status, 200);
    // The stolen token as a bearer token.
    let (status, challenge, _) = get(&me, Some(&token)).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .starts_with(r#"DPoP error="invalid_token""#)
    );
}

#[tokio::test]
async fn jwt_dpop_required_accepts_proofs_once_and_refuses_bearer_use() {
    dpop_server_accepts_proofs_once(&[]).await;
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn dpop_replay_redis_url_puts_the_replay_store_in_redis() {
    let redis = common::redis::RedisServer::start();
    let url = redis.url();
    dpop_server_accepts_proofs_once(&[("DPOP_REPLAY_REDIS_URL", url.as_str())]).await;
    let keys: Vec<String> = redis.command(&["KEYS", "jwks-auth:dpop:*"]).await;
    assert_eq!(
        keys.len(),
        2,
        "the two accepted proofs are recorded in redis: {keys:?}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test]
async fn two_processes_sharing_redis_refuse_a_proof_replayed_to_the_other() {
    use jwks_auth::Algorithm;
    use jwks_auth::testing::DpopKey;

    let redis = common::redis::RedisServer::start();
    let issuer = TestIssuer::start().await;
    let (jwks, url) = (issuer.jwks_url(), redis.url());
    // Two replicas behind one public name.
    let envs = [
        ("JWKS_URL", jwks.as_str()),
        ("JWT_ISSUER", issuer.issuer()),
        ("JWT_AUDIENCE", jwks_auth::testing::AUDIENCE),
        ("JWT_DPOP", "required"),
        ("PUBLIC_BASE_URL", "https://api.example.com"),
        ("DPOP_REPLAY_REDIS_URL", url.as_str()),
    ];
    let (_a, a) = start(&envs);
    let (_b, b) = start(&envs);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).subject("alice").sign();
    let proof = client.proof("GET", "https://api.example.com/me", &token);
    let (status, _, body) = get_dpop(&format!("{a}/me"), &token, &proof).await;
    assert_eq!(status, 200, "{body}");
    let (status, challenge, _) = get_dpop(&format!("{b}/me"), &token, &proof).await;
    assert_eq!(status, 401);
    assert!(
        challenge
            .unwrap()
            .contains(r#"error_description="the DPoP proof was already used""#)
    );
    // A fresh proof is fine on the other replica.
    let fresh = client.proof("GET", "https://api.example.com/me", &token);
    let (status, _, _) = get_dpop(&format!("{b}/me"), &token, &fresh).await;
    assert_eq!(status, 200);
}
