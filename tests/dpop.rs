//! DPoP (RFC 9449) through a real `Router`: tokens from a real loopback issuer bound to
//! really generated client keys, proofs really signed.
//!
//! Every rejection asserts the exact status, scheme and error code, that the handler did
//! not run, and that the key set was not fetched (each target loads its keys first).

mod common;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use jwks_auth::dpop::MemoryReplayStore;
use jwks_auth::testing::{DpopKey, TestIssuer};
use jwks_auth::{Algorithm, AuthErrorKind as K, Claims, ConfigErrorKind, Dpop, JwksAuth};
use serde_json::json;

const BASE: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/me";

/// The `algs` of the default proof allow-list (ES512 only where the backend verifies it).
fn default_algs() -> String {
    jwks_auth::DEFAULT_ALGORITHMS
        .iter()
        .filter(|a| **a != Algorithm::ES512 || jwks_auth::testing::CRYPTO_BACKEND == "aws_lc_rs")
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn dpop_challenge(kind: K) -> String {
    format!(
        r#"DPoP error="{}", error_description="{}", algs="{}""#,
        kind.error_code().unwrap(),
        kind.description(),
        default_algs()
    )
}

/// A protected `/me` behind a DPoP layer whose keys are loaded.
struct Target {
    issuer: TestIssuer,
    app: Router,
    hits: Hits,
    client: DpopKey,
}

impl Target {
    async fn start(dpop: Dpop) -> Self {
        let issuer = TestIssuer::start().await;
        let auth = issuer.layer().dpop(dpop);
        auth.ready().await.expect("keys");
        let (app, hits) = app(auth);
        Self {
            issuer,
            app,
            hits,
            client: DpopKey::generate(Algorithm::ES256),
        }
    }

    fn token(&self) -> String {
        self.issuer
            .token()
            .bound_to(&self.client)
            .subject("alice")
            .sign()
    }

    /// `method path` with `Authorization: DPoP {token}` and these `DPoP` headers.
    async fn send(&self, method: &str, path: &str, token: &str, proofs: &[&str]) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("DPoP {token}"));
        for proof in proofs {
            request = request.header("dpop", *proof);
        }
        send_request(&self.app, request.body(Body::empty()).unwrap()).await
    }

    async fn get(&self, token: &str, proof: &str) -> Reply {
        self.send("GET", "/me", token, &[proof]).await
    }

    #[track_caller]
    fn accepted(&self, case: &str, reply: &Reply, hits_before: usize) {
        assert_eq!(reply.status, StatusCode::OK, "{case}: {reply:?}");
        assert_eq!(reply.body, "alice", "{case}");
        assert_eq!(self.hits.get(), hits_before + 1, "{case}");
    }

    /// Sends and asserts the rejection: status, exact challenge, no handler, no fetch.
    async fn rejects(&self, case: &str, token: &str, proofs: &[&str], kind: K) {
        let (hits, fetches) = (self.hits.get(), self.issuer.fetch_count());
        let reply = self.send("GET", "/me", token, proofs).await;
        assert_eq!(reply.status, kind.status(), "{case}: {reply:?}");
        assert_eq!(
            reply.challenge(),
            Some(dpop_challenge(kind).as_str()),
            "{case}"
        );
        assert_eq!(reply.json()["error"], kind.error_code().unwrap(), "{case}");
        assert_eq!(self.hits.get(), hits, "{case}: the handler ran");
        assert_eq!(
            self.issuer.fetch_count(),
            fetches,
            "{case}: the key set was fetched"
        );
    }
}

#[tokio::test]
async fn a_bound_token_with_its_proof_is_accepted_once_per_proof() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let token = t.token();
    let proof = t.client.proof("GET", URL, &token);
    t.accepted("first use", &t.get(&token, &proof).await, 0);
    // The same proof again: a replay.
    t.rejects("replayed proof", &token, &[&proof], K::DpopReplay)
        .await;
    // A fresh proof with the same token: accepted (the token from the cache, the proof
    // checked in full).
    let fresh = t.client.proof("GET", URL, &token);
    t.accepted("fresh proof", &t.get(&token, &fresh).await, 1);
    // The token from the cache never excuses a bad proof.
    let other_url = t
        .client
        .proof("GET", "https://api.example.com/other", &token);
    t.rejects(
        "cached token, bad proof",
        &token,
        &[&other_url],
        K::InvalidDpopProof,
    )
    .await;
    assert_eq!(t.issuer.fetch_count(), 1);
}

#[tokio::test]
async fn every_proof_algorithm_in_the_default_list() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let mut algs = vec![
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::RS256,
        Algorithm::PS256,
    ];
    if jwks_auth::testing::CRYPTO_BACKEND == "aws_lc_rs" {
        algs.push(Algorithm::ES512);
    }
    for (i, alg) in algs.into_iter().enumerate() {
        let client = DpopKey::generate(alg);
        let token = t.issuer.token().bound_to(&client).subject("alice").sign();
        let reply = t.get(&token, &client.proof("GET", URL, &token)).await;
        t.accepted(&format!("{alg}"), &reply, i);
    }
}

