//! The live key stores of rule-matched issuers, bounded, and the budget for new ones
//! (see the [module docs](super)).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::{Compiled, find};
use crate::budget::Budget;
use crate::error::RefreshError;
use crate::fetch::{Target, Transport};
use crate::metrics;
use crate::refresh::Task;
use crate::shards::lock;
use crate::status::Status;
use crate::store::{KeyStore, Remote, Source, Timing};

/// The key stores of rule-matched issuers: made on first use, at most `bound` live,
/// least recently used out. Store ids follow the fixed stores' indices and are never
/// reused, so a cached token of an evicted store is a miss, never another tenant's hit.
pub(crate) struct RuleStores {
    rules: Vec<Compiled>,
    first: usize,
    fetching: Fetching,
    budget: Mutex<Budget>,
    live: Mutex<Live>,
}

#[derive(Default)]
struct Live {
    by_key: HashMap<StoreKey, usize>,
    stores: HashMap<usize, Entry>,
    next: usize,
    tick: u64,
    evictions: u64,
}

struct Entry {
    /// The tenant's issuer (a shared rule's store: its key set URL), for status.
    issuer: String,
    key: StoreKey,
    shared: bool,
    rule: usize,
    store: Arc<KeyStore>,
    task: Arc<Task>,
    used: u64,
}

/// How a live store is found: by its tenant's issuer, or, for a shared rule, by the
/// rule (never by a string a token's `iss` could equal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum StoreKey {
    Issuer(String),
    Shared(usize),
}

/// What a token's issuer comes to among the rules.
pub(crate) enum Found {
    /// The store of this tenant (its id, the store; for a shared rule, the tenant its
    /// keys must name).
    Store(usize, Arc<KeyStore>, Option<Arc<str>>),
    /// No rule matches it, or the rule's predicate refuses it.
    NoRule,
    /// A new tenant, and the budget for new tenants is spent: retry after this.
    Budget(Duration),
}

/// What [`RuleStores::report`] tells: live stores, evictions so far, and the most
/// recently used stores' issuers and statuses.
pub(crate) struct Report {
    pub(crate) live: usize,
    pub(crate) evictions: u64,
    pub(crate) recent: Vec<(String, Status)>,
}

impl fmt::Debug for RuleStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuleStores")
            .field("rules", &self.rules)
            .field("live", &lock(&self.live).stores.len())
            .finish_non_exhaustive()
    }
}

/// How rule-matched stores fetch, and their bounds (the layer's `Refresh`).
#[derive(Clone)]
pub(crate) struct Fetching {
    pub(crate) timing: Timing,
    pub(crate) allow_http: bool,
    pub(crate) client: Option<reqwest::Client>,
    /// The most live stores.
    pub(crate) bound: usize,
    /// The budget for new tenants: a burst, then so many a second.
    pub(crate) burst: u32,
    pub(crate) per_second: f64,
}

impl RuleStores {
    /// The stores of `rules`, their ids starting at `first`.
    pub(crate) fn new(rules: Vec<Compiled>, first: usize, fetching: Fetching) -> Self {
        Self {
            rules,
            first,
            budget: Mutex::new(Budget::new(fetching.burst, fetching.per_second)),
            fetching,
            live: Mutex::default(),
        }
    }

