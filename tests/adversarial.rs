//! Hostile tokens and requests, one test per class of attack (see SECURITY.md).
//!
//! Every case goes through a real `Router` whose keys come from a real loopback issuer,
//! and asserts three things: the exact status and `WWW-Authenticate` challenge, that the
//! handler never ran, and that the key set was not fetched (each target loads its keys
//! once, up front, and spends its one forced refresh before any unknown `kid` is sent, so
//! any fetch a case causes is a failure). Each test prints its case count.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::*;
use jwks_auth::testing::{AUDIENCE, TestIssuer, TestKey};
use jwks_auth::{Algorithm, AuthErrorKind as K};
use serde_json::{Value, json};

const MALFORMED_REQUEST: &str =
    r#"Bearer error="invalid_request", error_description="malformed authorization header""#;

fn invalid_token(kind: K) -> String {
    format!(
        r#"Bearer error="invalid_token", error_description="{}""#,
        kind.description()
    )
}

fn unb64(segment: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .expect("canonical base64url")
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `header.payload.signature` from raw parts.
fn compact(header: &str, payload: &str, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(payload.as_bytes()),
        b64(signature)
    )
}

/// The three segments of a compact token.
fn segments(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    [parts[0], parts[1], parts[2]]
}

/// The same token with another signature.
fn with_signature(token: &str, signature: &[u8]) -> String {
    let [h, p, _] = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

/// A layer behind a router with a counting handler, its keys loaded and its forced
/// refresh spent.
struct Target {
    issuer: TestIssuer,
    app: Router,
    hits: Hits,
    cases: AtomicUsize,
    class: &'static str,
}

impl Target {
    async fn start(class: &'static str) -> Self {
        let issuer = TestIssuer::start().await;
        let layer = issuer.layer();
        let (app, hits) = app(layer.clone());
        layer.ready().await.expect("the issuer serves keys");
        assert_eq!(issuer.fetch_count(), 1);
        let target = Self {
            issuer,
            app,
            hits,
            cases: AtomicUsize::new(0),
            class,
        };
        // An unknown kid may force one refresh per cooldown (30 s): spend it now.
        let stranger = issuer_less_token(&target.issuer, "never-published");
        let reply = send(&target.app, &stranger).await;
        assert_eq!(
            reply.challenge(),
            Some(invalid_token(K::UnknownKey).as_str())
        );
        assert_eq!(target.issuer.fetch_count(), 2, "one forced refresh");
        target
    }

    fn issuer(&self) -> &TestIssuer {
        &self.issuer
    }

    /// Claims that pass every rule, with `extra` members appended (JSON text).
    fn claims(&self, extra: &str) -> String {
        format!(
            r#"{{"iss":"{}","aud":"{AUDIENCE}","sub":"user-1","exp":{}{extra}}}"#,
            self.issuer.issuer(),
            now() + 600
        )
    }

    /// `Authorization: Bearer {token}` gets 401 `invalid_token` of this kind.
    async fn rejects(&self, case: &str, token: &str, kind: K) {
        let value = format!("Bearer {token}");
        let reply = self
            .answers(
                case,
                &[value.as_bytes()],
                StatusCode::UNAUTHORIZED,
                &invalid_token(kind),
            )
            .await;
        assert_eq!(reply.json()["error"], "invalid_token", "{case}");
        assert_eq!(
            reply.json()["error_description"],
            kind.description(),
            "{case}"
        );
    }

    /// These raw `Authorization` values get this status and exactly this challenge; the
    /// handler does not run and nothing is fetched.
    async fn answers(
        &self,
        case: &str,
        authorization: &[&[u8]],
        status: StatusCode,
        challenge: &str,
    ) -> Reply {
        let (hits, fetches) = (self.hits.get(), self.issuer.fetch_count());
        let reply = send_auth(&self.app, authorization).await;
        assert_eq!(reply.status, status, "{}: {case}: {reply:?}", self.class);
        assert_eq!(reply.challenge(), Some(challenge), "{}: {case}", self.class);
        assert_eq!(
            self.hits.get(),
            hits,
            "{}: {case}: the handler ran",
            self.class
        );
        assert_eq!(
            self.issuer.fetch_count(),
            fetches,
            "{}: {case}: the key set was fetched",
            self.class
        );
        self.cases.fetch_add(1, Ordering::Relaxed);
        reply
    }

    /// The token is accepted (a control case, so the rejections mean something).
    async fn accepts(&self, case: &str, token: &str) {
        self.accepts_header(case, &format!("Bearer {token}")).await;
    }

    /// This raw `Authorization` value is accepted: the handler runs, nothing is fetched.
    async fn accepts_header(&self, case: &str, authorization: &str) {
        let (hits, fetches) = (self.hits.get(), self.issuer.fetch_count());
        let reply = send_auth(&self.app, &[authorization.as_bytes()]).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{}: {case}: {reply:?}",
            self.class
        );
        assert_eq!(self.hits.get(), hits + 1, "{case}");
        assert_eq!(self.issuer.fetch_count(), fetches, "{case}");
    }

    fn report(&self) {
        eprintln!(
            "adversarial class {:?}: {} cases",
            self.class,
            self.cases.load(Ordering::Relaxed)
        );
    }
}

/// A well-signed token whose kid the issuer never published.
fn issuer_less_token(issuer: &TestIssuer, kid: &str) -> String {
    let key = Arc::new(TestKey::generate(Algorithm::ES256, kid));
    issuer.token().alg(Algorithm::ES256).key(key).sign()
}

// ---------------------------------------------------------------------------------------
// Minimal DER, to present public keys in the encodings an attacker would try.

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = if trimmed.first().is_some_and(|b| b & 0x80 != 0) || trimmed.is_empty() {
        vec![0]
    } else {
        vec![]
    };
    content.extend(trimmed);
    der(0x02, &content)
}

fn der_seq(parts: &[Vec<u8>]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    der(0x03, &[&[0][..], bytes].concat())
}

