//! Operator diagnostics that must not flood the log: a wiring mistake is logged once per
//! distinct mistake, a claims mismatch at most once a minute per distinct reason.
//!
//! Memory is bounded: at most [`REMEMBERED`] distinct keys are remembered; when that many
//! are, the record starts over (a mistake is then logged once more, never lost).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::shards::lock;

/// How many distinct keys are remembered at most.
const REMEMBERED: usize = 1024;

fn seen() -> &'static Mutex<HashMap<u64, Instant>> {
    static SEEN: OnceLock<Mutex<HashMap<u64, Instant>>> = OnceLock::new();
    SEEN.get_or_init(Mutex::default)
}

/// Whether `key` is due: never seen, or last seen more than `every` ago (`None`: never
/// again). Records it as seen now when it is.
fn due(key: impl Hash, every: Option<Duration>) -> bool {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let key = hasher.finish();
    let now = Instant::now();
    let mut seen = lock(seen());
    let due = match (seen.get(&key), every) {
        (None, _) => true,
        (Some(at), Some(every)) => now.duration_since(*at) >= every,
        (Some(_), None) => false,
    };
    if due {
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(key, now);
    }
    due
}

/// Runs `log` the first time this `key` is seen (a wiring mistake: it repeats on every
/// request, and once is enough to fix it).
pub(crate) fn once(key: impl Hash, log: impl FnOnce()) {
    if due(key, None) {
        log();
    }
}

/// Runs `log` at most once a minute for this `key`.
pub(crate) fn per_minute(key: impl Hash, log: impl FnOnce()) {
    if due(key, Some(Duration::from_secs(60))) {
        log();
    }
}

/// Text from a token or a request made safe for one log field: printable ASCII, at
/// most 64 characters.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_is_once_and_memory_is_bounded() {
        let mut runs = 0;
        for _ in 0..3 {
            once(("test-once", 1), || runs += 1);
        }
        assert_eq!(runs, 1);
        for i in 0..5 * REMEMBERED {
            once(("test-flood", i), || {});
        }
        assert!(lock(seen()).len() <= REMEMBERED);
        assert_eq!(printable("a\r\nb\u{1b}[31mc é"), "ab[31mc ");
    }
}
