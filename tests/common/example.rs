//! An example binary run as a process, through its stable interface: environment
//! variables in, the `listening on ADDR` line out.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The example's binary, built first (a no-op when `cargo test` already did) with the
/// features this test was built with, so that this test never skips its work and
/// feature `metrics` reaches the example when it is on.
pub fn binary(name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let features: Vec<&str> = [
        ("aws_lc_rs", cfg!(feature = "aws_lc_rs")),
        ("rust_crypto", cfg!(feature = "rust_crypto")),
        ("test-util", cfg!(feature = "test-util")),
        ("metrics", cfg!(feature = "metrics")),
        ("redis", cfg!(feature = "redis")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--example", name])
        .args(["--no-default-features", "--features", &features.join(",")])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the example {name} failed");
    let mut dir = std::env::current_exe().expect("test path");
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A running example, killed when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts example `name` with only these variables (and `LISTEN_ADDR=127.0.0.1:0`), its
/// stderr going to `stderr`; returns it and its base URL once it prints its address.
pub fn start(name: &str, envs: &[(&str, &str)], stderr: Stdio) -> (Server, String) {
    let mut child = Command::new(binary(name))
        .env_clear()
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read stdout");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (server, format!("http://{addr}"))
}