fn spki(algorithm: Vec<u8>, key: &[u8]) -> Vec<u8> {
    der_seq(&[algorithm, bit_string(key)])
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

const OID_RSA: &[u8] = &[
    0x06, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];
const OID_EC: &[u8] = &[0x06, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x06, 8, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 5, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x06, 3, 0x2b, 0x65, 0x70];

/// Every way the published key could be turned into an HMAC secret.
fn public_key_encodings(jwk: &Value) -> Vec<(String, Vec<u8>)> {
    let field = |name: &str| unb64(jwk[name].as_str().unwrap());
    let mut out = vec![
        (
            "the JWK as published".to_owned(),
            jwk.to_string().into_bytes(),
        ),
        (
            "the JWK pretty-printed".to_owned(),
            serde_json::to_string_pretty(jwk).unwrap().into_bytes(),
        ),
    ];
    match jwk["kty"].as_str().unwrap() {
        "RSA" => {
            let (n, e) = (field("n"), field("e"));
            let pkcs1 = der_seq(&[der_uint(&n), der_uint(&e)]);
            let spki = spki(der_seq(&[OID_RSA.to_vec(), vec![0x05, 0]]), &pkcs1);
            let thumbprint_input = json!({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]});
            out.extend([
                (
                    "the RFC 7638 thumbprint input".into(),
                    thumbprint_input.to_string().into_bytes(),
                ),
                ("n, raw".into(), n.clone()),
                (
                    "n, base64url".into(),
                    jwk["n"].as_str().unwrap().as_bytes().to_vec(),
                ),
                ("PKCS#1 DER".into(), pkcs1.clone()),
                (
                    "PKCS#1 PEM".into(),
                    pem("RSA PUBLIC KEY", &pkcs1).into_bytes(),
                ),
                ("SPKI DER".into(), spki.clone()),
                ("SPKI PEM".into(), pem("PUBLIC KEY", &spki).into_bytes()),
                (
                    "SPKI PEM without the final newline".into(),
                    pem("PUBLIC KEY", &spki).trim_end().as_bytes().to_vec(),
                ),
            ]);
        }
        "EC" => {
            let point = [&[4][..], &field("x"), &field("y")].concat();
            let curve = if jwk["crv"] == "P-256" {
                OID_P256
            } else {
                OID_P384
            };
            let spki = spki(der_seq(&[OID_EC.to_vec(), curve.to_vec()]), &point);
            out.extend([
                ("x || y".into(), point[1..].to_vec()),
                ("the uncompressed point".into(), point),
                ("SPKI DER".into(), spki.clone()),
                ("SPKI PEM".into(), pem("PUBLIC KEY", &spki).into_bytes()),
            ]);
        }
        "OKP" => {
            let x = field("x");
            let spki = spki(der_seq(&[OID_ED25519.to_vec()]), &x);
            out.extend([
                ("x, raw".into(), x),
                (
                    "x, base64url".into(),
                    jwk["x"].as_str().unwrap().as_bytes().to_vec(),
                ),
                ("SPKI DER".into(), spki.clone()),
                ("SPKI PEM".into(), pem("PUBLIC KEY", &spki).into_bytes()),
            ]);
        }
        other => panic!("unexpected kty {other}"),
    }
    out
}