    /// The store for `iss`: its rule and predicate first (no lock held, no I/O), then
    /// the live set, then, for a new tenant within the budget, a new store.
    pub(crate) fn find(&self, iss: &str) -> Found {
        let Some(matched) = find(&self.rules, iss) else {
            return Found::NoRule;
        };
        // A shared rule's one store is found by the rule, every other by issuer.
        let key = match matched.tenant {
            Some(_) => StoreKey::Shared(matched.rule),
            None => StoreKey::Issuer(iss.to_owned()),
        };
        let tenant = matched.tenant.clone();
        if let Some((id, store)) = self.touch(&key) {
            return Found::Store(id, store, tenant);
        }
        if let Err(wait) = lock(&self.budget).take(Instant::now()) {
            return Found::Budget(wait);
        }
        let allow_http = self.fetching.allow_http;
        let target = match &matched.jwks {
            Some(url) => Target::jwks(url, allow_http),
            None => Target::discovery(iss, allow_http),
        };
        let shared = matched.tenant.is_some();
        let remote = target.map_err(RefreshError::from).and_then(|target| {
            let transport = Transport::new(self.fetching.client.clone())?;
            Ok(Remote { target, transport })
        });
        let name = &self.rules[matched.rule].name;
        let store = Arc::new(KeyStore::new(
            name,
            Source::Remote(remote),
            self.fetching.timing,
            None,
        ));
        let task = Arc::new(Task::new());
        task.ensure_running(&store);
        let mut live = lock(&self.live);
        if let Some(&id) = live.by_key.get(&key) {
            // Made by a concurrent request meanwhile: use that one.
            return Found::Store(id, live.stores[&id].store.clone(), tenant);
        }
        let id = self.first + live.next;
        live.next += 1;
        live.tick += 1;
        let used = live.tick;
        live.by_key.insert(key.clone(), id);
        let entry = Entry {
            issuer: matched
                .jwks
                .clone()
                .filter(|_| shared)
                .unwrap_or_else(|| iss.to_owned()),
            key,
            shared,
            rule: matched.rule,
            store: store.clone(),
            task,
            used,
        };
        live.stores.insert(id, entry);
        if live.stores.len() > self.fetching.bound.max(1) {
            let oldest = live
                .stores
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| *id);
            if let Some(evicted) = oldest.and_then(|id| live.stores.remove(&id)) {
                live.by_key.remove(&evicted.key);
                live.evictions += 1;
                metrics::tenant_eviction(&self.rules[evicted.rule].name);
            }
        }
        let count = live
            .stores
            .values()
            .filter(|e| e.rule == matched.rule)
            .count();
        metrics::tenant_stores(name, count);
        Found::Store(id, store, tenant)
    }

    /// Whether `iss` is a tenant one of the rules allows (no store made).
    pub(crate) fn matches(&self, iss: &str) -> bool {
        find(&self.rules, iss).is_some()
    }

    /// A live store for `key`, marked as used now (its task started if it is not).
    fn touch(&self, key: &StoreKey) -> Option<(usize, Arc<KeyStore>)> {
        let mut live = lock(&self.live);
        let id = *live.by_key.get(key)?;
        live.tick += 1;
        let tick = live.tick;
        let entry = live.stores.get_mut(&id)?;
        entry.used = tick;
        entry.task.ensure_running(&entry.store);
        Some((id, entry.store.clone()))
    }

    /// The live store with this id whose tenant its rule still allows (for a cache hit:
    /// an evicted store, or a tenant the predicate now refuses, is a miss).
    pub(crate) fn get(&self, id: usize) -> Option<Arc<KeyStore>> {
        let (issuer, shared, rule, store) = {
            let live = lock(&self.live);
            let entry = live.stores.get(&id)?;
            (
                entry.issuer.clone(),
                entry.shared,
                entry.rule,
                entry.store.clone(),
            )
        };
        // A shared store serves many tenants: the predicate ran when each token of it
        // was verified.
        if !shared {
            self.rules[rule].matches(&issuer)?;
        }
        Some(store)
    }

    /// The live store with this id and its task (to wait for its keys).
    pub(crate) fn with_task(&self, id: usize) -> Option<(Arc<KeyStore>, Arc<Task>)> {
        let live = lock(&self.live);
        let entry = live.stores.get(&id)?;
        Some((entry.store.clone(), entry.task.clone()))
    }

    /// Live stores, evictions, and the `recent` most recently used stores' statuses.
    pub(crate) fn report(&self, recent: usize) -> Report {
        let live = lock(&self.live);
        let mut entries: Vec<&Entry> = live.stores.values().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.used));
        Report {
            live: live.stores.len(),
            evictions: live.evictions,
            recent: entries
                .into_iter()
                .take(recent)
                .map(|e| (e.issuer.clone(), e.store.status()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenants::IssuerRule;

    /// A shared rule's store is never found by a token whose `iss` is its key set URL
    /// (a tenant of another rule): that token gets its own store, and is not waved
    /// through the shared rule's per-key checks.
    #[test]
    fn a_shared_store_is_not_found_by_an_issuer_equal_to_its_url() {
        let base = "http://127.0.0.1:9";
        let rules = vec![
            Compiled::new(&IssuerRule::shared_keys(
                "e",
                format!("{base}/x/{{t}}"),
                format!("{base}/keys"),
            ))
            .unwrap(),
            Compiled::new(&IssuerRule::discovered("d", format!("{base}/{{t}}"))).unwrap(),
        ];
        let stores = RuleStores::new(
            rules,
            0,
            Fetching {
                timing: Timing::default(),
                allow_http: false,
                client: None,
                bound: 10,
                burst: 10,
                per_second: 1.0,
            },
        );
        let Found::Store(shared, _, Some(tenant)) = stores.find(&format!("{base}/x/acme")) else {
            panic!("the shared rule's store, with its tenant");
        };
        assert_eq!(&*tenant, "acme");
        let Found::Store(other, _, None) = stores.find(&format!("{base}/keys")) else {
            panic!("a store of its own, with no tenant");
        };
        assert_ne!(shared, other);
    }
}
