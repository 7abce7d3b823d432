//! Property tests through the public API, against a real loopback issuer:
//!
//! - a validly signed token, mutated in any way, is never accepted;
//! - any `Authorization` header gets a 400 or 401 with a challenge, never a 500, and the
//!   handler never runs;
//! - any key set document (random bytes, or a real one mutated) is loaded or refused,
//!   never panics, and never makes a stranger's token verify.
//!
//! Every request is bounded by a timeout (a hang fails the case); speed itself is
//! measured in `benches/`, not here.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use jwks_auth::testing::{JwksBehavior, TestIssuer, TestKey};
use jwks_auth::{Algorithm, JwksAuth};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use tokio::runtime::Runtime;

/// A hang bound, not a speed assertion: generous for a loaded 2-core machine.
const BOUND: Duration = Duration::from_secs(10);

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// One edit to a token's text.
#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the character at this position with this one.
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
    /// Keep this many characters.
    Truncate(usize),
    /// Flip one bit of one decoded byte of a segment, and re-encode it.
    FlipBit(usize, usize, u8),
    /// Swap two segments.
    Swap(usize, usize),
    /// Replace a segment with the same segment of another valid token.
    Splice(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = select(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/~"
            .chars()
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        (any::<usize>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<usize>(), ch).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
        (0..3usize, any::<usize>(), 0..8u8).prop_map(|(s, i, b)| Mutation::FlipBit(s, i, b)),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (0..3usize).prop_map(Mutation::Splice),
    ]
}

fn apply(token: &str, other: &str, mutation: &Mutation) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut chars: Vec<char> = token.chars().collect();
    let len = chars.len();
    let mut parts: Vec<String> = token.split('.').map(String::from).collect();
    let segment_edit = matches!(
        mutation,
        Mutation::FlipBit(..) | Mutation::Swap(..) | Mutation::Splice(..)
    );
    if segment_edit && parts.len() != 3 {
        // An earlier edit broke the shape; segment edits need three segments.
        return token.to_owned();
    }
    match *mutation {
        Mutation::Replace(i, c) => chars[i % len] = c,
        Mutation::Insert(i, c) => chars.insert(i % (len + 1), c),
        Mutation::Delete(i) => {
            chars.remove(i % len);
        }
        Mutation::Truncate(n) => chars.truncate(n % len),
        Mutation::FlipBit(segment, i, bit) => {
            let Ok(mut bytes) = URL_SAFE_NO_PAD.decode(&parts[segment]) else {
                return token.to_owned();
            };
            if !bytes.is_empty() {
                let at = i % bytes.len();
                bytes[at] ^= 1 << bit;
            }
            parts[segment] = URL_SAFE_NO_PAD.encode(bytes);
            return parts.join(".");
        }
        Mutation::Swap(a, b) => {
            parts.swap(a, b);
            return parts.join(".");
        }
        Mutation::Splice(segment) => {
            parts[segment] = other.split('.').nth(segment).unwrap().to_owned();
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

#[test]
fn a_mutated_token_is_never_accepted() {
    let rt = runtime();
    let issuer = rt.block_on(TestIssuer::start());
    let auth: JwksAuth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().cooldown(Duration::from_secs(3600)));
    rt.block_on(auth.ready()).unwrap();
    let algorithms = jwks_auth::testing::ISSUER_ALGORITHMS;
    // Two valid tokens per algorithm, different claims: splicing one into the other must
    // not verify either.
    let tokens: Vec<(String, String)> = algorithms
        .iter()
        .map(|alg| {
            let a = issuer.token().alg(*alg).subject("alice").sign();
            let b = issuer
                .token()
                .alg(*alg)
                .subject("mallory")
                .scope("admin")
                .sign();
            (a, b)
        })
        .collect();
    for (a, b) in &tokens {
        for token in [a, b] {
            let verified = rt.block_on(auth.verify(token));
            assert!(verified.is_ok(), "the unmutated token verifies");
        }
    }
    let fetches = issuer.fetch_count();
    runner(4096)
        .run(
            &(
                0..tokens.len(),
                mutation(),
                prop::collection::vec(mutation(), 0..3),
            ),
            |(which, first, more)| {
                let (token, other) = &tokens[which];
                let mut mutated = apply(token, other, &first);
                for m in &more {
                    if !mutated.is_empty() {
                        mutated = apply(&mutated, other, m);
                    }
                }
                if mutated == *token || mutated == *other || mutated.is_empty() {
                    return Ok(());
                }
                let result = rt
                    .block_on(async { tokio::time::timeout(BOUND, auth.verify(&mutated)).await })
                    .expect("verification is bounded");
                prop_assert!(
                    result.is_err(),
                    "accepted a mutated token: {first:?} {more:?} -> {mutated}"
                );
                Ok(())
            },
        )
        .unwrap();
    // Mutated kids are unknown kids: at most the one forced refresh per cooldown.
    assert!(issuer.fetch_count() <= fetches + 1);
}

fn header_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Anything a header value may hold: visible ASCII, space, tab, obs-text.
        prop::collection::vec(
            prop_oneof![0x20u8..0x7f, Just(b'\t'), 0x80u8..=0xff],
            0..200
        ),
        // Bearer and a token-shaped string.
        "(?i:bearer)[ \t]{0,2}[A-Za-z0-9_.=+/~ -]{0,200}".prop_map(String::into_bytes),
    ]
}