#[tokio::test]
async fn a_bound_token_as_a_bearer_token_is_refused_in_every_mode() {
    let issuer = TestIssuer::start().await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let algs = default_algs();
    let bound = K::BoundToken.description();
    let required = K::DpopRequired.description();
    for (dpop, challenge) in [
        (
            None,
            format!(r#"Bearer error="invalid_token", error_description="{bound}""#),
        ),
        (
            Some(Dpop::allowed().base_url(BASE)),
            format!(
                r#"Bearer error="invalid_token", error_description="{bound}", DPoP algs="{algs}""#
            ),
        ),
        (
            Some(Dpop::required().base_url(BASE)),
            format!(r#"DPoP error="invalid_token", error_description="{required}", algs="{algs}""#),
        ),
    ] {
        let auth = match dpop {
            Some(d) => issuer.layer().dpop(d),
            None => issuer.layer(),
        };
        let (app, hits) = app(auth);
        let reply = send(&app, &token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
        assert_eq!(reply.challenge(), Some(challenge.as_str()));
        assert_eq!(hits.get(), 0);
        // Even with a valid proof beside it: the scheme says bearer.
        let request = Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .header("dpop", client.proof("GET", URL, &token))
            .body(Body::empty())
            .unwrap();
        let reply = send_request(&app, request).await;
        assert!(reply.status.is_client_error(), "{reply:?}");
        assert_eq!(hits.get(), 0);
    }
}

#[tokio::test]
async fn allowed_takes_both_schemes_and_challenges_with_both() {
    let t = Target::start(Dpop::allowed().base_url(BASE)).await;
    let algs = default_algs();
    let reply = send_auth(&t.app, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(format!(r#"Bearer, DPoP algs="{algs}""#).as_str())
    );
    // A plain bearer token.
    let bearer = t.issuer.token().subject("alice").sign();
    t.accepted("bearer", &send(&t.app, &bearer).await, 0);
    // A DPoP token.
    let token = t.token();
    let reply = t.get(&token, &t.client.proof("GET", URL, &token)).await;
    t.accepted("dpop", &reply, 1);
    // An unbound token with the DPoP scheme: invalid_token, told in DPoP, Bearer first.
    let reply = t.get(&bearer, &t.client.proof("GET", URL, &bearer)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(
            format!(
                r#"Bearer, DPoP error="invalid_token", error_description="{}", algs="{algs}""#,
                K::UnboundToken.description()
            )
            .as_str()
        )
    );
    assert_eq!(t.hits.get(), 2);
}

#[tokio::test]
async fn required_without_credentials_challenges_with_dpop_only() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let reply = send_auth(&t.app, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(format!(r#"DPoP algs="{}""#, default_algs()).as_str())
    );
}

#[tokio::test]
async fn hostile_and_broken_proofs() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let token = t.token();
    let key = &t.client;
    let proof = || key.proof_for("GET", URL).access_token(&token);
    let other = DpopKey::generate(Algorithm::ES256);
    let mut cases: Vec<(String, Vec<String>, K)> = Vec::new();
    let mut case = |name: &str, proofs: Vec<String>, kind: K| {
        cases.push((name.to_owned(), proofs, kind));
    };
    let invalid = K::InvalidDpopProof;
    case("no proof", vec![], invalid);
    case("two proofs", vec![proof().sign(), proof().sign()], invalid);
    case("empty proof", vec![String::new()], invalid);
    case("not a JWS", vec!["a.b".into()], invalid);
    case("five segments", vec!["a.b.c.d.e".into()], invalid);
    let valid = proof().sign();
    let [h, p, s]: [&str; 3] = valid.split('.').collect::<Vec<_>>().try_into().unwrap();
    case("padded segment", vec![format!("{h}=.{p}.{s}")], invalid);
    case("no signature", vec![format!("{h}.{p}.")], invalid);
    let mut flipped = s.as_bytes().to_vec();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    case(
        "signature bit flipped",
        vec![format!("{h}.{p}.{flipped}")],
        invalid,
    );
    case(
        "oversized",
        vec![proof().claim("pad", "x".repeat(9000)).sign()],
        invalid,
    );
    // header
    case(
        "no typ",
        vec![proof().without_header("typ").sign()],
        invalid,
    );
    case(
        "typ JWT",
        vec![proof().header("typ", "JWT").sign()],
        invalid,
    );
    case(
        "typ at+jwt",
        vec![proof().header("typ", "at+jwt").sign()],
        invalid,
    );
    case(
        "alg none",
        vec![format!(
            "{}.{p}.",
            b64(br#"{"typ":"dpop+jwt","alg":"none"}"#)
        )],
        invalid,
    );
    case(
        "alg HS256",
        vec![proof().header("alg", "HS256").sign()],
        invalid,
    );
    case(
        "alg of another key type",
        vec![proof().header("alg", "RS256").sign()],
        invalid,
    );
    case(
        "crit",
        vec![
            proof()
                .header("crit", json!(["exp"]))
                .header("exp", 1)
                .sign(),
        ],
        invalid,
    );
    case(
        "enc",
        vec![proof().header("enc", "A128GCM").sign()],
        invalid,
    );
    case(
        "no jwk",
        vec![proof().without_header("jwk").sign()],
        invalid,
    );
    case(
        "jwk a string",
        vec![proof().header("jwk", "key").sign()],
        invalid,
    );
    let mut private = key.jwk();
    private["d"] = json!(b64(&[7u8; 32]));
    case(
        "jwk with a private member",
        vec![proof().header("jwk", private).sign()],
        invalid,
    );
    case(
        "jwk symmetric",
        vec![
            proof()
                .header("jwk", json!({"kty": "oct", "k": "c2VjcmV0"}))
                .sign(),
        ],
        invalid,
    );
    case(
        // Its thumbprint is not the token's cnf.jkt: refused before any signature.
        "jwk of another key",
        vec![proof().header("jwk", other.jwk()).sign()],
        K::DpopKeyMismatch,
    );
    case(
        "jwku instead of jwk",
        vec![
            proof()
                .without_header("jwk")
                .header("jku", "http://127.0.0.1:1/")
                .sign(),
        ],
        invalid,
    );
    let (header, claims) = proof().parts();
    assert_eq!(
        t.get(&token, &key.sign_compact(&header, &claims))
            .await
            .status,
        StatusCode::OK,
        "control: the raw texts as they are"
    );
    let dup_header = header.replacen('{', r#"{"typ":"dpop+jwt","#, 1);
    case(
        "duplicate header member",
        vec![key.sign_compact(&dup_header, &claims)],
        invalid,
    );
    let dup_claims = claims.replacen('{', r#"{"htm":"GET","#, 1);
    case(
        "duplicate claim",
        vec![key.sign_compact(&header, &dup_claims)],
        invalid,
    );
    // claims: (case, claim, its new value or `None` to leave it out)
    let claim_cases: [(&str, &str, Option<serde_json::Value>); 19] = [
        ("no jti", "jti", None),
        ("empty jti", "jti", Some(json!(""))),
        ("jti too long", "jti", Some(json!("j".repeat(257)))),
        ("jti a number", "jti", Some(json!(5))),
        ("no htm", "htm", None),
        ("htm POST", "htm", Some(json!("POST"))),
        ("htm lower case", "htm", Some(json!("get"))),
        ("no htu", "htu", None),
        (
            "htu another host",
            "htu",
            Some(json!("https://evil.example/me")),
        ),
        (
            "htu another path",
            "htu",
            Some(json!("https://api.example.com/admin")),
        ),
        ("htu http", "htu", Some(json!("http://api.example.com/me"))),
        (
            "htu another port",
            "htu",
            Some(json!("https://api.example.com:8443/me")),
        ),
        ("htu relative", "htu", Some(json!("/me"))),
        (
            "htu with userinfo",
            "htu",
            Some(json!("https://u@api.example.com/me")),
        ),
        ("htu a number", "htu", Some(json!(1))),
        ("no iat", "iat", None),
        ("iat a string", "iat", Some(json!("1700000000"))),
        ("no ath", "ath", None),
        ("ath not base64url", "ath", Some(json!("!!"))),
    ];
    for (name, claim, value) in claim_cases {
        let proof = match value {
            Some(value) => proof().claim(claim, value),
            None => proof().without_claim(claim),
        };
        case(name, vec![proof.sign()], invalid);
    }
    case(
        "iat 2 min old",
        vec![proof().issued_in(-120).sign()],
        invalid,
    );
    case(
        "iat 2 min ahead",
        vec![proof().issued_in(120).sign()],
        invalid,
    );
    case(
        "ath of another token",
        vec![proof().access_token("another").sign()],
        invalid,
    );
    // the binding
    case(
        "proof by another key",
        vec![other.proof("GET", URL, &token)],
        K::DpopKeyMismatch,
    );
    let count = cases.len();
    for (name, proofs, kind) in cases {
        let proofs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        t.rejects(&name, &token, &proofs, kind).await;
    }
    // Controls: equivalent URLs, query and fragment ignored.
    for (i, htu) in [
        "https://api.example.com/me?x=1#f",
        "HTTPS://API.EXAMPLE.COM:443/me",
        "https://api.example.com/./me",
        "https://api.example.com/%6De",
    ]
    .into_iter()
    .enumerate()
    {
        let reply = t.get(&token, &proof().claim("htu", htu).sign()).await;
        t.accepted(htu, &reply, i + 1);
    }
    println!("hostile and broken proofs: {count} cases");
}

#[tokio::test]
async fn tokens_that_are_bad_with_a_good_proof() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let expired = t.issuer.token().bound_to(&t.client).expires_in(-600).sign();
    let proof = t.client.proof("GET", URL, &expired);
    t.rejects("expired token", &expired, &[&proof], K::Expired)
        .await;
    let unbound = t.issuer.token().sign();
    let proof = t.client.proof("GET", URL, &unbound);
    t.rejects("unbound token", &unbound, &[&proof], K::UnboundToken)
        .await;
    for cnf in [
        json!({"jkt": "short"}),
        json!({"x5t#S256": "abc"}),
        json!("jkt"),
    ] {
        let token = t.issuer.token().claim("cnf", cnf.clone()).sign();
        let proof = t.client.proof("GET", URL, &token);
        t.rejects(&format!("cnf {cnf}"), &token, &[&proof], K::UnboundToken)
            .await;
    }
    let other = DpopKey::generate(Algorithm::ES256);
    let elsewhere = t.issuer.token().bound_to(&other).sign();
    let proof = t.client.proof("GET", URL, &elsewhere);
    t.rejects(
        "token bound to another key",
        &elsewhere,
        &[&proof],
        K::DpopKeyMismatch,
    )
    .await;
    // A token naming an unknown key with a bad proof: the proof is checked first, so
    // nothing is fetched.
    let unknown_kid = t
        .issuer
        .token()
        .bound_to(&t.client)
        .kid("rotated-later")
        .sign();
    let proof = t
        .client
        .proof("GET", "https://api.example.com/other", &unknown_kid);
    t.rejects(
        "unknown kid, bad proof",
        &unknown_kid,
        &[&proof],
        K::InvalidDpopProof,
    )
    .await;
    // A bad signature on the token: the token's error, in the DPoP challenge.
    let good = t.token();
    let forged = format!("{}AAAA", &good[..good.len() - 4]);
    let proof = t.client.proof("GET", URL, &forged);
    t.rejects("forged token", &forged, &[&proof], K::InvalidSignature)
        .await;
}

#[tokio::test]
async fn a_proof_is_for_one_method_and_one_url() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let token = t.token();
    let proof = t.client.proof("GET", URL, &token);
    let reply = t.send("POST", "/me", &token, &[&proof]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // Query strings do not matter.
    let reply = t.send("GET", "/me?page=2", &token, &[&proof]).await;
    t.accepted("with a query", &reply, 0);
}

#[tokio::test]
async fn nonces_are_issued_rotated_and_required() {
    let t = Target::start(
        Dpop::required()
            .base_url(BASE)
            .nonce_secret(b"shared by every replica, 32+ bytes".to_vec()),
    )
    .await;
    let token = t.token();
    let (hits, fetches) = (t.hits.get(), t.issuer.fetch_count());
    let reply = t.get(&token, &t.client.proof("GET", URL, &token)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(dpop_challenge(K::UseDpopNonce).as_str())
    );
    let nonce = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    assert_eq!(nonce.len(), 32);
    assert_eq!((t.hits.get(), t.issuer.fetch_count()), (hits, fetches));
    // A forged nonce is no better.
    let forged = format!("{}A", &nonce[..31]);
    let proof = t
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(&forged)
        .sign();
    let reply = t.get(&token, &proof).await;
    assert_eq!(reply.json()["error"], "use_dpop_nonce");
    // With the nonce: accepted, and the response carries the current nonce.
    let proof = t
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(&nonce)
        .sign();
    let reply = t.get(&token, &proof).await;
    t.accepted("with the nonce", &reply, hits);
    assert_eq!(reply.headers["dpop-nonce"], nonce.as_str());
    // Another replica with the same secret accepts it.
    let replica = t.issuer.layer().dpop(
        Dpop::required()
            .base_url(BASE)
            .nonce_secret(b"shared by every replica, 32+ bytes".to_vec()),
    );
    let (replica, replica_hits) = app(replica);
    let proof = t
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(&nonce)
        .sign();
    let request = Request::get("/me")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap();
    assert_eq!(send_request(&replica, request).await.status, StatusCode::OK);
    assert_eq!(replica_hits.get(), 1);
}

#[tokio::test]
async fn a_replay_store_shared_by_two_layers() {
    let issuer = TestIssuer::start().await;
    let store = Arc::new(MemoryReplayStore::new());
    let layer = |store: Arc<MemoryReplayStore>| {
        issuer
            .layer()
            .dpop(Dpop::required().base_url(BASE).replay_store(store))
    };
    let (a, a_hits) = app(layer(store.clone()));
    let (b, b_hits) = app(layer(store.clone()));
    let client = DpopKey::generate(Algorithm::EdDSA);
    let token = issuer.token().bound_to(&client).sign();
    let proof = client.proof("GET", URL, &token);
    let request = || {
        Request::get("/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send_request(&a, request()).await.status, StatusCode::OK);
    let reply = send_request(&b, request()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
    assert_eq!((a_hits.get(), b_hits.get()), (1, 0));
    assert_eq!(store.len(), 1);
}

#[tokio::test]
async fn the_base_url_is_configuration_and_checked() {
    let issuer = TestIssuer::start().await;
    for dpop in [
        Dpop::required(),
        Dpop::allowed().base_url("api.example.com"),
        Dpop::allowed().base_url("https://api.example.com/?x=1"),
        Dpop::allowed().base_url("ftp://api.example.com"),
    ] {
        let auth = issuer.layer().dpop(dpop);
        let err = auth.ready().await.unwrap_err();
        assert_eq!(
            err.config_error().map(|e| e.kind().clone()),
            Some(ConfigErrorKind::DpopBaseUrl),
            "{err}"
        );
        // Applied, it stops the service at start-up with the fix in the message.
        let message = panic_of_applying(auth);
        assert!(message.contains("Dpop::base_url"), "{message}");
    }
    let auth = issuer
        .layer()
        .dpop(Dpop::required().base_url(BASE).algorithms([]));
    assert_eq!(
        auth.ready()
            .await
            .unwrap_err()
            .config_error()
            .map(|e| e.kind().clone()),
        Some(ConfigErrorKind::NoAlgorithms)
    );
}

#[tokio::test]
async fn trusting_the_host_header_and_nested_routers() {
    let issuer = TestIssuer::start().await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    // Host header: the URL comes from the request, with the configured scheme.
    let (app, hits) = app(issuer
        .layer()
        .dpop(Dpop::required().trust_host_header("http")));
    let request = |host: &str, htu: &str| {
        Request::get("/me")
            .header("host", host)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", client.proof("GET", htu, &token))
            .body(Body::empty())
            .unwrap()
    };
    let reply = send_request(&app, request("api.local:8080", "http://api.local:8080/me")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = send_request(&app, request("api.local:8080", "http://other:8080/me")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(hits.get(), 1);
    // A service terminating TLS itself on HTTP/1.1: the request does not say https, the
    // configuration does.
    let (tls, tls_hits) = common::app(
        issuer
            .layer()
            .dpop(Dpop::required().trust_host_header("https")),
    );
    let reply = send_request(&tls, request("api.local", "https://api.local/me")).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let reply = send_request(&tls, request("api.local", "http://api.local/me")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(tls_hits.get(), 1);
    for scheme in ["ftp", "", "https://"] {
        let auth = issuer
            .layer()
            .dpop(Dpop::required().trust_host_header(scheme));
        assert_eq!(
            auth.validate().map_err(|e| e.kind().clone()),
            Err(ConfigErrorKind::DpopBaseUrl),
            "{scheme:?}"
        );
    }
    // A layer inside `nest`: the proof names the full path the client called.
    let inner = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(issuer.layer().dpop(Dpop::required().base_url(BASE)));
    let nested = Router::new().nest("/v1", inner);
    let request = |htu: &str| {
        Request::get("/v1/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", client.proof("GET", htu, &token))
            .body(Body::empty())
            .unwrap()
    };
    let full = send_request(&nested, request("https://api.example.com/v1/me")).await;
    assert_eq!(full.status, StatusCode::OK, "{full:?}");
    let stripped = send_request(&nested, request("https://api.example.com/me")).await;
    assert_eq!(stripped.status, StatusCode::UNAUTHORIZED);
    // A base URL with a path prefix a proxy strips.
    let (prefixed, _) = common::app(
        issuer
            .layer()
            .dpop(Dpop::required().base_url("https://example.com/api/")),
    );
    let request = Request::get("/me")
        .header("authorization", format!("DPoP {token}"))
        .header(
            "dpop",
            client.proof("GET", "https://example.com/api/me", &token),
        )
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send_request(&prefixed, request).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn optional_layers_scopes_and_multi_issuer() {
    let a = TestIssuer::start().await;
    let b = TestIssuer::start().await;
    let client = DpopKey::generate(Algorithm::ES256);
    let auth = JwksAuth::multi_issuer([
        jwks_auth::TrustedIssuer::new(a.issuer(), a.jwks_url()),
        jwks_auth::TrustedIssuer::new(b.issuer(), b.jwks_url()),
    ])
    .audience(jwks_auth::testing::AUDIENCE)
    .optional()
    .dpop(Dpop::required().base_url(BASE));
    let app = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(auth.require_scopes(["admin"]))
        .route(
            "/me",
            get(|c: Option<Claims>| async move {
                c.map_or("anonymous".to_owned(), |Claims(c)| {
                    c.sub.unwrap_or_default()
                })
            }),
        )
        .layer(auth);
    let send = |path: &'static str, token: Option<String>, proof: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get(path);
            if let Some(token) = token {
                request = request.header("authorization", format!("DPoP {token}"));
            }
            if let Some(proof) = proof {
                request = request.header("dpop", proof);
            }
            send_request(&app, request.body(Body::empty()).unwrap()).await
        }
    };
    let reply = send("/me", None, None).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "anonymous")
    );
    for issuer in [&a, &b] {
        let token = issuer.token().bound_to(&client).subject("bob").sign();
        let proof = client.proof("GET", URL, &token);
        let reply = send("/me", Some(token.clone()), Some(proof)).await;
        assert_eq!((reply.status, reply.body.as_str()), (StatusCode::OK, "bob"));
        // Present but bad is still refused behind an optional layer.
        let reply = send("/me", Some(token), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    let url = "https://api.example.com/admin";
    let admin = a.token().bound_to(&client).scope("admin").sign();
    let reply = send(
        "/admin",
        Some(admin.clone()),
        Some(client.proof("GET", url, &admin)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let user = a.token().bound_to(&client).scope("read").sign();
    let reply = send(
        "/admin",
        Some(user.clone()),
        Some(client.proof("GET", url, &user)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .challenge()
            .unwrap()
            .starts_with(r#"DPoP error="insufficient_scope""#),
        "{reply:?}"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        /// A valid proof changed anywhere (a byte replaced, removed or inserted) is never
        /// accepted.
        #[test]
        fn mutated_proofs_are_never_accepted(
            position in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"AQgw_-.xyz0189=+/ {}\"".to_vec()),
            op in 0..3u8,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let t = shared().await;
                let token = t.token();
                let proof = t.client.proof("GET", URL, &token);
                let mut bytes = proof.clone().into_bytes();
                let i = position.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => { bytes.remove(i); }
                    _ => bytes.insert(i, byte),
                }
                let Ok(mutated) = String::from_utf8(bytes) else { return };
                if mutated == proof {
                    return;
                }
                let hits = t.hits.get();
                let Ok(value) = axum::http::HeaderValue::from_str(&mutated) else { return };
                let request = Request::get("/me")
                    .header("authorization", format!("DPoP {token}"))
                    .header("dpop", value)
                    .body(Body::empty())
                    .unwrap();
                let reply = send_request(&t.app, request).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{mutated}");
                assert_eq!(t.hits.get(), hits);
            });
        }
    }

    /// A path segment: hostile (a dot segment, raw, encoded in any case or half-encoded;
    /// an encoded unreserved character) or benign.
    fn segment() -> impl Strategy<Value = (&'static str, bool)> {
        prop::sample::select(vec![
            ("..", true),
            (".", true),
            ("%2e%2e", true),
            ("%2E%2e", true),
            (".%2E", true),
            ("%2e.", true),
            ("%2E", true),
            ("%6De", true),
            ("%41dmin", true),
            ("tenant", false),
            ("a%20b", false),
            ("x-y_z~", false),
            ("%C3%A9", false),
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// A request path with a dot segment or an encoded unreserved character is never
        /// accepted, whether its proof names the path as sent or as normalised (which
        /// another service's path could be); a benign path with its own proof is.
        #[test]
        fn proofs_for_dot_segment_paths_are_never_accepted(
            segments in prop::collection::vec(segment(), 1..3),
            normalised in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let t = shared_paths().await;
                let token = t.token();
                let hostile = segments.iter().any(|(_, h)| *h);
                let path = format!(
                    "/{}/me",
                    segments.iter().map(|(s, _)| *s).collect::<Vec<_>>().join("/")
                );
                let named = if normalised {
                    // What dot-segment removal would make of it (RFC 3986 §5.2.4).
                    let mut out: Vec<&str> = Vec::new();
                    for seg in path.split('/').skip(1) {
                        match seg.to_ascii_lowercase().as_str() {
                            ".." | "%2e%2e" | ".%2e" | "%2e." => { out.pop(); }
                            "." | "%2e" => {}
                            _ => out.push(seg),
                        }
                    }
                    format!("/{}", out.join("/"))
                } else {
                    path.clone()
                };
                let proof = t.client.proof("GET", &format!("{BASE}{named}"), &token);
                let hits = t.hits.get();
                let request = Request::get(path.as_str())
                    .header("authorization", format!("DPoP {token}"))
                    .header("dpop", proof)
                    .body(Body::empty())
                    .unwrap();
                let reply = send_request(&t.app, request).await;
                if hostile {
                    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} ({named})");
                    assert_eq!(reply.json()["error"], "invalid_dpop_proof", "{path}");
                    assert_eq!(t.hits.get(), hits, "{path}");
                } else if named == path {
                    assert_eq!(reply.status, StatusCode::OK, "{path}: {reply:?}");
                    assert_eq!(t.hits.get(), hits + 1, "{path}");
                }
            });
        }

        /// A proof key the layer will not spend time on (RSA over 4096 bits, or another
        /// exponent than 65537) is refused as an invalid proof, even with a token bound
        /// to it, and never panics.
        #[test]
        fn oversized_rsa_proof_keys_are_refused(
            modulus_len in prop_oneof![513..1100usize, 64..513usize],
            exponent in prop_oneof![Just(vec![1u8, 0, 1]), prop::collection::vec(any::<u8>(), 1..6)],
            fill in any::<u8>(),
        ) {
            let cheap = modulus_len <= 512 && exponent == [1, 0, 1];
            prop_assume!(!cheap);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                use sha2::Digest;
                let t = shared().await;
                let mut n = vec![fill | 0x80; modulus_len];
                n[modulus_len - 1] |= 1;
                let (n, e) = (b64(&n), b64(&exponent));
                let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                let jkt = b64(&sha2::Sha256::digest(canonical.as_bytes()));
                let token = t.issuer.token().subject("alice").claim("cnf", json!({"jkt": jkt})).sign();
                let header = json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": {"kty": "RSA", "n": n, "e": e}});
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
                let claims = json!({
                    "jti": format!("rsa-{modulus_len}-{fill}"), "htm": "GET", "htu": URL, "iat": now,
                    "ath": b64(&sha2::Sha256::digest(token.as_bytes())),
                });
                let proof = format!(
                    "{}.{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes()),
                    b64(&vec![fill; modulus_len])
                );
                let hits = t.hits.get();
                let reply = t.get(&token, &proof).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{modulus_len} {exponent:?}");
                assert_eq!(reply.json()["error"], "invalid_dpop_proof");
                assert_eq!(t.hits.get(), hits);
            });
        }

        /// No `Dpop` setting panics: windows and lifetimes of any size, any algorithm
        /// list, any secret length are clamped or refused at validation, and a layer that
        /// validates answers a request with a 200 or a 401, never a 500 or a panic.
        #[test]
        fn no_dpop_setting_panics(
            window in (any::<u64>(), 0..1_000_000_000u32),
            lifetime in (any::<u64>(), 0..1_000_000_000u32),
            nonces in any::<bool>(),
            secret_len in prop::option::of(0..64usize),
            algs in prop::collection::vec(prop::sample::select(vec![
                Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256, Algorithm::PS256,
            ]), 0..4),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let t = shared().await;
                let mut dpop = Dpop::required()
                    .base_url(BASE)
                    .window(std::time::Duration::new(window.0, window.1))
                    .nonce_lifetime(std::time::Duration::new(lifetime.0, lifetime.1))
                    .algorithms(algs.clone());
                if nonces {
                    dpop = dpop.nonces();
                }
                if let Some(len) = secret_len {
                    dpop = dpop.nonce_secret(vec![7; len]);
                }
                let jwks: serde_json::Value = serde_json::from_str(&t.issuer.jwks_document()).unwrap();
                let auth = JwksAuth::from_jwks(jwks)
                    .issuer(t.issuer.issuer())
                    .audience(jwks_auth::testing::AUDIENCE)
                    .dpop(dpop);
                let valid = auth.validate().is_ok();
                prop_assert_eq!(valid, !algs.is_empty() && secret_len.is_none_or(|l| l >= 32));
                if !valid {
                    return Ok(());
                }
                let (app, hits) = app(auth);
                let token = t.token();
                let request = Request::get("/me")
                    .header("authorization", format!("DPoP {token}"))
                    .header("dpop", t.client.proof("GET", URL, &token))
                    .body(Body::empty())
                    .unwrap();
                let reply = send_request(&app, request).await;
                let expected = if !algs.contains(&Algorithm::ES256) {
                    "invalid_dpop_proof"
                } else if nonces || secret_len.is_some() {
                    "use_dpop_nonce"
                } else {
                    ""
                };
                if expected.is_empty() {
                    prop_assert_eq!(reply.status, StatusCode::OK);
                    prop_assert_eq!(hits.get(), 1);
                } else {
                    prop_assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
                    prop_assert_eq!(&reply.json()["error"], expected);
                }
                Ok(())
            })?;
        }
    }

    /// One target for every case (a fresh issuer per case would dominate the run); each
    /// case runs on its own runtime, so the layer is static and built from a static set.
    /// No case of these properties is accepted, so their handler counts stay put while
    /// they run in parallel.
    async fn shared() -> &'static Target {
        static TARGET: tokio::sync::OnceCell<Target> = tokio::sync::OnceCell::const_new();
        TARGET
            .get_or_init(|| async { Target::start_static().await })
            .await
    }

    /// The hostile-paths property's own target: its benign cases are accepted.
    async fn shared_paths() -> &'static Target {
        static TARGET: tokio::sync::OnceCell<Target> = tokio::sync::OnceCell::const_new();
        TARGET
            .get_or_init(|| async { Target::start_static().await })
            .await
    }
}

impl Target {
    /// A target whose keys are a fixed set (no server to outlive its runtime).
    async fn start_static() -> Self {
        let issuer = TestIssuer::start().await;
        let jwks: serde_json::Value = serde_json::from_str(&issuer.jwks_document()).unwrap();
        let auth = JwksAuth::from_jwks(jwks)
            .issuer(issuer.issuer())
            .audience(jwks_auth::testing::AUDIENCE)
            .dpop(Dpop::required().base_url(BASE));
        // Routes a dot segment could reach, as in the audit's probe.
        let (app, hits) = app_at(auth, &["/me", "/{a}/me", "/{a}/{b}/me"]);
        Self {
            issuer,
            app,
            hits,
            client: DpopKey::generate(Algorithm::ES256),
        }
    }
}

#[test]
fn a_runtime_without_timers_is_enough_for_static_keys_and_the_memory_store() {
    // The in-memory store answers at once: no timer is armed for it, so a runtime built
    // without the time driver does not panic.
    let setup = tokio::runtime::Runtime::new().unwrap();
    let target = setup.block_on(Target::start_static());
    let token = target.token();
    let proof = target.client.proof("GET", URL, &token);
    let bare = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let reply = bare.block_on(target.get(&token, &proof));
    target.accepted("no time driver", &reply, 0);
    let reply = bare.block_on(target.get(&token, &proof));
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
}

#[tokio::test]
async fn derived_layers_share_the_default_replay_store() {
    let issuer = TestIssuer::start().await;
    let required = issuer.layer().dpop(Dpop::required().base_url(BASE));
    let optional = required.clone().optional();
    let (a, _) = app(required);
    let (b, b_hits) = app(optional);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let proof = client.proof("GET", URL, &token);
    let request = || {
        Request::get("/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", &proof)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(send_request(&a, request()).await.status, StatusCode::OK);
    let reply = send_request(&b, request()).await;
    assert_eq!(
        reply.json()["error_description"],
        K::DpopReplay.description()
    );
    assert_eq!(b_hits.get(), 0);
}

#[tokio::test]
async fn grpc_calls_get_grpc_statuses_for_dpop_rejections() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let token = t.token();
    let grpc = |proof: &str| {
        Request::post("/me")
            .header("content-type", "application/grpc")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap()
    };
    // A proof for GET on a POST: UNAUTHENTICATED, with the DPoP challenge kept.
    let wrong_method = t.client.proof("GET", URL, &token);
    let reply = send_request(&t.app, grpc(&wrong_method)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["grpc-status"], "16");
    assert_eq!(
        reply.headers["grpc-message"],
        K::InvalidDpopProof.description()
    );
    assert!(
        reply
            .challenge()
            .unwrap()
            .starts_with(r#"DPoP error="invalid_dpop_proof""#)
    );
    assert_eq!(t.hits.get(), 0);
}

#[tokio::test]
async fn a_nonce_rotates_and_the_previous_one_still_works() {
    // Slots of 2 s: one real sleep, to the start of the next slot (at most 2.2 s). The
    // rest of the schedule (a nonce two slots old is refused) is the unit test's.
    let lifetime = 2.0;
    let t = Target::start(
        Dpop::required()
            .base_url(BASE)
            .nonce_secret(b"rotation: a secret of 32+ bytes..".to_vec())
            .nonce_lifetime(std::time::Duration::from_secs(2)),
    )
    .await;
    let token = t.token();
    let reply = t.get(&token, &t.client.proof("GET", URL, &token)).await;
    let first = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    // The nonce names its slot (8 bytes, big-endian): sleep to the start of the next.
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&first)
        .unwrap();
    let slot = u64::from_be_bytes(bytes[..8].try_into().unwrap()) as f64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let next_slot = (slot + 1.0) * lifetime;
    tokio::time::sleep(std::time::Duration::from_secs_f64(
        (next_slot - now).max(0.0) + 0.2,
    ))
    .await;
    let proof = t
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(&first)
        .sign();
    let reply = t.get(&token, &proof).await;
    t.accepted("the previous slot's nonce", &reply, 0);
    let second = reply.headers["dpop-nonce"].to_str().unwrap();
    assert_ne!(second, first, "the response carries the rotated nonce");
    let proof = t
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(second)
        .sign();
    t.accepted("the current nonce", &t.get(&token, &proof).await, 1);
}

/// An admitted request remembers its scheme: a later refusal (a route layer's 403, a
/// handler's `AuthError`) is told in the scheme the request used, with `algs`, on an
/// `allowed` layer too (RFC 9449 §7.1).
#[tokio::test]
async fn refusals_behind_the_layer_are_told_in_the_requests_scheme() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer().dpop(Dpop::allowed().base_url(BASE));
    let app: Router = Router::new()
        .route("/admin", get(|| async { "admin" }))
        .route_layer(auth.require_scopes(["admin"]))
        .layer(auth);
    let client = DpopKey::generate(Algorithm::ES256);
    let bound = issuer.token().bound_to(&client).sign();
    let proof = client.proof("GET", &format!("{BASE}/admin"), &bound);
    let request = Request::get("/admin")
        .header("authorization", format!("DPoP {bound}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap();
    let reply = send_request(&app, request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    let kind = K::InsufficientScope;
    assert_eq!(
        reply.challenge(),
        Some(
            format!(
                r#"Bearer, DPoP error="insufficient_scope", error_description="{}", scope="admin", algs="{}""#,
                kind.description(),
                default_algs()
            )
            .as_str()
        )
    );
    let plain = issuer.token().sign();
    let request = Request::get("/admin")
        .header("authorization", format!("Bearer {plain}"))
        .body(Body::empty())
        .unwrap();
    let reply = send_request(&app, request).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(
        reply
            .challenge()
            .unwrap()
            .starts_with(r#"Bearer error="insufficient_scope""#),
        "{reply:?}"
    );
}

/// No `Dpop` setting can panic the request path: a window of `Duration::MAX` is lowered
/// to an hour, and the replay record still works.
#[tokio::test]
async fn a_huge_window_is_clamped_not_a_panic() {
    let t = Target::start(
        Dpop::required()
            .base_url(BASE)
            .window(std::time::Duration::MAX)
            .nonce_lifetime(std::time::Duration::MAX),
    )
    .await;
    let token = t.token();
    let proof = t.client.proof("GET", URL, &token);
    t.accepted("a huge window", &t.get(&token, &proof).await, 0);
    t.rejects("the replay", &token, &[&proof], K::DpopReplay)
        .await;
}

/// A token bound to a DPoP key and to something else (an mTLS certificate) is refused
/// on the DPoP path: the proof alone would not confirm the other binding.
#[tokio::test]
async fn a_token_with_several_confirmation_members_is_refused() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let token = t
        .issuer
        .token()
        .claim(
            "cnf",
            json!({"jkt": t.client.thumbprint(), "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}),
        )
        .sign();
    let proof = t.client.proof("GET", URL, &token);
    let (hits, reply) = (t.hits.get(), t.get(&token, &proof).await);
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.challenge(),
        Some(dpop_challenge(K::InvalidClaims).as_str())
    );
    assert_eq!(t.hits.get(), hits, "the handler did not run");
}

/// Nonces must be unpredictable (RFC 9449 §8): a short secret is a configuration error,
/// and a nonce is bound to the service's base URL, so two services sharing a secret do
/// not accept each other's.
#[tokio::test]
async fn nonce_secrets_are_long_and_nonces_belong_to_one_service() {
    let issuer = TestIssuer::start().await;
    for secret in [Vec::new(), b"short".to_vec(), vec![7; 31]] {
        let auth = issuer
            .layer()
            .dpop(Dpop::required().base_url(BASE).nonce_secret(secret));
        assert_eq!(
            auth.validate().map_err(|e| e.kind().clone()),
            Err(ConfigErrorKind::DpopNonceSecret)
        );
    }
    let secret = b"shared by two services, 32 bytes".to_vec();
    let other_base = "https://other.example.com";
    let here = Target::start(Dpop::required().base_url(BASE).nonce_secret(secret.clone())).await;
    let there = Target::start(Dpop::required().base_url(other_base).nonce_secret(secret)).await;
    // A nonce `there` handed out, in a proof for `here`.
    let token = there.token();
    let fresh = there
        .client
        .proof("GET", &format!("{other_base}/me"), &token);
    let reply = there.get(&token, &fresh).await;
    let theirs = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
    let token = here.token();
    let proof = here
        .client
        .proof_for("GET", URL)
        .access_token(&token)
        .nonce(&theirs)
        .sign();
    here.rejects(
        "another service's nonce",
        &token,
        &[&proof],
        K::UseDpopNonce,
    )
    .await;
}

/// A proof for another service's URL on the same host cannot be replayed here through a
/// path whose dot segments normalise away, and a proof is only good for the path the
/// router routes (issue 22's probe: base `https://example.com/api`, a `/{tenant}/admin`
/// route, a proof for `https://example.com/admin`).
#[tokio::test]
async fn dot_segments_and_encoded_paths_never_change_what_a_proof_is_for() {
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .dpop(Dpop::required().base_url("https://example.com/api"));
    let ran = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = ran.clone();
    let app: Router = Router::new()
        .route(
            "/{tenant}/admin",
            get(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { "admin" }
            }),
        )
        .route("/me", get(|| async { "me" }))
        .route("/files/{name}", get(|| async { "file" }))
        .layer(auth);
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let send = |path: &'static str, htu: &str| {
        let proof = client.proof("GET", htu, &token);
        let request = Request::get(path)
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        let app = app.clone();
        async move { send_request(&app, request).await }
    };
    for path in [
        "/%2e%2e/admin",
        "/../admin",
        "/%2E%2e/admin",
        "/.%2E/admin",
        "/./admin",
    ] {
        let reply = send(path, "https://example.com/admin").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            reply.challenge(),
            Some(dpop_challenge(K::InvalidDpopProof).as_str()),
            "{path}"
        );
    }
    // Encoded unreserved characters: compared decoded, routed raw.
    let reply = send("/%6De", "https://example.com/api/me").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Legitimate paths: a reserved character encoded, the tenant route itself.
    let reply = send("/files/a%20b", "https://example.com/api/files/a%20b").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "file")
    );
    let reply = send("/acme/admin", "https://example.com/api/acme/admin").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "admin")
    );
}

/// Someone without a valid token never makes the layer verify a proof signature: the
/// token's key-free checks, its binding and its signature come first, so a forged token
/// sent with a proof (whose signature is broken too, or would be costly) is refused for
/// the token. A valid token with a broken proof is still refused for the proof, fresh or
/// cached.
#[tokio::test]
async fn a_proof_signature_is_checked_only_for_a_good_token() {
    let t = Target::start(Dpop::required().base_url(BASE)).await;
    let flip = |jws: &str| {
        let (input, signature) = jws.rsplit_once('.').unwrap();
        let mut signature = signature.as_bytes().to_vec();
        signature[5] = if signature[5] == b'A' { b'B' } else { b'A' };
        format!("{input}.{}", String::from_utf8(signature).unwrap())
    };
    let token = t.token();
    let forged = flip(&token);
    let garbage = "not-a-token";
    for (case, token, kind) in [
        ("forged token", forged.as_str(), K::InvalidSignature),
        ("garbage token", garbage, K::Malformed),
    ] {
        let broken_proof = flip(&t.client.proof("GET", URL, token));
        let reply = t.get(token, &broken_proof).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{case}");
        assert_eq!(
            reply.challenge(),
            Some(dpop_challenge(kind).as_str()),
            "{case}: refused for the token, the proof's signature never checked"
        );
    }
    // The good token with a broken proof: refused for the proof, then accepted with a
    // good one, then (cached) refused again with a broken one.
    for _ in 0..2 {
        let broken = flip(&t.client.proof("GET", URL, &token));
        let reply = t.get(&token, &broken).await;
        assert_eq!(
            reply.challenge(),
            Some(dpop_challenge(K::InvalidDpopProof).as_str())
        );
        let hits = t.hits.get();
        t.accepted(
            "good proof",
            &t.get(&token, &t.client.proof("GET", URL, &token)).await,
            hits,
        );
    }
}

/// One client key, however fast, holds at most a sixteenth of the in-memory store: past
/// its share its own proofs get 503 with `Retry-After`, others' are accepted, and the
/// refusals are logged once, not once per request.
#[tokio::test]
async fn one_client_holds_at_most_its_share_of_the_replay_store() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let issuer = TestIssuer::start().await;
    let store = Arc::new(MemoryReplayStore::with_capacity(4096));
    assert_eq!(store.per_client_capacity(), 256);
    let (app, hits) = app(issuer
        .layer()
        .dpop(Dpop::required().base_url(BASE).replay_store(store.clone())));
    let send = |client: &DpopKey, token: &str| {
        let proof = client.proof("GET", URL, token);
        let request = Request::get("/me")
            .header("authorization", format!("DPoP {token}"))
            .header("dpop", proof)
            .body(Body::empty())
            .unwrap();
        send_request(&app, request)
    };
    let greedy = DpopKey::generate(Algorithm::ES256);
    let greedy_token = issuer.token().bound_to(&greedy).sign();
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..400 {
        let reply = send(&greedy, &greedy_token).await;
        match reply.status {
            StatusCode::OK => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
                refused += 1;
            }
            other => panic!("{other}: {reply:?}"),
        }
    }
    assert!((200..=256).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + refused, 400);
    assert!(store.len() <= 256);
    // Another client is not affected.
    let other = DpopKey::generate(Algorithm::EdDSA);
    let other_token = issuer.token().bound_to(&other).sign();
    for _ in 0..20 {
        assert_eq!(send(&other, &other_token).await.status, StatusCode::OK);
    }
    assert_eq!(hits.get(), accepted + 20);
    assert_eq!(
        logs.count(
            tracing::Level::WARN,
            "its share of the in-memory replay store"
        ),
        1,
        "{refused} refusals, one line"
    );
}
