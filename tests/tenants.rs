//! Issuer rules: tenants by template, discovered on first use, a bounded set of key
//! stores, a budget for new tenants. Every tenant is served by a real `TenantIssuer` on
//! loopback, which counts the requests it gets.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use jwks_auth::testing::{AUDIENCE, TenantIssuer, TestKey};
use jwks_auth::{
    Algorithm, AuthErrorKind as K, ConfigErrorKind, IssuerRule, JwksAuth, Refresh, TrustedIssuer,
};

fn rule_layer(rule: IssuerRule, refresh: Refresh) -> JwksAuth {
    JwksAuth::multi_issuer([TrustedIssuer::rule(rule)])
        .audience(AUDIENCE)
        .refresh(refresh)
}

#[tokio::test]
async fn each_tenant_is_verified_with_its_own_keys_only() {
    let tenants = TenantIssuer::start().await;
    let auth = tenants
        .layer()
        .refresh(Refresh::default().cooldown(Duration::ZERO));
    let (app, hits) = app(auth.clone());
    for tenant in ["acme", "globex", "initech"] {
        let reply = send(&app, &tenants.token(tenant).subject(tenant).sign()).await;
        assert_eq!(reply.status, StatusCode::OK, "{tenant}: {reply:?}");
        assert_eq!(reply.body, tenant);
    }
    assert_eq!(hits.get(), 3);
    assert_eq!(auth.status().tenant_stores, 3);
    assert_eq!(tenants.discovery_count(), 3);
    // A token claiming acme signed by globex's key (its own kid), and one signed by
    // globex's key under acme's kid: neither verifies.
    let foreign = tenants.token("acme").key(tenants.key("globex")).sign();
    assert_eq!(send(&app, &foreign).await.status, StatusCode::UNAUTHORIZED);
    let under_acme_kid = tenants
        .token("acme")
        .key(tenants.key("globex"))
        .kid("acme-key")
        .sign();
    assert_invalid_token(
        &send(&app, &under_acme_kid).await,
        K::InvalidSignature.description(),
    );
    assert_eq!(hits.get(), 3);
    // status() lists the tenants most recently used.
    let status = auth.status();
    assert!(
        status
            .issuer(&tenants.issuer("initech"))
            .is_some_and(|s| s.is_ready())
    );
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let tenants = TenantIssuer::start().await;
    tenants.set_discovery_issuer("liar", &tenants.issuer("acme"));
    let (app, hits) = app(tenants.layer());
    let reply = send(&app, &tenants.token("liar").sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert_eq!(hits.get(), 0);
    // The honest tenant next to it works.
    assert_eq!(
        send(&app, &tenants.token("acme").sign()).await.status,
        StatusCode::OK
    );
}

/// Nothing a token's `iss` says can steer a fetch elsewhere: every one of these is a 401
/// with no request made at all.
#[tokio::test]
async fn hostile_issuers_are_refused_with_no_request() {
    let tenants = TenantIssuer::start().await;
    let base = tenants.issuer("");
    let base = base.trim_end_matches('/');
    let host = base.trim_start_matches("http://");
    let port = host.rsplit(':').next().unwrap();
    let labels = IssuerRule::discovered("labels", "https://{tenant}.idp.example.com/");
    let auth = JwksAuth::multi_issuer([
        TrustedIssuer::rule(IssuerRule::discovered("tenants", tenants.template())),
        TrustedIssuer::rule(labels),
    ])
    .audience(AUDIENCE);
    let (app, hits) = app(auth.clone());
    let signer = Arc::new(TestKey::generate(Algorithm::ES256, "attacker"));
    let long = "a".repeat(65);
    let hostile = [
        format!("{base}/a/b"),
        format!("{base}/.."),
        format!("{base}/."),
        format!("{base}/%2e%2e"),
        format!("{base}/a%2fb"),
        format!("{base}/a:80"),
        format!("{base}/a@evil.example"),
        format!("http://user@{host}/acme"),
        format!("http://evil.example/{host}/acme"),
        format!("{base}/é"),
        format!("{base}/acme/"),
        format!("{base}/acme?x=1"),
        format!("{base}/acme#x"),
        format!("{base}/{long}"),
        format!("{base}/"),
        format!("https://{host}/acme"),
        format!("http://127.0.0.1.:{port}/acme"),
        "https://evil.example.com/".to_owned(),
        "https://a.b.idp.example.com/".to_owned(),
        "https://acme.idp.example.com.evil.example/".to_owned(),
        "https://xn--80ak6aa92e.idp.example.com./".to_owned(),
        "https://-acme.idp.example.com/".to_owned(),
        format!("https://{}.idp.example.com/", "a".repeat(64)),
        "https://ACME.idp.example.com/".to_owned(),
    ];
    for iss in &hostile {
        let token = tenants
            .token("unused")
            .key(signer.clone())
            .claim("iss", iss.as_str())
            .sign();
        let reply = send(&app, &token).await;
        assert_invalid_token(&reply, K::InvalidIssuer.description());
    }
    assert_eq!(
        tenants.request_count(),
        0,
        "no request for any of {hostile:?}"
    );
    assert_eq!(auth.status().tenant_stores, 0);
    assert_eq!(hits.get(), 0);
}

#[tokio::test]
async fn the_predicate_refuses_before_anything_is_fetched() {
    let tenants = TenantIssuer::start().await;
    let rule = IssuerRule::discovered("tenants", tenants.template())
        .allow(|t| t.get("tenant").is_some_and(|t| t.starts_with("customer-")));
    let (app, hits) = app(rule_layer(rule, Refresh::default()));
    assert_invalid_token(
        &send(&app, &tenants.token("intruder").sign()).await,
        K::InvalidIssuer.description(),
    );
    assert_eq!(tenants.request_count(), 0);
    let reply = send(&app, &tenants.token("customer-1").sign()).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(hits.get(), 1);
}

#[tokio::test]
async fn at_most_the_bound_of_stores_live_and_an_evicted_tenant_discovers_again() {
    let tenants = TenantIssuer::start().await;
    let refresh = Refresh::default().tenant_stores(10).new_tenants(100, 100.0);
    let auth = rule_layer(
        IssuerRule::discovered("tenants", tenants.template()),
        refresh,
    );
    let (app, hits) = app(auth.clone());
    let first = tenants.token("tenant-1").sign();
    for i in 1..=50 {
        let reply = send(&app, &tenants.token(&format!("tenant-{i}")).sign()).await;
        assert_eq!(reply.status, StatusCode::OK, "tenant-{i}: {reply:?}");
        assert!(auth.status().tenant_stores <= 10);
    }
    let status = auth.status();
    assert_eq!((status.tenant_stores, status.tenant_evictions), (10, 40));
    assert_eq!(hits.get(), 50);
    // The first tenant again (its cached token: a miss, its store is gone): one new
    // discovery, and accepted.
    let discoveries = tenants.discovery_count();
    let reply = send(&app, &first).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(tenants.discovery_count(), discoveries + 1);
    assert_eq!(auth.status().tenant_evictions, 41);
}

#[test]
fn bad_templates_are_configuration_errors() {
    for template in [
        "https://kc.example.com/realms/",
        "https://{tenant}.com/",
        "https://kc.example.com/realms/x-{realm}",
        "https://kc.example.com/realms/{realm}?q",
        "ftp://kc.example.com/{realm}",
    ] {
        let auth =
            JwksAuth::multi_issuer([TrustedIssuer::rule(IssuerRule::discovered("t", template))])
                .audience(AUDIENCE);
        assert_eq!(
            auth.validate().map_err(|e| e.kind().clone()),
            Err(ConfigErrorKind::IssuerTemplate),
            "{template}"
        );
    }
    // Plain http to a host that is not loopback, as for any key URL.
    let auth = JwksAuth::multi_issuer([TrustedIssuer::rule(IssuerRule::discovered(
        "t",
        "http://kc.example.com/realms/{realm}",
    ))])
    .audience(AUDIENCE);
    assert_eq!(
        auth.validate().map_err(|e| e.kind().clone()),
        Err(ConfigErrorKind::InsecureUrl)
    );
}

/// 20,000 tokens naming random tenants, through a real HTTP server: new stores stay
/// within the budget (a burst of 30, then 3 a second), so do the fetches; memory stays
/// bounded; known tenants' requests all succeed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_tenants_costs_at_most_the_budget() {
    let tenants = TenantIssuer::start().await;
    let auth = tenants.layer();
    let (app, hits) = app(auth.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/me");

    // The budget's clock starts with the first new tenant.
    let started = Instant::now();
    let known: Vec<String> = ["acme", "globex", "initech"]
        .iter()
        .map(|t| tenants.token(t).subject(t).sign())
        .collect();
    for token in &known {
        let r = client.get(&url).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let signer = Arc::new(TestKey::generate(Algorithm::ES256, "attacker"));
    let flood: Vec<String> = (0..20_000)
        .map(|i| {
            tenants
                .token("unused")
                .key(signer.clone())
                .claim(
                    "iss",
                    tenants.issuer(&format!("random-{i}-{}", i * 7919 % 10007)),
                )
                .sign()
        })
        .collect();
    let (requests_before, rss_before) = (tenants.request_count(), rss());
    let flood = Arc::new(flood);
    let known = Arc::new(known);
    let mut workers = Vec::new();
    for w in 0..8 {
        let (client, url, flood, known) =
            (client.clone(), url.clone(), flood.clone(), known.clone());
        workers.push(tokio::spawn(async move {
            let (mut statuses, mut known_failures) = (std::collections::BTreeMap::new(), 0);
            for (i, token) in flood.iter().enumerate().skip(w).step_by(8) {
                let r = client.get(&url).bearer_auth(token).send().await.unwrap();
                *statuses.entry(r.status().as_u16()).or_insert(0) += 1;
                if i % 20 == 0 {
                    let token = &known[i % known.len()];
                    let r = client.get(&url).bearer_auth(token).send().await.unwrap();
                    if r.status() != 200 {
                        known_failures += 1;
                    }
                }
            }
            (statuses, known_failures)
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    let mut known_failures = 0;
    for worker in workers {
        let (s, k) = worker.await.unwrap();
        for (status, n) in s {
            *statuses.entry(status).or_insert(0) += n;
        }
        known_failures += k;
    }
    let elapsed = started.elapsed();
    let status = auth.status();
    let made = status.tenant_stores as u64 + status.tenant_evictions;
    let budget = 30 + (3.0 * elapsed.as_secs_f64()).ceil() as u64;
    // The known tenants' three stores were made before the flood, their fetches too.
    let fetches = tenants.request_count() - requests_before;
    let growth = rss().saturating_sub(rss_before);
    println!(
        "flood: 20000 tokens in {elapsed:?}: {statuses:?}; {made} tenant stores made (budget {budget}); \
         {fetches} requests to the issuers; resident memory {} MB before, +{} MB",
        rss_before / 1_000_000,
        growth / 1_000_000
    );
    assert_eq!(known_failures, 0, "known tenants kept working");
    assert_eq!(statuses.values().sum::<u64>(), 20_000);
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    assert!(made <= budget, "{made} stores made, budget {budget}");
    // Per new store: its discovery, its key set, one forced refresh for the unknown kid.
    assert!(
        fetches <= 3 * (made - 3),
        "{fetches} fetches for {} new stores",
        made - 3
    );
    assert!(growth < 64_000_000, "+{growth} bytes");
    assert!(hits.get() >= 3 + 1000);
    // The budget refills: a new tenant is served again a moment later.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let newcomer = tenants.token("after-the-flood").sign();
    let r = client
        .get(&url)
        .bearer_auth(&newcomer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Feature `metrics`: live stores and evictions, labelled by the rule's name, never by
/// a tenant.
#[cfg(feature = "metrics")]
#[test]
fn tenant_metrics_are_labelled_by_rule() {
    let text = scrape(async {
        let tenants = TenantIssuer::start().await;
        let auth = rule_layer(
            IssuerRule::discovered("realms", tenants.template()),
            Refresh::default().tenant_stores(2),
        );
        let (app, _) = app(auth);
        for tenant in ["t-one", "t-two", "t-three", "t-four"] {
            let reply = send(&app, &tenants.token(tenant).sign()).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
    });
    let value = |prefix: &str| metric(&text, prefix);
    assert_eq!(
        value(r#"jwks_auth_tenant_stores{rule="realms"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(r#"jwks_auth_tenant_store_evictions_total{rule="realms"}"#),
        Some(2.0),
        "{text}"
    );
    assert!(!text.contains("t-one"), "a tenant in a label: {text}");
}

/// Entra's shape: one key set for every tenant, each key naming whose tokens it signs.
/// A token is accepted only with `tid` equal to the tenant in `iss` and a key whose
/// `issuer` (`{tenantid}` replaced) is that `iss`.
#[tokio::test]
async fn a_shared_key_set_with_per_key_issuers() {
    let tenants = TenantIssuer::start().await;
    // acme has a key of its own in the shared set (issuer naming acme only).
    let acme_key = tenants.key("acme");
    let rule = IssuerRule::shared_keys("entra", tenants.template(), tenants.shared_jwks_url());
    let auth = rule_layer(rule, Refresh::default().cooldown(Duration::ZERO));
    let (app, hits) = app(auth.clone());
    let common = |tenant: &str| {
        tenants
            .token(tenant)
            .key(tenants.common_key())
            .claim("tid", tenant)
            .subject(tenant)
    };
    for tenant in ["acme", "globex", "initech"] {
        let reply = send(&app, &common(tenant).sign()).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, tenant),
            "{reply:?}"
        );
    }
    // acme's own key verifies acme's tokens, never globex's.
    let own = tenants
        .token("acme")
        .key(acme_key.clone())
        .claim("tid", "acme")
        .sign();
    assert_eq!(send(&app, &own).await.status, StatusCode::OK);
    let foreign = tenants
        .token("globex")
        .key(acme_key)
        .claim("tid", "globex")
        .sign();
    assert_invalid_token(&send(&app, &foreign).await, K::InvalidIssuer.description());
    // tid must be the tenant in iss, and present.
    let mismatch = common("globex").claim("tid", "acme").sign();
    assert_invalid_token(&send(&app, &mismatch).await, K::InvalidIssuer.description());
    let no_tid = common("globex").without_claim("tid").sign();
    assert_invalid_token(&send(&app, &no_tid).await, K::InvalidIssuer.description());
    assert_eq!(hits.get(), 4);
    // One store and one fetch for every tenant.
    assert_eq!(auth.status().tenant_stores, 1);
    assert_eq!(tenants.discovery_count(), 0);
}
