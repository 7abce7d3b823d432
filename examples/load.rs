//! The HTTP load benchmark: the `protected_api` example server on one pinned core, `wrk`
//! on the other, real loopback HTTP.
//!
//! ```text
//! apt-get install wrk                        # the load generator (Debian package)
//! cargo build --release --example protected_api
//! cargo run --release --example load         # 3 rounds × 5 s per row, 16 connections
//! cargo run --release --example load -- --seconds 10 --rounds 5 --connections 32
//! ```
//!
//! Rows: `/public` (no auth, the same request headers as the RS256 rows), then `/whoami`
//! (the `sub` as text) for RS256, ES256 and EdDSA, with the default verified-token cache
//! and a repeated token ("cached") and with the cache off ("cold", every request verifies
//! the signature), and `/me` (claims as JSON) for RS256. The baseline for the cold rows
//! is `/sig` on a second server built the same way (axum, one pinned core): a handler
//! that only finds the key by `kid` and checks the signature with aws-lc, the least any
//! verifier must do; "cold − sig" is then what the crate adds over HTTP.
//!
//! Rounds alternate the rows so that the machine's drift hits every row alike; each
//! figure is the median of its rounds. The servers are single-threaded on their core, so
//! µs per request is 1 / throughput.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jwks_auth::Algorithm;
use jwks_auth::testing::TestIssuer;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn require(tool: &str, hint: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("load: `{tool}` is required ({hint})");
        std::process::exit(2);
    }
}

/// The `protected_api` binary next to this one (same profile), built if missing.
fn server_binary() -> std::path::PathBuf {
    let mut dir = std::env::current_exe().expect("own path");
    dir.pop();
    let path = dir.join(format!("protected_api{}", std::env::consts::EXE_SUFFIX));
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--release", "--example", "protected_api"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "building protected_api failed");
    }
    path
}

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `protected_api` pinned to core 0, checking `iss` and `aud` as every layer must.
fn start_server(jwks: &str, issuer: &str, cache_entries: Option<&str>) -> Server {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg("0")
        .arg(server_binary())
        .env_clear()
        .env("JWKS_URL", jwks)
        .env("JWT_ISSUER", issuer)
        .env("JWT_AUDIENCE", jwks_auth::testing::AUDIENCE)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    if let Some(entries) = cache_entries {
        cmd.env("JWT_CACHE_ENTRIES", entries);
    }
    spawn(cmd)
}

/// Starts this program's baseline server pinned to core 0.
fn start_baseline(jwks_doc: &str) -> Server {
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg("0")
        .arg(std::env::current_exe().expect("own path"))
        .arg("--serve-baseline")
        .env("JWKS_DOC", jwks_doc);
    spawn(cmd)
}