#[test]
fn any_authorization_header_gets_a_4xx_and_a_challenge() {
    let rt = runtime();
    let issuer = rt.block_on(TestIssuer::start());
    let layer = issuer.layer();
    rt.block_on(layer.ready()).unwrap();
    let (app, hits) = app(layer);
    runner(1024)
        .run(
            &prop::collection::vec(header_value(), 1..3),
            |values| {
                let mut request = Request::get("/me");
                for v in &values {
                    request = request.header("authorization", v.as_slice());
                }
                let request = request.body(Body::empty()).unwrap();
                let reply = rt
                    .block_on(async {
                        tokio::time::timeout(BOUND, send_request(&app, request)).await
                    })
                    .expect("the answer is bounded");
                prop_assert!(
                    reply.status == StatusCode::BAD_REQUEST
                        || reply.status == StatusCode::UNAUTHORIZED,
                    "{reply:?}"
                );
                let challenge = reply.challenge().expect("a challenge");
                prop_assert!(challenge.starts_with("Bearer"), "{challenge}");
                // Nothing of the request is echoed into the challenge.
                prop_assert!(
                    [
                        "Bearer",
                        r#"Bearer error="invalid_request", error_description="malformed authorization header""#,
                    ]
                    .contains(&challenge)
                        || challenge.starts_with(r#"Bearer error="invalid_token", error_description="the token"#),
                    "{challenge}"
                );
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(hits.get(), 0, "no random header got through");
}

/// Structural edits to a real key set document: follows `path` (indices taken modulo
/// the size of each object or array) and replaces or deletes what it ends on.
fn mutate_json(node: &mut Value, path: &[usize], replacement: &Value, delete: bool) {
    let Some((step, rest)) = path.split_first() else {
        *node = replacement.clone();
        return;
    };
    match node {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(step % map.len()).unwrap().clone();
            if rest.is_empty() && delete {
                map.remove(&key);
            } else {
                mutate_json(map.get_mut(&key).unwrap(), rest, replacement, delete);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            let at = step % items.len();
            if rest.is_empty() && delete {
                items.remove(at);
            } else {
                mutate_json(&mut items[at], rest, replacement, delete);
            }
        }
        _ => *node = replacement.clone(),
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
        select(vec![
            "RSA", "EC", "OKP", "oct", "sig", "enc", "P-256", "Ed25519", "RS256", "none", "AQAB"
        ])
        .prop_map(Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ]
}

/// A key set body: random bytes, or the issuer's real document with a few edits.
fn document(real: Value) -> impl Strategy<Value = String> {
    let edits = prop::collection::vec(
        (
            prop::collection::vec(any::<usize>(), 1..4),
            json_leaf(),
            any::<bool>(),
        ),
        1..4,
    );
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        4 => edits.prop_map(move |edits| {
            let mut doc = real.clone();
            for (path, leaf, delete) in &edits {
                mutate_json(&mut doc, path, leaf, *delete);
            }
            doc.to_string()
        }),
    ]
}

#[test]
fn any_key_set_document_is_loaded_or_refused_and_never_trusts_a_stranger() {
    let rt = runtime();
    let issuer = rt.block_on(TestIssuer::start());
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(2)));
    rt.block_on(auth.ready()).unwrap();
    let real = rt.block_on(async {
        reqwest::get(issuer.jwks_url())
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let real: Value = serde_json::from_str(&real).unwrap();
    // Strangers that reuse the issuer's kids, or carry none.
    let strangers: Vec<String> = [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ]
    .into_iter()
    .flat_map(|alg| {
        let kid = issuer.key(alg).kid().to_owned();
        let key = Arc::new(TestKey::generate(alg, kid));
        [
            issuer.token().alg(alg).key(key.clone()).sign(),
            issuer.token().alg(alg).key(key).no_kid().sign(),
        ]
    })
    .collect();
    let loaded = std::sync::atomic::AtomicU32::new(0);
    runner(512)
        .run(&document(real), |body| {
            issuer.set_behavior(JwksBehavior::Body(body.clone()));
            let refreshed = rt
                .block_on(async { tokio::time::timeout(BOUND, auth.refresh_now()).await })
                .expect("a refresh is bounded");
            loaded.fetch_add(
                u32::from(refreshed.is_ok()),
                std::sync::atomic::Ordering::Relaxed,
            );
            let status = auth.status();
            prop_assert!(status.kids.len() <= jwks_auth::limits::MAX_KEYS);
            for token in &strangers {
                let result = rt
                    .block_on(async { tokio::time::timeout(BOUND, auth.verify(token)).await })
                    .expect("verification is bounded");
                prop_assert!(result.is_err(), "a stranger's token verified after {body}");
            }
            Ok(())
        })
        .unwrap();
    let loaded = loaded.into_inner();
    eprintln!("{loaded} of 512 documents loaded");
    assert!(loaded > 0, "some edited documents still load");
    // And the real document still works afterwards.
    issuer.set_behavior(JwksBehavior::Normal);
    rt.block_on(auth.refresh_now()).unwrap();
    let token = issuer.token().sign();
    assert!(rt.block_on(auth.verify(&token)).is_ok());
}
