//! When a director may hold the VIPs (lease fencing), and the timing profiles that keep the rule
//! safe.
//!
//! The invariant: a VIP holder releases before any other director can be elected.
//! openraft's leader clock counts from the *sending* time of the last heartbeat a majority
//! acknowledged (`millis_since_quorum_ack`). Every voter that acknowledged it refuses to vote for
//! anyone else for `election_max_ms` (openraft's leader lease) after receiving it, and any winning
//! majority includes one of those voters, so no other leader can exist before
//! `sent + election_max_ms`. The holder drops the VIPs once the acknowledgement is
//! `release_ms` old, noticed within one poll and removed within `REMOVE_BUDGET_MS`; so
//! `release_ms + poll_ms + REMOVE_BUDGET_MS < election_max_ms` keeps the two apart. (Followers
//! also wait a further election timeout after the lease before they campaign, which adds margin.)

use std::time::Duration;

use crate::error::ProfileError;

/// Time allowed for deleting the VIP addresses once the watchdog decides to release.
pub const REMOVE_BUDGET_MS: u64 = 20;

/// Raft timing and the VIP release threshold, chosen together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Profile {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Quorum-ack age at which the holder releases its VIPs.
    pub release_ms: u64,
    /// How often the VIP watchdog checks, besides reacting to metrics changes.
    pub poll_ms: u64,
}

impl Profile {
    /// Sub-second failover: a follower campaigns 600–800 ms after the last heartbeat
    /// (lease 400 ms + election timeout 200–400 ms).
    pub const DEFAULT: Profile = Profile {
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        release_ms: 200,
        poll_ms: 10,
    };

    /// A few hundred milliseconds: a follower campaigns 180–240 ms after the last heartbeat.
    /// Needs a quiet LAN and fast disks: one heartbeat lost in 60 ms releases the VIPs.
    pub const FAST: Profile = Profile {
        heartbeat_ms: 20,
        election_min_ms: 60,
        election_max_ms: 120,
        release_ms: 60,
        poll_ms: 5,
    };

    pub fn named(name: &str) -> Result<Profile, ProfileError> {
        match name {
            "default" => Ok(Profile::DEFAULT),
            "fast" => Ok(Profile::FAST),
            _ => Err(ProfileError::Unknown(name.to_string())),
        }
    }

    /// Time left between the latest moment the holder has released and the earliest moment
    /// another director can be elected.
    pub fn margin_ms(&self) -> i64 {
        self.election_max_ms as i64 - (self.release_ms + self.poll_ms + REMOVE_BUDGET_MS) as i64
    }

    /// Checks the invariant and that ordinary heartbeat jitter cannot release the VIPs.
    pub fn check(&self) -> Result<(), ProfileError> {
        if self.heartbeat_ms == 0 || self.poll_ms == 0 {
            return Err(ProfileError::ZeroInterval);
        }
        if self.election_min_ms <= 2 * self.heartbeat_ms {
            return Err(ProfileError::ElectionMinTooShort {
                election_min_ms: self.election_min_ms,
                heartbeat_ms: self.heartbeat_ms,
            });
        }
        if self.election_max_ms <= self.election_min_ms {
            return Err(ProfileError::ElectionMaxTooShort {
                election_max_ms: self.election_max_ms,
                election_min_ms: self.election_min_ms,
            });
        }
        if self.release_ms < 2 * self.heartbeat_ms {
            return Err(ProfileError::ReleaseTooShort {
                release_ms: self.release_ms,
                min_ms: 2 * self.heartbeat_ms,
            });
        }
        if self.margin_ms() <= 0 {
            return Err(ProfileError::NoMargin {
                release_ms: self.release_ms,
                poll_ms: self.poll_ms,
                remove_ms: REMOVE_BUDGET_MS,
                election_max_ms: self.election_max_ms,
            });
        }
        Ok(())
    }
}

/// What the watchdog knows at one instant about this node's Raft role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation {
    /// openraft says this node leads.
    pub is_leader: bool,
    /// `millis_since_quorum_ack` as published with the metrics (None: no quorum ack yet).
    pub ack_age_at_publish_ms: Option<u64>,
    /// Time since those metrics were received; a stalled Raft core stops publishing, so the age
    /// keeps growing here even when nothing new arrives.
    pub since_publish: Duration,
}

impl Observation {
    /// Age of the last quorum acknowledgement now.
    pub fn ack_age(&self) -> Option<Duration> {
        self.ack_age_at_publish_ms
            .map(|ms| Duration::from_millis(ms) + self.since_publish)
    }
}

/// Whether this node may hold the VIPs now: leader AND acknowledged by a majority recently.
/// `state == Leader` alone is not enough: openraft 0.9 has no check-quorum step-down, so a leader
/// cut off from the majority keeps calling itself leader.
pub fn may_hold(obs: &Observation, release: Duration) -> bool {
    obs.is_leader && obs.ack_age().is_some_and(|age| age < release)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_keep_the_invariant() {
        for p in [Profile::DEFAULT, Profile::FAST] {
            p.check().unwrap();
            assert!(p.margin_ms() > 0);
        }
        assert_eq!(Profile::named("fast").unwrap(), Profile::FAST);
        assert!(Profile::named("turbo")
            .unwrap_err()
            .to_string()
            .contains("turbo"));
    }

    #[test]
    fn unsafe_timings_are_refused() {
        let mut p = Profile::DEFAULT;
        p.release_ms = 390;
        assert!(p.check().unwrap_err().to_string().contains("leader lease"));
        let mut p = Profile::DEFAULT;
        p.release_ms = 60;
        assert!(p
            .check()
            .unwrap_err()
            .to_string()
            .contains("two heartbeats"));
        let mut p = Profile::DEFAULT;
        p.election_min_ms = 100;
        assert!(p.check().is_err());
    }

    #[test]
    fn hold_only_while_leader_and_acknowledged() {
        let release = Duration::from_millis(200);
        let obs = |is_leader, ack, since| Observation {
            is_leader,
            ack_age_at_publish_ms: ack,
            since_publish: Duration::from_millis(since),
        };
        assert!(may_hold(&obs(true, Some(30), 5), release));
        assert!(!may_hold(&obs(false, Some(30), 5), release));
        assert!(!may_hold(&obs(true, None, 0), release));
        // Fresh when published, but the core has been silent since: release.
        assert!(!may_hold(&obs(true, Some(10), 190), release));
        assert!(may_hold(&obs(true, Some(10), 189), release));
    }
}