fn spawn(mut cmd: Command) -> Server {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("listening on ADDR")
        .to_owned();
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// One `wrk` run pinned to core 1; returns requests per second.
fn wrk(url: &str, token: Option<&str>, seconds: u64, connections: u64) -> f64 {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", "1", "wrk", "-t1"])
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"));
    if let Some(token) = token {
        cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    let out = cmd.arg(url).output().expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let non_2xx = text.contains("Non-2xx");
    assert!(!non_2xx, "non-2xx answers from {url}:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// `load --serve-baseline`: `/sig` checks the bearer token's signature against the key
/// named by its `kid` in `JWKS_DOC`, and nothing else; `/public` answers text.
async fn serve_baseline() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

    let doc: serde_json::Value =
        serde_json::from_str(&std::env::var("JWKS_DOC").expect("JWKS_DOC")).expect("JSON");
    let mut keys: HashMap<String, ParsedPublicKey> = HashMap::new();
    let b = |v: &serde_json::Value| B64.decode(v.as_str().expect("member")).expect("b64");
    for jwk in doc["keys"].as_array().expect("keys") {
        let kid = jwk["kid"].as_str().expect("kid").to_owned();
        let (params, bytes): (&'static dyn sig::VerificationAlgorithm, Vec<u8>) =
            match jwk["kty"].as_str() {
                Some("RSA") => {
                    use aws_lc_rs::encoding::AsDer;
                    let (n, e) = (b(&jwk["n"]), b(&jwk["e"]));
                    let der = sig::RsaPublicKeyComponents { n: &n, e: &e }
                        .as_der()
                        .expect("der");
                    (&sig::RSA_PKCS1_2048_8192_SHA256, der.as_ref().to_vec())
                }
                Some("EC") if jwk["crv"] == "P-256" => {
                    let mut point = vec![4];
                    point.extend(b(&jwk["x"]));
                    point.extend(b(&jwk["y"]));
                    (&sig::ECDSA_P256_SHA256_FIXED, point)
                }
                Some("OKP") => (&sig::ED25519, b(&jwk["x"])),
                _ => continue,
            };
        keys.insert(kid, ParsedPublicKey::new(params, &bytes).expect("key"));
    }
    let keys = Arc::new(keys);
    let check = move |headers: HeaderMap| {
        let keys = keys.clone();
        async move {
            let verified = (|| {
                let token = headers
                    .get("authorization")?
                    .to_str()
                    .ok()?
                    .strip_prefix("Bearer ")?;
                let (input, signature) = token.rsplit_once('.')?;
                let header = B64.decode(input.split('.').next()?).ok()?;
                let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
                let key = keys.get(header["kid"].as_str()?)?;
                let signature = B64.decode(signature).ok()?;
                key.verify_sig(input.as_bytes(), &signature).ok()
            })();
            match verified {
                Some(()) => (StatusCode::OK, "ok"),
                None => (StatusCode::UNAUTHORIZED, "no"),
            }
        }
    };
    let app = axum::Router::new()
        .route("/sig", get(check))
        .route("/public", get(|| async { "public: no token needed\n" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    println!("listening on {}", listener.local_addr().expect("addr"));
    axum::serve(listener, app).await.expect("serve");
}

fn main() {
    if std::env::args().any(|a| a == "--serve-baseline") {
        // Like protected_api: a multi-threaded runtime, on the one core it is pinned to.
        tokio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(serve_baseline());
        return;
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(drive());
}

async fn drive() {
    require("taskset", "util-linux");
    require("wrk", "apt-get install wrk");
    let seconds = arg("--seconds", 5);
    let rounds = arg("--rounds", 3).max(1);
    let connections = arg("--connections", 16);

    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    let cached = start_server(&jwks, issuer.issuer(), None);
    let cold = start_server(&jwks, issuer.issuer(), Some("0"));
    let baseline = start_baseline(&issuer.jwks_document());
    let token = |alg| issuer.token().alg(alg).expires_in(3600).sign();
    let rs256 = token(Algorithm::RS256);

    // The same request headers as the RS256 rows: the route ignores the token.
    let mut rows: Vec<(String, String, Option<String>)> = vec![(
        "/public".into(),
        format!("{}/public", cached.base),
        Some(rs256.clone()),
    )];
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let t = if alg == Algorithm::RS256 {
            rs256.clone()
        } else {
            token(alg)
        };
        rows.push((
            format!("/whoami {alg} cached"),
            format!("{}/whoami", cached.base),
            Some(t.clone()),
        ));
        rows.push((
            format!("/whoami {alg} cold"),
            format!("{}/whoami", cold.base),
            Some(t.clone()),
        ));
        rows.push((
            format!("baseline /sig {alg}"),
            format!("{}/sig", baseline.base),
            Some(t),
        ));
    }
    let t = rs256.clone();
    rows.push((
        "/me RS256 cached".into(),
        format!("{}/me", cached.base),
        Some(t.clone()),
    ));
    rows.push((
        "/me RS256 cold".into(),
        format!("{}/me", cold.base),
        Some(t),
    ));

    // Warm up both servers (first fetch, allocator, connections).
    for (_, url, token) in &rows {
        let (url, token) = (url.clone(), token.clone());
        tokio::task::spawn_blocking(move || wrk(&url, token.as_deref(), 1, connections))
            .await
            .expect("warm-up");
    }
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); rows.len()];
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for (i, (_, url, token)) in rows.iter().enumerate() {
            let (url, token) = (url.clone(), token.clone());
            let rps = tokio::task::spawn_blocking(move || {
                wrk(&url, token.as_deref(), seconds, connections)
            })
            .await
            .expect("wrk");
            results[i].push(rps);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let medians: Vec<f64> = results.iter_mut().map(|r| median(r)).collect();
    let public_us = 1e6 / medians[0];
    println!(
        "\nserver: protected_api on core 0; wrk -t1 -c{connections} on core 1; {rounds} rounds × {seconds} s, medians\n"
    );
    println!(
        "| route | req/s | µs/request | vs /public | µs over /public |\n|---|---|---|---|---|"
    );
    for (i, (name, _, _)) in rows.iter().enumerate() {
        let us = 1e6 / medians[i];
        println!(
            "| {name} | {:.0} | {us:.2} | {:.2} | {:+.2} |",
            medians[i],
            medians[i] / medians[0],
            us - public_us
        );
    }
    println!("\ncold rows against the bare signature check over HTTP (baseline /sig):\n");
    println!("| alg | cold µs | /sig µs | cold − sig | cold / sig |\n|---|---|---|---|---|");
    for (i, (name, _, _)) in rows.iter().enumerate() {
        if let Some(alg) = name.strip_prefix("baseline /sig ") {
            let (cold, sig) = (1e6 / medians[i - 1], 1e6 / medians[i]);
            println!(
                "| {alg} | {cold:.2} | {sig:.2} | {:+.2} | {:.3} |",
                cold - sig,
                cold / sig
            );
        }
    }
    drop((cached, cold, baseline));
}