fn hmac(alg: &str, secret: &[u8], input: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    hmac::sign(&hmac::Key::new(algorithm, secret), input)
        .as_ref()
        .to_vec()
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn algorithm_attacks() {
    let t = Target::start("algorithm attacks").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let claims = t.claims("");

    // `none`, in any case, with or without a signature.
    for name in ["none", "None", "NONE", "nOnE", "none "] {
        for signature in [&b""[..], b"sig"] {
            let header = format!(r#"{{"alg":"{name}","kid":"{}"}}"#, rsa.kid());
            let token = compact(&header, &claims, signature);
            t.rejects(&format!("alg {name:?}"), &token, K::DisallowedAlgorithm)
                .await;
        }
    }
    // No alg, or one that is not a JWS algorithm this crate knows or allows.
    for header in [
        r#"{"typ":"JWT"}"#.to_owned(),
        r#"{"alg":""}"#.to_owned(),
        r#"{"alg":"rs256"}"#.to_owned(),
        r#"{"alg":"Ed448"}"#.to_owned(),
        r#"{"alg":"ES256K"}"#.to_owned(),
        r#"{"alg":"ed25519"}"#.to_owned(),
        r#"{"alg":"RSA-OAEP"}"#.to_owned(),
        r#"{"alg":"dir"}"#.to_owned(),
    ] {
        let token = compact(&header, &claims, b"signature");
        t.rejects(&header, &token, K::DisallowedAlgorithm).await;
    }
    // Algorithms this crate knows, with no key that fits them: ES512 with no P-521 key
    // published, RFC 9864's Ed25519 naming an RSA key.
    let header = r#"{"alg":"ES512"}"#;
    let token = compact(header, &claims, &[1u8; 132]);
    t.rejects(header, &token, K::KeyMismatch).await;
    let header = format!(r#"{{"alg":"Ed25519","kid":"{}"}}"#, rsa.kid());
    let token = compact(&header, &claims, &[1u8; 64]);
    t.rejects(&header, &token, K::KeyMismatch).await;
    t.rejects(
        "alg as a number",
        &compact(r#"{"alg":256}"#, &claims, b"signature"),
        K::Malformed,
    )
    .await;

    // HS* keyed with a published public key, in every encoding, for every key type.
    for alg in [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ] {
        let key = t.issuer().key(alg);
        for (encoding, secret) in public_key_encodings(&key.jwk()) {
            for hs in ["HS256", "HS384", "HS512"] {
                let header = format!(r#"{{"alg":"{hs}","kid":"{}","typ":"JWT"}}"#, key.kid());
                let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
                let token = format!("{input}.{}", b64(&hmac(hs, &secret, input.as_bytes())));
                let case = format!("{hs} keyed with {} as {encoding}", key.kid());
                t.rejects(&case, &token, K::DisallowedAlgorithm).await;
            }
        }
    }
    // HS256 cannot even be configured (it is not a `jwks_auth::Algorithm`); a layer
    // allowing every algorithm there is still refuses it.
    let hs_layer = t.issuer().layer().algorithms(jwks_auth::DEFAULT_ALGORITHMS);
    let (hs_app, hs_hits) = app(hs_layer);
    let header = format!(r#"{{"alg":"HS256","kid":"{}"}}"#, rsa.kid());
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let secret = rsa.jwk().to_string();
    let token = format!(
        "{input}.{}",
        b64(&hmac("HS256", secret.as_bytes(), input.as_bytes()))
    );
    let reply = send(&hs_app, &token).await;
    assert_eq!(
        reply.challenge(),
        Some(invalid_token(K::DisallowedAlgorithm).as_str())
    );
    assert_eq!(hs_hits.get(), 0);

    // A key used with an algorithm it does not fit (kid names the key, alg another type).
    let ec = t.issuer().key(Algorithm::ES256);
    let ec384 = t.issuer().key(Algorithm::ES384);
    let ed = t.issuer().key(Algorithm::EdDSA);
    for (case, alg, kid) in [
        ("RSA kid, ES256", Algorithm::ES256, rsa.kid()),
        ("RSA kid, EdDSA", Algorithm::EdDSA, rsa.kid()),
        ("P-256 kid, RS256", Algorithm::RS256, ec.kid()),
        ("P-256 kid, ES384", Algorithm::ES384, ec.kid()),
        ("P-384 kid, ES256", Algorithm::ES256, ec384.kid()),
        ("Ed25519 kid, ES256", Algorithm::ES256, ed.kid()),
        ("Ed25519 kid, PS256", Algorithm::PS256, ed.kid()),
    ] {
        let token = t.issuer().token().alg(alg).kid(kid).sign();
        t.rejects(case, &token, K::KeyMismatch).await;
    }

    // The same key, the same signature, another algorithm in the header.
    let rs256 = t.issuer().token().sign();
    let [h, p, s] = segments(&rs256);
    let header: Value = serde_json::from_slice(&unb64(h)).unwrap();
    for other in ["RS384", "RS512", "PS256", "PS384", "PS512"] {
        let mut relabelled = header.clone();
        relabelled["alg"] = json!(other);
        let token = format!("{}.{p}.{s}", b64(relabelled.to_string().as_bytes()));
        t.rejects(
            &format!("RS256 signature labelled {other}"),
            &token,
            K::InvalidSignature,
        )
        .await;
    }
    // An EC or Ed25519 key's JWK names its alg: another alg never reaches the signature.
    let es256 = t.issuer().token().alg(Algorithm::ES256).sign();
    let [h, p, s] = segments(&es256);
    let mut relabelled: Value = serde_json::from_slice(&unb64(h)).unwrap();
    relabelled["alg"] = json!("ES384");
    let token = format!("{}.{p}.{s}", b64(relabelled.to_string().as_bytes()));
    t.rejects("ES256 signature labelled ES384", &token, K::KeyMismatch)
        .await;
    // The RSA key's JWK leaves alg out, so it may sign with any RS/PS algorithm.
    let ps512 = t.issuer().token().alg(Algorithm::PS512).sign();
    t.accepts("PS512 by the RSA key", &ps512).await;
    t.report();
}

/// The group order of P-256 and P-384, big-endian.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";
const P384_N: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973";
/// The order of the Ed25519 base point, little-endian (as S is encoded).
const ED25519_L: &str = "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// a - b for big-endian numbers of the same width (a >= b).
fn sub_be(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut out = vec![0; a.len()];
    let mut borrow = 0i16;
    for i in (0..a.len()).rev() {
        let mut d = a[i] as i16 - b[i] as i16 - borrow;
        borrow = i16::from(d < 0);
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    out
}

#[tokio::test]
async fn signature_malformations() {
    let t = Target::start("signature malformations").await;
    for (alg, order) in [(Algorithm::ES256, P256_N), (Algorithm::ES384, P384_N)] {
        let token = t.issuer().token().alg(alg).sign();
        let signature = unb64(segments(&token)[2]);
        let width = signature.len() / 2;
        let (r, s) = signature.split_at(width);
        let n = hex(order);
        let ones = vec![0xff; width];
        let zero = vec![0; width];
        let der_signature = der_seq(&[der_uint(r), der_uint(s)]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("all zero", vec![0; 2 * width]),
            ("r = 0", [&zero[..], s].concat()),
            ("s = 0", [r, &zero[..]].concat()),
            ("r = n", [&n[..], s].concat()),
            ("s = n", [r, &n[..]].concat()),
            ("r = 2^k - 1", [&ones[..], s].concat()),
            ("s = 2^k - 1", [r, &ones[..]].concat()),
            ("r and s swapped", [s, r].concat()),
            ("one byte short", signature[..2 * width - 1].to_vec()),
            ("one zero byte long", [&signature[..], &[0]].concat()),
            ("leading zero byte", [&[0][..], &signature[..]].concat()),
            ("r only", r.to_vec()),
            ("twice", [&signature[..], &signature[..]].concat()),
            ("DER instead of raw r || s", der_signature),
            ("one bit flipped", {
                let mut flipped = signature.clone();
                flipped[width / 2] ^= 1;
                flipped
            }),
        ];
        for (case, bad) in cases {
            let case = format!("{alg:?} signature: {case}");
            t.rejects(&case, &with_signature(&token, &bad), K::InvalidSignature)
                .await;
        }
        // (r, n - s) is the other valid signature of the same message: ECDSA signatures are
        // malleable and RFC 7518 does not ask for low-s. It authenticates the same claims
        // (see SECURITY.md), so it is accepted, like every JOSE library does.
        let high_s = [r, &sub_be(&n, s)[..]].concat();
        t.accepts("ECDSA (r, n - s)", &with_signature(&token, &high_s))
            .await;
    }

    let eddsa = t.issuer().token().alg(Algorithm::EdDSA).sign();
    let signature = unb64(segments(&eddsa)[2]);
    let mut s_plus_l = signature.clone();
    s_plus_l[32..].copy_from_slice(&hex(ED25519_L));
    for (case, bad) in [
        ("all zero", vec![0; 64]),
        ("S = L (non-canonical)", s_plus_l),
        ("one byte short", signature[..63].to_vec()),
        ("one byte long", [&signature[..], &[0]].concat()),
        ("R only", signature[..32].to_vec()),
    ] {
        let case = format!("EdDSA signature: {case}");
        t.rejects(&case, &with_signature(&eddsa, &bad), K::InvalidSignature)
            .await;
    }

    let rs256 = t.issuer().token().sign();
    let signature = unb64(segments(&rs256)[2]);
    let n = unb64(
        t.issuer().key(Algorithm::RS256).jwk()["n"]
            .as_str()
            .unwrap(),
    );
    for (case, bad) in [
        ("all zero", vec![0; 256]),
        ("the modulus", n.clone()),
        ("all ones (> n)", vec![0xff; 256]),
        ("one byte short", signature[..255].to_vec()),
        ("leading zero byte", [&[0][..], &signature[..]].concat()),
        ("one", [&vec![0; 255][..], &[1]].concat()),
    ] {
        let case = format!("RS256 signature: {case}");
        t.rejects(&case, &with_signature(&rs256, &bad), K::InvalidSignature)
            .await;
    }
    t.report();
}

/// A loopback server that counts every request: a `jku` or `x5u` must never reach it.
async fn spy() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { r#"{"keys":[]}"# }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn header_supplied_keys() {
    let t = Target::start("header-supplied keys").await;
    let (spy_url, spy_hits) = spy().await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let attacker = Arc::new(TestKey::generate(Algorithm::RS256, rsa.kid()));
    let attacker_ec = Arc::new(TestKey::generate(Algorithm::ES256, "attacker-ec"));
    // Not a real certificate: the layer must not look inside one anyway.
    let fake_cert = STANDARD.encode(spki(
        der_seq(&[OID_RSA.to_vec(), vec![0x05, 0]]),
        &unb64(attacker.jwk()["n"].as_str().unwrap()),
    ));
    let headers: Vec<(&str, Value)> = vec![
        ("jwk", attacker.jwk()),
        ("jku", json!(format!("{spy_url}/jwks.json"))),
        ("jku", json!(t.issuer().jwks_url())),
        ("x5u", json!(format!("{spy_url}/cert.pem"))),
        ("x5c", json!([fake_cert])),
        ("x5t", json!("dGh1bWJwcmludA")),
        ("x5t#S256", json!("dGh1bWJwcmludA")),
    ];
    for (name, value) in &headers {
        // The attacker signs with their key under a kid the issuer published, or with
        // no kid, where their signature meets the issuer's keys only.
        for with_kid in [true, false] {
            let mut token = t.issuer().token().key(attacker.clone());
            if !with_kid {
                token = token.no_kid();
            }
            let token = token.header(name, value.clone()).sign();
            let case = format!(
                "{name} header, {}",
                if with_kid { "published kid" } else { "no kid" }
            );
            t.rejects(&case, &token, K::InvalidSignature).await;
        }
    }
    // The attacker's own kid, with its key embedded: unknown, never trusted.
    let token = t
        .issuer()
        .token()
        .alg(Algorithm::ES256)
        .key(attacker_ec.clone())
        .header("jwk", attacker_ec.jwk())
        .header("jku", format!("{spy_url}/jwks.json"))
        .sign();
    t.rejects("jwk and jku with the attacker's kid", &token, K::UnknownKey)
        .await;
    assert_eq!(
        spy_hits.load(Ordering::SeqCst),
        0,
        "a header URL was fetched"
    );
    t.report();
}

#[tokio::test]
async fn hostile_kid_values() {
    let t = Target::start("hostile kid values").await;
    let huge = "k".repeat(8 * 1024);
    let kids: Vec<String> = vec![
        "\u{0}".into(),
        "kid\u{0}rsa-1".into(),
        "rsa-1\r\nX-Injected: 1".into(),
        "\u{1b}[31mred\u{1b}[0m".into(),
        "\u{202e}1-asr".into(),
        "\"".into(),
        r#"", error="insufficient_scope"#.into(),
        "'; DROP TABLE keys; --".into(),
        "../../../../etc/passwd".into(),
        "https://127.0.0.1:1/jwks.json".into(),
        "%00".into(),
        "".into(),
        " ".into(),
        "RSA-1".into(),
        "rsa-1 ".into(),
        huge.clone(),
    ];
    for kid in &kids {
        let token = t.issuer().token().kid(kid).sign();
        let reply_case = format!("kid {:?}", kid.chars().take(40).collect::<String>());
        t.rejects(&reply_case, &token, K::UnknownKey).await;
    }
    // A kid that is not a string is a malformed header, not a lookup.
    for kid in [
        json!(1),
        json!(null),
        json!(["rsa-1"]),
        json!({"kid": "rsa-1"}),
    ] {
        let (header, payload) = t.issuer().token().header("kid", kid.clone()).parts();
        let token =
            t.issuer()
                .key(Algorithm::RS256)
                .sign_compact(Algorithm::RS256, &header, &payload);
        t.rejects(&format!("kid {kid}"), &token, K::Malformed).await;
    }
    t.report();
}

#[tokio::test]
async fn critical_headers() {
    let t = Target::start("crit").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let claims = t.claims("");
    for extra in [
        r#","crit":["exp"],"exp":1"#,
        r#","crit":["b64"],"b64":false"#,
        r#","crit":["urn:example:unknown"]"#,
        r#","crit":[]"#,
        r#","crit":["kid"]"#,
        r#","crit":"exp""#,
        r#","crit":null"#,
    ] {
        let header = format!(r#"{{"alg":"RS256","kid":"{}"{extra}}}"#, rsa.kid());
        let token = rsa.sign_compact(Algorithm::RS256, &header, &claims);
        t.rejects(extra, &token, K::UnsupportedCritical).await;
    }
    t.report();
}

#[tokio::test]
async fn duplicate_json_members() {
    let t = Target::start("duplicate JSON members").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let kid = rsa.kid();
    let header = format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#);
    let sign = |h: &str, p: &str| rsa.sign_compact(Algorithm::RS256, h, p);
    let cases = [
        (
            "header alg twice",
            sign(
                &format!(r#"{{"alg":"RS256","kid":"{kid}","alg":"none"}}"#),
                &t.claims(""),
            ),
        ),
        (
            "header kid twice",
            sign(
                &format!(r#"{{"alg":"RS256","kid":"{kid}","kid":"other"}}"#),
                &t.claims(""),
            ),
        ),
        (
            "header typ twice",
            sign(
                &format!(r#"{{"alg":"RS256","kid":"{kid}","typ":"JWT","typ":"at+jwt"}}"#),
                &t.claims(""),
            ),
        ),
        (
            "header alg twice, escaped",
            sign(
                &format!(r#"{{"alg":"RS256","kid":"{kid}","\u0061lg":"RS256"}}"#),
                &t.claims(""),
            ),
        ),
        ("sub twice", sign(&header, &t.claims(r#","sub":"admin""#))),
        (
            "exp twice",
            sign(&header, &t.claims(r#","exp":99999999999"#)),
        ),
        (
            "iss twice",
            sign(&header, &t.claims(r#","iss":"https://evil.example""#)),
        ),
        ("aud twice", sign(&header, &t.claims(r#","aud":"other""#))),
        (
            "sub twice, escaped",
            sign(&header, &t.claims(r#","s\u0075b":"admin""#)),
        ),
        (
            "nested object member twice",
            sign(
                &header,
                &t.claims(r#","ctx":{"role":"user","role":"admin"}"#),
            ),
        ),
        (
            "member twice deep in an array",
            sign(&header, &t.claims(r#","x":[{"a":1,"a":2}]"#)),
        ),
        (
            "unknown member twice",
            sign(&header, &t.claims(r#","tenant":"a","tenant":"b""#)),
        ),
    ];
    for (case, token) in &cases {
        t.rejects(case, token, K::Malformed).await;
    }
    t.report();
}

#[tokio::test]
async fn claims_of_the_wrong_type() {
    let t = Target::start("claims of the wrong type").await;
    let exp = now() + 600;
    let cases: Vec<(&str, &str, Value, K)> = vec![
        (
            "exp as a string",
            "exp",
            json!(exp.to_string()),
            K::InvalidClaims,
        ),
        ("exp as null", "exp", Value::Null, K::InvalidClaims),
        ("exp as a bool", "exp", json!(true), K::InvalidClaims),
        ("exp as an array", "exp", json!([exp]), K::InvalidClaims),
        (
            "exp as an object",
            "exp",
            json!({"$date": exp}),
            K::InvalidClaims,
        ),
        ("nbf as a string", "nbf", json!("0"), K::InvalidClaims),
        ("nbf as null", "nbf", Value::Null, K::InvalidClaims),
        ("iss as a number", "iss", json!(1), K::InvalidClaims),
        (
            "iss as an array",
            "iss",
            json!([t.issuer().issuer()]),
            K::InvalidClaims,
        ),
        ("iss as null", "iss", Value::Null, K::InvalidClaims),
        ("aud as a number", "aud", json!(7), K::InvalidClaims),
        (
            "aud as an object",
            "aud",
            json!({"aud": AUDIENCE}),
            K::InvalidClaims,
        ),
        ("aud as null", "aud", Value::Null, K::InvalidClaims),
        (
            "aud array holding a number",
            "aud",
            json!([AUDIENCE, 7]),
            K::InvalidClaims,
        ),
        (
            "aud array holding an array",
            "aud",
            json!([[AUDIENCE]]),
            K::InvalidClaims,
        ),
        ("sub as a number", "sub", json!(42), K::InvalidClaims),
        (
            "sub as an object",
            "sub",
            json!({"id": "admin"}),
            K::InvalidClaims,
        ),
        (
            "scope as an array",
            "scope",
            json!(["admin"]),
            K::InvalidClaims,
        ),
        (
            "scp as a string of strings",
            "scp",
            json!(5),
            K::InvalidClaims,
        ),
        ("iat as a string", "iat", json!("now"), K::InvalidClaims),
    ];
    for (case, name, value, kind) in cases {
        let token = t.issuer().token().claim(name, value).sign();
        t.rejects(case, &token, kind).await;
    }
    t.report();
}

#[tokio::test]
async fn numeric_dates() {
    let t = Target::start("numeric dates").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid());
    let issuer = t.issuer().issuer();
    // Raw JSON numbers: the text is what an attacker controls.
    let token = |dates: &str| {
        let claims = format!(r#"{{"iss":"{issuer}","aud":"{AUDIENCE}","sub":"u",{dates}}}"#);
        rsa.sign_compact(Algorithm::RS256, &header, &claims)
    };
    let now = now();
    let cases: Vec<(String, K)> = vec![
        (format!(r#""exp":{}.5"#, now - 120), K::Expired),
        (format!(r#""exp":{}.999"#, now - 61), K::Expired),
        (r#""exp":0"#.into(), K::Expired),
        (r#""exp":-0.0"#.into(), K::Expired),
        (r#""exp":-1"#.into(), K::Expired),
        (r#""exp":-9223372036854775808"#.into(), K::Expired),
        (r#""exp":-1e308"#.into(), K::Expired),
        (r#""exp":1e-300"#.into(), K::Expired),
        (r#""exp":1e400"#.into(), K::Malformed),
        (r#""exp":-1e400"#.into(), K::Malformed),
        (
            format!(r#""exp":{},"nbf":{}.5"#, now + 600, now + 120),
            K::NotYetValid,
        ),
        // An `nbf` later than `exp` is valid at no instant: invalid claims.
        (
            format!(r#""exp":{},"nbf":1e300"#, now + 600),
            K::InvalidClaims,
        ),
        (
            format!(r#""exp":{},"nbf":18446744073709551616"#, now + 600),
            K::InvalidClaims,
        ),
        (
            format!(r#""exp":{},"nbf":{}"#, now + 30, now + 40),
            K::InvalidClaims,
        ),
        (format!(r#""exp":{},"nbf":1e400"#, now + 600), K::Malformed),
        (format!(r#""exp":"{}""#, now + 600), K::InvalidClaims),
    ];
    for (dates, kind) in &cases {
        t.rejects(dates, &token(dates), *kind).await;
    }
    // Dates that are odd but valid (RFC 7519 NumericDate is any JSON number).
    for dates in [
        format!(r#""exp":{}.25"#, now + 600),
        format!(r#""exp":{}e0"#, now + 600),
        format!(r#""exp":{}"#, (now + 600) as f64 * 10.0 / 10.0),
        r#""exp":9223372036854775807"#.into(),
        r#""exp":18446744073709551616"#.into(),
        r#""exp":1e300"#.into(),
        format!(r#""exp":{},"nbf":-1e300"#, now + 600),
        format!(r#""exp":{},"nbf":{}.5"#, now + 600, now + 30),
    ] {
        t.accepts(&dates, &token(&dates)).await;
    }
    t.report();
}

#[tokio::test]
async fn issuer_and_audience_exactness() {
    let t = Target::start("iss and aud exactness").await;
    let iss = t.issuer().issuer().to_owned();
    let near_issuers = [
        format!("{iss}/"),
        iss.trim_end_matches('/').to_owned() + "/.",
        iss.to_uppercase(),
        iss.replace("http://", "HTTP://"),
        format!(" {iss}"),
        format!("{iss} "),
        format!("{iss}\u{0}"),
        format!("{iss}.evil.example"),
        format!("{iss}#"),
        format!("{iss}?"),
        iss[..iss.len() - 1].to_owned(),
        iss.replace("127.0.0.1", "localhost"),
        iss.replace("127.0.0.1", "127.000.000.001"),
        String::new(),
    ];
    for near in &near_issuers {
        let token = t.issuer().token().claim("iss", near.as_str()).sign();
        t.rejects(&format!("iss {near:?}"), &token, K::InvalidIssuer)
            .await;
    }
    t.rejects(
        "iss absent",
        &t.issuer().token().without_claim("iss").sign(),
        K::InvalidIssuer,
    )
    .await;
    let near_audiences = [
        json!("TEST-API"),
        json!("test-api "),
        json!(" test-api"),
        json!("test-ap"),
        json!("test-api2"),
        json!("test-api\u{0}"),
        json!("test\u{2010}api"),
        json!(""),
        json!([]),
        json!(["test-ap", "test-api2"]),
        json!(["TEST-API"]),
        json!(["test-api,other"]),
        json!("test-api other"),
    ];
    for near in near_audiences {
        let token = t.issuer().token().audience(near.clone()).sign();
        t.rejects(&format!("aud {near}"), &token, K::InvalidAudience)
            .await;
    }
    t.rejects(
        "aud absent",
        &t.issuer().token().without_claim("aud").sign(),
        K::InvalidAudience,
    )
    .await;
    t.accepts(
        "aud array holding ours",
        &t.issuer()
            .token()
            .audience(json!(["other", AUDIENCE]))
            .sign(),
    )
    .await;
    t.report();
}

#[tokio::test]
async fn payloads_and_headers_that_are_not_objects() {
    let t = Target::start("payloads that are not objects").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let header = format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid());
    for payload in [
        "[]",
        "[1]",
        "\"claims\"",
        "1",
        "null",
        "true",
        "",
        " ",
        "{",
        "{}}",
        "{} {}",
        "\u{feff}{}",
        "{\"a\":1,}",
        "{'a':1}",
        "{\"a\":NaN}",
        "{\"exp\":Infinity}",
    ] {
        let token = rsa.sign_compact(Algorithm::RS256, &header, payload);
        t.rejects(&format!("payload {payload:?}"), &token, K::Malformed)
            .await;
    }
    let claims = t.claims("");
    for header in [
        "[]",
        "\"RS256\"",
        "null",
        "",
        "{\"alg\":\"RS256\"",
        "\u{feff}{\"alg\":\"RS256\"}",
    ] {
        let token = compact(header, &claims, b"signature");
        t.rejects(&format!("header {header:?}"), &token, K::Malformed)
            .await;
    }
    // Not UTF-8.
    let token = format!(
        "{}.{}.{}",
        b64(header.as_bytes()),
        b64(b"{\"sub\":\"\xff\"}"),
        b64(b"signature")
    );
    t.rejects("payload not UTF-8", &token, K::Malformed).await;
    // Nested 10,000 deep, within the size cap: a parse error, not a stack overflow.
    let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(5_000), "]".repeat(5_000));
    let token = rsa.sign_compact(Algorithm::RS256, &header, &deep);
    t.rejects("payload nested 5,000 deep", &token, K::Malformed)
        .await;
    t.report();
}

#[tokio::test]
async fn segment_counts() {
    let t = Target::start("segment counts").await;
    let good = t.issuer().token().sign();
    let [h, p, s] = segments(&good);
    let cases: Vec<(&str, String, K)> = vec![
        ("one segment", h.to_owned(), K::Malformed),
        ("two segments", format!("{h}.{p}"), K::Malformed),
        (
            "two segments, trailing dot",
            format!("{h}.{p}."),
            K::Malformed,
        ),
        ("four segments", format!("{h}.{p}.{s}.{s}"), K::Malformed),
        (
            "four segments, trailing dot",
            format!("{good}."),
            K::Malformed,
        ),
        ("six segments", format!("{good}.{p}.{s}.{s}"), K::Malformed),
        ("empty header", format!(".{p}.{s}"), K::Malformed),
        ("empty payload", format!("{h}..{s}"), K::Malformed),
        ("empty signature", format!("{h}.{p}."), K::Malformed),
        ("dots only", "..".into(), K::Malformed),
        ("four dots", "....".into(), K::UnsupportedTokenType),
        ("leading dot", format!(".{good}"), K::Malformed),
        (
            "detached payload (RFC 7515 appendix F)",
            format!("{h}..{s}"),
            K::Malformed,
        ),
    ];
    for (case, token, kind) in &cases {
        t.rejects(case, token, *kind).await;
    }
    t.report();
}

/// Sets the unused low bits of the last character of a base64url segment.
fn with_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused = match segment.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        _ => panic!("segment has no unused bits"),
    };
    let last = *segment.as_bytes().last().unwrap();
    let value = ALPHABET.iter().position(|c| *c == last).unwrap();
    let changed = ALPHABET[value | unused] as char;
    format!("{}{changed}", &segment[..segment.len() - 1])
}

/// Pads a segment with `A`s to a length no base64 encodes to (1 mod 4).
fn impossible_length(segment: &str) -> String {
    let mut out = segment.to_owned();
    while out.len() % 4 != 1 {
        out.push('A');
    }
    out
}

#[tokio::test]
async fn non_canonical_base64url() {
    let t = Target::start("non-canonical base64url").await;
    // Find tokens whose segments carry unused bits and URL-safe characters to mangle.
    let mut token = t.issuer().token().alg(Algorithm::ES256).sign();
    while !segments(&token)[2].contains(['-', '_']) || segments(&token)[2].len() % 4 < 2 {
        token = t.issuer().token().alg(Algorithm::ES256).sign();
    }
    let [h, p, s] = segments(&token);
    let mut cases: Vec<(String, String)> = vec![
        ("signature padded".into(), format!("{token}==")),
        ("signature padded once".into(), format!("{token}=")),
        (
            "signature in the standard alphabet".into(),
            format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
        ),
        (
            "signature with set unused bits".into(),
            format!("{h}.{p}.{}", with_trailing_bits(s)),
        ),
        (
            "signature of an impossible length".into(),
            format!("{h}.{p}.{}", impossible_length(s)),
        ),
        ("signature with a ~".into(), format!("{h}.{p}.~{s}")),
    ];
    if h.len() % 4 >= 2 {
        cases.push((
            "header with set unused bits".into(),
            format!("{}.{p}.{s}", with_trailing_bits(h)),
        ));
    }
    if p.len() % 4 >= 2 {
        cases.push((
            "payload with set unused bits".into(),
            format!("{h}.{}.{s}", with_trailing_bits(p)),
        ));
    }
    // Headers whose encoding has room for both alphabets: "?" encodes to "_" or "/".
    let rsa = t.issuer().key(Algorithm::RS256);
    let header = format!(r#"{{"alg":"RS256","kid":"{}","x":"???"}}"#, rsa.kid());
    let signed = rsa.sign_compact(Algorithm::RS256, &header, &t.claims(""));
    let [sh, sp, ss] = segments(&signed);
    assert!(sh.contains('_'), "the header encodes with a '_'");
    cases.push((
        "header in the standard alphabet".into(),
        format!("{}.{sp}.{ss}", sh.replace('_', "/")),
    ));
    let payload = t.claims(r#","x":"???>>>""#);
    let signed = rsa.sign_compact(
        Algorithm::RS256,
        &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid()),
        &payload,
    );
    let [sh, sp, ss] = segments(&signed);
    assert!(
        sp.contains(['_', '-']),
        "the payload encodes with '-' or '_'"
    );
    cases.push((
        "payload in the standard alphabet".into(),
        format!("{sh}.{}.{ss}", sp.replace('_', "/").replace('-', "+")),
    ));
    cases.push((
        "payload of an impossible length".into(),
        format!("{sh}.{}.{ss}", impossible_length(sp)),
    ));
    for (case, token) in &cases {
        t.rejects(case, token, K::Malformed).await;
    }
    // Padding inside the token is not even a b64token (RFC 6750 §2.1): 400.
    let padded_header = format!("{h}==.{p}.{s}");
    t.answers(
        "padding inside the token",
        &[format!("Bearer {padded_header}").as_bytes()],
        StatusCode::BAD_REQUEST,
        MALFORMED_REQUEST,
    )
    .await;
    t.report();
}

#[tokio::test]
async fn oversized_tokens_and_headers() {
    let t = Target::start("oversized tokens and headers").await;
    let rsa = t.issuer().key(Algorithm::RS256);
    let big_claim = t
        .issuer()
        .token()
        .claim("pad", "x".repeat(17 * 1024))
        .sign();
    t.rejects("payload over 16 KiB", &big_claim, K::TokenTooLarge)
        .await;
    let big_header = t
        .issuer()
        .token()
        .header("pad", "x".repeat(17 * 1024))
        .sign();
    t.rejects("header over 16 KiB", &big_header, K::TokenTooLarge)
        .await;
    let huge = "a".repeat(1 << 20);
    t.rejects(
        "a 1 MiB token",
        &format!("{huge}.{huge}.{huge}"),
        K::TokenTooLarge,
    )
    .await;
    // Many members, each small, within the cap: rejected for the duplicate, parsed in
    // linear time.
    let many: String = (0..1000).map(|i| format!(r#","m{i}":0"#)).collect();
    let token = rsa.sign_compact(
        Algorithm::RS256,
        &format!(r#"{{"alg":"RS256","kid":"{}"}}"#, rsa.kid()),
        &t.claims(&format!("{many},\"m0\":1")),
    );
    assert!(token.len() < 16 * 1024);
    t.rejects("1,000 members and a duplicate", &token, K::Malformed)
        .await;
    // Right at the cap is still verified.
    let fits = t
        .issuer()
        .token()
        .claim("pad", "x".repeat(11 * 1024))
        .sign();
    assert!(fits.len() <= 16 * 1024);
    t.accepts("a 15 KiB token", &fits).await;
    t.report();
}

#[tokio::test]
async fn jwe_shaped_tokens() {
    let t = Target::start("JWE-shaped tokens").await;
    let claims = t.claims("");
    let jwe_header = b64(br#"{"alg":"RSA-OAEP-256","enc":"A256GCM"}"#);
    let cases = [
        (
            "compact JWE",
            format!("{jwe_header}.a2V5.aXY.Y2lwaGVy.dGFn"),
        ),
        (
            "compact JWE, dir",
            format!(
                "{}.a2V5.aXY.Y2lwaGVy.dGFn",
                b64(br#"{"alg":"dir","enc":"A128GCM"}"#)
            ),
        ),
        ("five empty segments", "....".to_owned()),
        (
            "JWS header with enc",
            compact(r#"{"alg":"RS256","enc":"A256GCM"}"#, &claims, b"signature"),
        ),
        (
            "JWS header with zip",
            compact(r#"{"alg":"RS256","zip":"DEF"}"#, &claims, b"signature"),
        ),
    ];
    for (case, token) in &cases {
        t.rejects(case, token, K::UnsupportedTokenType).await;
    }
    t.report();
}

#[tokio::test]
async fn rfc_6750_transport() {
    let t = Target::start("RFC 6750 transport").await;
    let token = t.issuer().token().sign();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        t.accepts_header(scheme, &format!("{scheme} {token}")).await;
    }
    for value in [
        format!("Bearer  {token}"),
        format!(" Bearer {token} "),
        format!("\tBearer {token}\t"),
    ] {
        t.accepts_header(&format!("{:?}", &value[..8]), &value)
            .await;
    }

    // No bearer credentials: 401 with a bare challenge.
    let no_credentials: Vec<Vec<u8>> = vec![
        b"Basic dXNlcjpwYXNz".to_vec(),
        format!("DPoP {token}").into_bytes(),
        format!("Bearer-{token}").into_bytes(),
        format!("Bearer{token}").into_bytes(),
        format!("Bearerr {token}").into_bytes(),
        format!("Token {token}").into_bytes(),
        token.clone().into_bytes(),
        b"".to_vec(),
    ];
    for value in &no_credentials {
        let case = format!(
            "{:?}",
            String::from_utf8_lossy(&value[..value.len().min(20)])
        );
        t.answers(&case, &[value], StatusCode::UNAUTHORIZED, "Bearer")
            .await;
    }

    // Malformed: 400 invalid_request.
    let other = t.issuer().token().subject("someone-else").sign();
    let malformed: Vec<Vec<Vec<u8>>> = vec![
        vec![b"Bearer".to_vec()],
        vec![b"Bearer ".to_vec()],
        vec![b"Bearer     ".to_vec()],
        vec![format!("Bearer\t{token}").into_bytes()],
        vec![format!("Bearer {token} {token}").into_bytes()],
        vec![format!("Bearer {token}, Basic dXNlcjpwYXNz").into_bytes()],
        vec![format!("Bearer {token},").into_bytes()],
        vec![format!("Bearer \"{token}\"").into_bytes()],
        vec![[format!("Bearer {token}").as_bytes(), b"\x80"].concat()],
        vec![format!("Bearer {}", token.replacen('.', "%2E", 1)).into_bytes()],
        vec![format!("Bearer {}", token.replacen('.', " ", 1)).into_bytes()],
        vec![[b"Bearer \xff".as_slice(), token.as_bytes()].concat()],
        vec![
            format!("Bearer {token}").into_bytes(),
            format!("Bearer {token}").into_bytes(),
        ],
        vec![
            format!("Bearer {token}").into_bytes(),
            format!("Bearer {other}").into_bytes(),
        ],
        vec![
            format!("Bearer {token}").into_bytes(),
            b"Basic dXNlcjpwYXNz".to_vec(),
        ],
        vec![
            b"Basic dXNlcjpwYXNz".to_vec(),
            format!("Bearer {token}").into_bytes(),
        ],
    ];
    for values in &malformed {
        let raw: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
        let case = format!(
            "{:?}",
            values
                .iter()
                .map(|v| String::from_utf8_lossy(&v[..v.len().min(12)]).into_owned())
                .collect::<Vec<_>>()
        );
        t.answers(&case, &raw, StatusCode::BAD_REQUEST, MALFORMED_REQUEST)
            .await;
    }
    t.report();
}

#[tokio::test]
async fn sender_constrained_tokens_as_bearer_tokens() {
    let t = Target::start("sender-constrained tokens as bearer tokens").await;
    t.accepts("no cnf", &t.issuer().token().sign()).await;
    let thumbprint = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    let cnfs = [
        json!({ "jkt": thumbprint }),
        json!({ "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
        json!({ "jkt": thumbprint, "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2" }),
        json!({ "jwk": t.issuer().key(Algorithm::ES256).jwk() }),
        json!({ "kid": "dpop-key" }),
        json!({}),
        json!(null),
        json!(""),
        json!([]),
        json!(thumbprint),
    ];
    for cnf in cnfs {
        let token = t.issuer().token().claim("cnf", cnf.clone()).sign();
        t.rejects(&format!("cnf {cnf}"), &token, K::BoundToken)
            .await;
    }
    // Whatever the algorithm, and with or without kid.
    for alg in [Algorithm::RS256, Algorithm::ES384, Algorithm::EdDSA] {
        let token = t
            .issuer()
            .token()
            .alg(alg)
            .claim("cnf", json!({ "jkt": thumbprint }))
            .sign();
        t.rejects(&format!("{alg} with cnf.jkt"), &token, K::BoundToken)
            .await;
        let token = t
            .issuer()
            .token()
            .alg(alg)
            .no_kid()
            .claim("cnf", json!({ "jkt": thumbprint }))
            .sign();
        t.rejects(
            &format!("{alg} without kid, with cnf.jkt"),
            &token,
            K::BoundToken,
        )
        .await;
    }
    t.report();
}
