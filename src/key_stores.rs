//! [`KeyStores`]: a layer's key stores, each with its refresh task, and the choice of
//! the one that may verify a token: the single store, a trusted issuer's by exact `iss`,
//! or an issuer rule's ([`tenants`](crate::tenants)).

use std::sync::Arc;
use std::time::Duration;

use crate::error::{AuthError, AuthErrorKind, ReadyError, RefreshError};
use crate::refresh::Task;
use crate::status::Status;
use crate::store::KeyStore;
use crate::tenants::{Found, Report, RuleStores};

/// How many of the most recently used rule-matched stores [`Status::issuers`] lists.
const RECENT_TENANTS: usize = 10;

/// The key store that may verify a token: its index (for the cache's provenance), the
/// store, and for a shared rule's token the tenant its key must name.
pub(crate) struct ForIssuer {
    pub(crate) index: usize,
    pub(crate) store: Arc<KeyStore>,
    pub(crate) tenant: Option<Arc<str>>,
}

/// The key stores of a layer, each with its refresh task: one with no issuer, or one
/// per trusted issuer, and those of rule-matched issuers (made on first use).
#[derive(Debug)]
pub(crate) struct KeyStores {
    stores: Vec<(Option<String>, Arc<KeyStore>, Task)>,
    rules: Option<RuleStores>,
}

impl KeyStores {
    /// The fixed stores (with their issuer, if the layer has several) and the rules'.
    pub(crate) fn new(
        stores: Vec<(Option<String>, Arc<KeyStore>)>,
        rules: Option<RuleStores>,
    ) -> Self {
        Self {
            stores: stores
                .into_iter()
                .map(|(issuer, store)| (issuer, store, Task::new()))
                .collect(),
            rules,
        }
    }

    /// The key store for a token's issuer, and its index (for the cache's provenance);
    /// `Ok(None)` when no store may verify it. Multi-issuer: chosen by exact `iss`, so a
    /// key of one issuer never verifies a token claiming another; then the rules, whose
    /// budget for new tenants may answer 503.
    pub(crate) fn for_issuer(&self, iss: Option<&str>) -> Result<Option<ForIssuer>, AuthError> {
        let fixed = |index: usize, store: &Arc<KeyStore>| ForIssuer {
            index,
            store: store.clone(),
            tenant: None,
        };
        if let [(None, store, _)] = self.stores.as_slice() {
            return Ok(Some(fixed(0, store)));
        }
        let Some(iss) = iss else {
            return Ok(None);
        };
        if let Some(i) = self
            .stores
            .iter()
            .position(|(issuer, ..)| issuer.as_deref() == Some(iss))
        {
            return Ok(Some(fixed(i, &self.stores[i].1)));
        }
        match self.rules.as_ref().map(|rules| rules.find(iss)) {
            Some(Found::Store(index, store, tenant)) => Ok(Some(ForIssuer {
                index,
                store,
                tenant,
            })),
            Some(Found::Budget(wait)) => {
                Err(AuthError::unavailable(AuthErrorKind::KeysUnavailable, wait))
            }
            Some(Found::NoRule) | None => Ok(None),
        }
    }

    /// Whether a token of `iss` could be verified here, with no store made and no I/O:
    /// the single store trusts any (its rules checked `iss`), a multi-issuer layer its
    /// fixed issuers and its rules' tenants (for an introspection answer's `iss`).
    pub(crate) fn trusts(&self, iss: Option<&str>) -> bool {
        if let [(None, _, _)] = self.stores.as_slice() {
            return true;
        }
        let Some(iss) = iss else {
            return false;
        };
        self.stores
            .iter()
            .any(|(issuer, ..)| issuer.as_deref() == Some(iss))
            || self.rules.as_ref().is_some_and(|rules| rules.matches(iss))
    }

    /// The store with this index (a fixed one, or a live rule-matched one).
    pub(crate) fn get(&self, index: usize) -> Option<Arc<KeyStore>> {
        match self.stores.get(index) {
            Some((_, store, _)) => Some(store.clone()),
            None => self.rules.as_ref()?.get(index),
        }
    }

    /// The fixed stores.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<KeyStore>> {
        self.stores.iter().map(|(_, store, _)| store)
    }

    /// Starts the refresh tasks that are not running (cheap when they are).
    pub(crate) fn ensure_running(&self) {
        for (_, store, task) in &self.stores {
            task.ensure_running(store);
        }
    }

    /// Waits for store `index`'s first key set or a forced refresh, as its gate allows.
    pub(crate) async fn wait_for_keys(&self, index: usize) {
        if let Some((_, store, task)) = self.stores.get(index) {
            task.wait_for_keys(store).await;
        } else if let Some((store, task)) = self.rules.as_ref().and_then(|r| r.with_task(index)) {
            task.wait_for_keys(&store).await;
        }
    }

    /// Waits until every store has a key set (see [`Task::ready`]), within `limit`.
    pub(crate) async fn ready(&self, limit: Option<Duration>) -> Result<(), ReadyError> {
        // A limit too far in the future to represent is no limit.
        let deadline = limit.and_then(|l| tokio::time::Instant::now().checked_add(l));
        for (_, store, task) in &self.stores {
            let left = deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
            task.ready(store, left).await?;
        }
        Ok(())
    }

    /// Forces a refresh of every store; the first error.
    pub(crate) async fn refresh_now(&self) -> Result<(), RefreshError> {
        let mut result = Ok(());
        for (_, store, task) in &self.stores {
            if let Err(e) = task.refresh_now(store).await
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    }

    /// Each trusted issuer's status (multi-issuer layers; empty otherwise), then the
    /// most recently used rule-matched ones.
    pub(crate) fn issuer_statuses(&self) -> Vec<(String, Status)> {
        let fixed = self
            .stores
            .iter()
            .filter_map(|(issuer, store, _)| Some((issuer.clone()?, store.status())));
        let recent = self
            .tenants(RECENT_TENANTS)
            .map(|r| r.recent)
            .unwrap_or_default();
        fixed.chain(recent).collect()
    }

    /// The rule-matched stores' report, if the layer has rules.
    pub(crate) fn tenants(&self, recent: usize) -> Option<Report> {
        self.rules.as_ref().map(|rules| rules.report(recent))
    }
}
