//! The forced-refresh [`Gate`]: single flight and a cooldown, pure (the clock is passed
//! in) so that it is tested on a paused clock.
//!
//! A token whose `kid` is not in the snapshot (after its cheap checks passed) asks for a
//! forced refresh:
//!
//! - if a forced refresh is already pending, the request joins it (single flight);
//! - else, if the last forced refresh started less than `cooldown` ago, it is denied and
//!   the token is rejected at once: a flood of random kids costs the identity provider at
//!   most one fetch per cooldown;
//! - else a new forced refresh is requested, and the request waits for it.
//!
//! Each forced request gets a ticket; a fetch serves the tickets issued before it
//! *started*, so a waiter always sees a fetch that began after it asked.

use std::time::Duration;

use tokio::time::Instant;

/// What the gate decided for a forced refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateDecision {
    /// Wait until the fetch serving this ticket completed.
    Wait { ticket: u64, new: bool },
    /// A forced refresh ran less than a cooldown ago: do not fetch.
    Denied,
}

/// Single flight and cooldown for forced refreshes. Pure: the clock is passed in.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    requested: u64,
    served: u64,
    last_forced: Option<Instant>,
}

impl Gate {
    pub(crate) fn request(
        &mut self,
        now: Instant,
        cooldown: Duration,
        force: bool,
    ) -> GateDecision {
        if self.requested > self.served {
            return GateDecision::Wait {
                ticket: self.requested,
                new: false,
            };
        }
        if !force
            && self
                .last_forced
                .is_some_and(|last| now.saturating_duration_since(last) < cooldown)
        {
            return GateDecision::Denied;
        }
        self.requested += 1;
        self.last_forced = Some(now);
        GateDecision::Wait {
            ticket: self.requested,
            new: true,
        }
    }

    /// The ticket a fetch starting now will serve.
    pub(crate) fn serving(&self) -> u64 {
        self.requested
    }

    pub(crate) fn served(&mut self, ticket: u64) {
        self.served = self.served.max(ticket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn gate_single_flight_and_cooldown() {
        let cooldown = Duration::from_secs(30);
        let mut g = Gate::default();
        let t0 = Instant::now();
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: true
            }
        );
        // A second unknown kid while the first is pending joins it.
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: false
            }
        );
        // A fetch that started before the request serves nothing; the next one serves it.
        g.served(0);
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: false
            }
        );
        g.served(g.serving());
        // Within the cooldown: denied.
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(
            g.request(Instant::now(), cooldown, false),
            GateDecision::Denied
        );
        // `refresh_now` bypasses the cooldown.
        assert_eq!(
            g.request(Instant::now(), cooldown, true),
            GateDecision::Wait {
                ticket: 2,
                new: true
            }
        );
        g.served(2);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            g.request(Instant::now(), cooldown, false),
            GateDecision::Wait {
                ticket: 3,
                new: true
            }
        );
    }
}
