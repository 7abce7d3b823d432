//! A bounded load test over real loopback HTTP: the example server's `/public` and `/me`
//! routes, with and without the verified-token cache.
//!
//! ```text
//! cargo run --release --example load                       # 5 s per scenario, 16 connections
//! cargo run --release --example load -- --seconds 10 --connections 32
//! ```
//!
//! The server (the same routes as `protected_api`), its identity provider and the load
//! generator share the machine, so absolute numbers mostly tell how the machine is
//! shared; compare the rows of one run.

mod common;

use std::time::{Duration, Instant};

use jwks_auth::Algorithm;
use jwks_auth::testing::TestIssuer;

struct Outcome {
    requests: usize,
    failures: usize,
    latencies_us: Vec<u32>,
    elapsed: Duration,
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn start_api(auth: jwks_auth::JwksAuth) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, common::routes(auth)).await;
    });
    format!("http://{addr}")
}

async fn drive(
    url: String,
    token: Option<String>,
    connections: usize,
    duration: Duration,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (url, token) = (url.clone(), token.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client");
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let mut request = client.get(&url);
                if let Some(t) = &token {
                    request = request.header("authorization", format!("Bearer {t}"));
                }
                let sent = Instant::now();
                match request.send().await {
                    Ok(r) if r.status() == 200 => {
                        let _ = r.bytes().await;
                        latencies.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                    _ => failures += 1,
                }
            }
            (latencies, failures)
        }));
    }
    let mut outcome = Outcome {
        requests: 0,
        failures: 0,
        latencies_us: Vec::new(),
        elapsed: Duration::ZERO,
    };
    for w in workers {
        let (latencies, failures) = w.await.expect("worker");
        outcome.failures += failures;
        outcome.latencies_us.extend(latencies);
    }
    outcome.elapsed = started.elapsed();
    outcome.requests = outcome.latencies_us.len();
    outcome.latencies_us.sort_unstable();
    outcome
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 5).clamp(1, 60);
    let connections = arg("--connections", 16).clamp(1, 256) as usize;
    let duration = Duration::from_secs(seconds);

    let issuer = TestIssuer::start().await;
    let plain = start_api(issuer.layer()).await;
    let cached = start_api(issuer.layer().cache(10_000)).await;
    let token = issuer.token().alg(Algorithm::RS256).expires_in(3600).sign();
    println!(
        "{connections} connections, {seconds} s per scenario, RS256 token, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "scenario", "requests", "req/s", "p50 µs", "p99 µs", "failures"
    );
    let scenarios = [
        ("/public (no auth)", format!("{plain}/public"), None),
        ("/me, layer", format!("{plain}/me"), Some(token.clone())),
        (
            "/me, layer + cache",
            format!("{cached}/me"),
            Some(token.clone()),
        ),
    ];
    let mut failed = false;
    for (name, url, token) in scenarios {
        let o = drive(url, token, connections, duration).await;
        failed |= o.failures > 0 || o.requests == 0;
        println!(
            "{:<28} {:>10} {:>10.0} {:>10} {:>10} {:>9}",
            name,
            o.requests,
            o.requests as f64 / o.elapsed.as_secs_f64(),
            percentile(&o.latencies_us, 0.50),
            percentile(&o.latencies_us, 0.99),
            o.failures
        );
    }
    if failed {
        eprintln!("some requests failed");
        std::process::exit(1);
    }
}
