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
//! Rows: `/public` (no auth, the same request headers), then `/whoami` (the `sub` as
//! text) for RS256, ES256 and EdDSA, with the default verified-token cache and a repeated
//! token ("cached") and with the cache off ("cold", every request verifies the
//! signature), and `/me` (claims as JSON) for RS256. Rounds alternate the rows so that
//! the machine's drift hits every row alike; each figure is the median of its rounds.
//! The server is single-threaded on its core, so µs per request is 1 / throughput.

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

/// Starts `protected_api` pinned to core 0.
fn start_server(jwks: &str, cache_entries: Option<&str>) -> Server {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new("taskset");
    cmd.arg("-c")
        .arg("0")
        .arg(server_binary())
        .env_clear()
        .env("JWKS_URL", jwks)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(entries) = cache_entries {
        cmd.env("JWT_CACHE_ENTRIES", entries);
    }
    let mut child = cmd.spawn().expect("start protected_api");
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
    // The same request headers on every row: /public gets an Authorization header too.
    let token = token.unwrap_or("unused");
    cmd.arg("-H").arg(format!("Authorization: Bearer {token}"));
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

#[tokio::main(flavor = "current_thread")]
async fn main() {
    require("taskset", "util-linux");
    require("wrk", "apt-get install wrk");
    let seconds = arg("--seconds", 5);
    let rounds = arg("--rounds", 3).max(1);
    let connections = arg("--connections", 16);

    let issuer = TestIssuer::start().await;
    let jwks = issuer.jwks_url();
    // Serve the issuer on this (unpinned) process's runtime while the blocking runs go.
    let cached = start_server(&jwks, None);
    let cold = start_server(&jwks, Some("0"));
    let token = |alg| issuer.token().alg(alg).expires_in(3600).sign();

    let mut rows: Vec<(String, String, Option<String>)> =
        vec![("/public".into(), format!("{}/public", cached.base), None)];
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let t = token(alg);
        rows.push((
            format!("/whoami {alg} cached"),
            format!("{}/whoami", cached.base),
            Some(t.clone()),
        ));
        rows.push((
            format!("/whoami {alg} cold"),
            format!("{}/whoami", cold.base),
            Some(t),
        ));
    }
    let t = token(Algorithm::RS256);
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
    drop((cached, cold));
}
