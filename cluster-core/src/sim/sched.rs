//! Per-connection schedulers as IPVS implements them (rr, wrr, lc, wlc, sed, nq, mh), plus the
//! baselines of the theory (weighted random, the JSQ oracle and JSQ(d)).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::rng::Rng;
use crate::error::UnknownSimScheduler;

/// What a scheduler may look at: IPVS sees weights and connection counts; the oracles also see
/// queue lengths and speeds.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    /// Requests queued or in service (oracles only).
    pub queue: u32,
    /// Service rate (oracles only).
    pub speed: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Kind {
    /// Random with probability ∝ weight (the theory's baseline; not an IPVS scheduler).
    Random,
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    /// Maglev hashing of the connection's source, weights → table slots.
    Mh,
    /// Oracle: the server with the least (queue + 1) / speed.
    Jsq,
    /// Oracle: the best of d servers chosen uniformly at random.
    JsqD(u32),
    /// wlc with weights from `weights::Controller` fed by agent reports.
    Policy,
}

impl Kind {
    /// Every scheduler, in table order.
    pub fn all() -> Vec<Kind> {
        vec![
            Kind::Random,
            Kind::Rr,
            Kind::Wrr,
            Kind::Lc,
            Kind::Wlc,
            Kind::Sed,
            Kind::Nq,
            Kind::Mh,
            Kind::JsqD(2),
            Kind::Jsq,
            Kind::Policy,
        ]
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Random => f.write_str("random"),
            Kind::Rr => f.write_str("rr"),
            Kind::Wrr => f.write_str("wrr"),
            Kind::Lc => f.write_str("lc"),
            Kind::Wlc => f.write_str("wlc"),
            Kind::Sed => f.write_str("sed"),
            Kind::Nq => f.write_str("nq"),
            Kind::Mh => f.write_str("mh"),
            Kind::Jsq => f.write_str("jsq"),
            Kind::JsqD(d) => write!(f, "jsq{d}"),
            Kind::Policy => f.write_str("policy"),
        }
    }
}

impl FromStr for Kind {
    type Err = UnknownSimScheduler;
    fn from_str(s: &str) -> Result<Self, UnknownSimScheduler> {
        Ok(match s {
            "random" => Kind::Random,
            "rr" => Kind::Rr,
            "wrr" => Kind::Wrr,
            "lc" => Kind::Lc,
            "wlc" => Kind::Wlc,
            "sed" => Kind::Sed,
            "nq" => Kind::Nq,
            "mh" => Kind::Mh,
            "jsq" => Kind::Jsq,
            "policy" => Kind::Policy,
            _ => match s.strip_prefix("jsq").and_then(|d| d.parse::<u32>().ok()) {
                Some(d) if (1..=MAX_D as u32).contains(&d) => Kind::JsqD(d),
                _ => return Err(UnknownSimScheduler(s.to_string())),
            },
        })
    }
}

impl From<Kind> for String {
    fn from(k: Kind) -> String {
        k.to_string()
    }
}

impl TryFrom<String> for Kind {
    type Error = UnknownSimScheduler;
    fn try_from(s: String) -> Result<Self, UnknownSimScheduler> {
        s.parse()
    }
}

/// Largest d of JSQ(d).
pub const MAX_D: usize = 32;

/// Maglev lookup table size (IPVS mh's default, CONFIG_IP_VS_MH_TAB_INDEX = 12).
const MH_TABLE: usize = 4093;
/// Slots a full-weight server takes per round of the table fill.
const MH_TURNS: f64 = 32.0;

/// A scheduler and its state.
pub struct Scheduler {
    kind: Kind,
    rr_last: Option<usize>,
    wrr_i: Option<usize>,
    wrr_cw: i64,
    /// Weights epoch the tables below were built for.
    epoch: Option<u64>,
    /// Cumulative weights (random).
    cumulative: Vec<u64>,
    mh_table: Vec<u32>,
}

impl Scheduler {
    pub fn new(kind: Kind) -> Self {
        Scheduler {
            kind,
            rr_last: None,
            wrr_i: None,
            wrr_cw: 0,
            epoch: None,
            cumulative: Vec::new(),
            mh_table: Vec::new(),
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The server for a new connection from `source` (a hash of its address and port); `None`
    /// when every weight is 0. `epoch` changes whenever a weight does.
    pub fn pick(
        &mut self,
        servers: &[View],
        epoch: u64,
        rng: &mut Rng,
        source: u64,
    ) -> Option<usize> {
        if self.epoch != Some(epoch) {
            self.epoch = Some(epoch);
            self.rebuild(servers);
        }
        match self.kind {
            Kind::Random => self.random(rng),
            Kind::Rr => self.rr(servers),
            Kind::Wrr => self.wrr(servers),
            Kind::Lc => least(
                servers,
                |s| 256 * s.active as u64 + s.inactive as u64,
                false,
            ),
            Kind::Wlc | Kind::Policy => {
                least(servers, |s| 256 * s.active as u64 + s.inactive as u64, true)
            }
            Kind::Sed => least(servers, |s| s.active as u64 + 1, true),
            Kind::Nq => match servers.iter().position(|s| s.weight > 0 && s.active == 0) {
                Some(i) => Some(i),
                None => least(servers, |s| s.active as u64 + 1, true),
            },
            Kind::Mh => {
                let table = &self.mh_table;
                (!table.is_empty())
                    .then(|| table[(mix(source) % MH_TABLE as u64) as usize] as usize)
            }
            Kind::Jsq => jsq(servers, 0..servers.len(), rng),
            Kind::JsqD(d) => {
                let n = servers.len();
                let d = (d as usize).min(n).min(MAX_D);
                let mut picked = [0usize; MAX_D];
                let mut k = 0;
                while k < d {
                    let i = rng.below(n);
                    if !picked[..k].contains(&i) {
                        picked[k] = i;
                        k += 1;
                    }
                }
                jsq(servers, picked[..d].iter().copied(), rng)
            }
        }
    }

    fn rr(&mut self, servers: &[View]) -> Option<usize> {
        let n = servers.len();
        let start = self.rr_last.map_or(0, |i| i + 1);
        for k in 0..n {
            let i = (start + k) % n;
            if servers[i].weight > 0 {
                self.rr_last = Some(i);
                return Some(i);
            }
        }
        None
    }

    /// ip_vs_wrr.c: step the current weight down by the gcd each round, take servers whose
    /// weight reaches it.
    fn wrr(&mut self, servers: &[View]) -> Option<usize> {
        let max = servers.iter().map(|s| s.weight).max().unwrap_or(0) as i64;
        if max == 0 {
            return None;
        }
        let gcd = servers
            .iter()
            .map(|s| s.weight as i64)
            .filter(|w| *w > 0)
            .fold(0, gcd);
        let n = servers.len();
        if self.wrr_cw > max {
            self.wrr_cw = max;
        }
        loop {
            let i = match self.wrr_i {
                None => 0,
                Some(i) => (i + 1) % n,
            };
            // A new round starts at the first server (and on the very first call).
            if i == 0 {
                self.wrr_cw -= gcd;
                if self.wrr_cw <= 0 {
                    self.wrr_cw = max;
                }
            }
            self.wrr_i = Some(i);
            if servers[i].weight as i64 >= self.wrr_cw {
                return Some(i);
            }
        }
    }

    fn rebuild(&mut self, servers: &[View]) {
        match self.kind {
            Kind::Random => {
                let mut total = 0;
                self.cumulative = servers
                    .iter()
                    .map(|s| {
                        total += s.weight as u64;
                        total
                    })
                    .collect();
            }
            Kind::Mh => {
                let weights: Vec<u32> = servers.iter().map(|s| s.weight).collect();
                self.mh_table = maglev_table(&weights);
            }
            _ => {}
        }
    }

    /// Probability ∝ weight.
    fn random(&self, rng: &mut Rng) -> Option<usize> {
        let total = *self.cumulative.last()?;
        if total == 0 {
            return None;
        }
        let x = ((rng.f64() * total as f64) as u64).min(total - 1);
        Some(self.cumulative.partition_point(|&c| c <= x))
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    z ^ (z >> 33)
}

/// Maglev population where each server takes slots in proportion to its weight per round.
fn maglev_table(weights: &[u32]) -> Vec<u32> {
    let max = weights.iter().copied().max().unwrap_or(0);
    if max == 0 {
        return Vec::new();
    }
    let m = MH_TABLE as u64;
    let perm: Vec<(u64, u64, u64)> = (0..weights.len() as u64)
        .map(|i| {
            let offset = mix(i.wrapping_mul(2).wrapping_add(0x51)) % m;
            let skip = mix(i.wrapping_mul(2).wrapping_add(0x52)) % (m - 1) + 1;
            let turns = if weights[i as usize] == 0 {
                0
            } else {
                ((weights[i as usize] as f64 * MH_TURNS / max as f64).round() as u64).max(1)
            };
            (offset, skip, turns)
        })
        .collect();
    let mut next = vec![0u64; weights.len()];
    let mut table = vec![u32::MAX; MH_TABLE];
    let mut filled = 0;
    'fill: loop {
        for (i, &(offset, skip, turns)) in perm.iter().enumerate() {
            for _ in 0..turns {
                let mut c = (offset + next[i] * skip) % m;
                while table[c as usize] != u32::MAX {
                    next[i] += 1;
                    c = (offset + next[i] * skip) % m;
                }
                table[c as usize] = i as u32;
                next[i] += 1;
                filled += 1;
                if filled == MH_TABLE {
                    break 'fill;
                }
            }
        }
    }
    table
}

/// IPVS' least-overhead loop: the first server with weight > 0, replaced only by one with a
/// strictly lower overhead (per weight when `weighted`), so ties go to the first in list order.
fn least(servers: &[View], overhead: impl Fn(&View) -> u64, weighted: bool) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, s) in servers.iter().enumerate() {
        if s.weight == 0 {
            continue;
        }
        let oh = overhead(s);
        best = match best {
            None => Some((i, oh)),
            Some((b, boh)) => {
                let better = if weighted {
                    boh as u128 * s.weight as u128 > oh as u128 * servers[b].weight as u128
                } else {
                    oh < boh
                };
                if better {
                    Some((i, oh))
                } else {
                    Some((b, boh))
                }
            }
        };
    }
    best.map(|(i, _)| i)
}

/// The least (queue + 1) / speed among `candidates`, ties broken uniformly at random.
fn jsq(servers: &[View], candidates: impl Iterator<Item = usize>, rng: &mut Rng) -> Option<usize> {
    let mut best: Option<usize> = None;
    let mut best_cost = f64::INFINITY;
    let mut ties = 0u32;
    for i in candidates {
        let s = &servers[i];
        if s.weight == 0 {
            continue;
        }
        let cost = (s.queue as f64 + 1.0) / s.speed;
        if cost < best_cost {
            best = Some(i);
            best_cost = cost;
            ties = 1;
        } else if cost == best_cost {
            ties += 1;
            if rng.below(ties as usize) == 0 {
                best = Some(i);
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn views(weights: &[u32]) -> Vec<View> {
        weights
            .iter()
            .map(|&weight| View {
                weight,
                active: 0,
                inactive: 0,
                queue: 0,
                speed: 1.0,
            })
            .collect()
    }

    #[test]
    fn sim_sched_wrr_and_mh_follow_weights() {
        let v = views(&[4, 3, 2, 0]);
        let mut rng = Rng::new(1);
        let mut wrr = Scheduler::new(Kind::Wrr);
        let seq: Vec<usize> = (0..9)
            .map(|_| wrr.pick(&v, 0, &mut rng, 0).unwrap())
            .collect();
        assert_eq!(seq, vec![0, 0, 1, 0, 1, 2, 0, 1, 2]);
        let mut mh = Scheduler::new(Kind::Mh);
        let mut count = [0usize; 4];
        for _ in 0..90_000 {
            let source = rng.next_u64();
            count[mh.pick(&v, 0, &mut rng, source).unwrap()] += 1;
        }
        assert_eq!(count[3], 0);
        for (i, share) in [4.0 / 9.0, 3.0 / 9.0, 2.0 / 9.0].iter().enumerate() {
            let got = count[i] as f64 / 90_000.0;
            assert!((got - share).abs() < 0.03, "server {i}: {got} vs {share}");
        }
    }

    #[test]
    fn sim_sched_ipvs_least_connection_ties_go_first() {
        let mut v = views(&[1, 2, 1]);
        let mut rng = Rng::new(1);
        let mut s = Scheduler::new(Kind::Wlc);
        assert_eq!(s.pick(&v, 0, &mut rng, 0), Some(0));
        v[0].active = 1;
        assert_eq!(s.pick(&v, 0, &mut rng, 0), Some(1));
        v[1].active = 2;
        v[2].active = 1;
        // 256/1 == 512/2 == 256/1: the tie keeps the first.
        assert_eq!(s.pick(&v, 0, &mut rng, 0), Some(0));
        // nq without an idle server is sed: 2/1, 3/2, 2/1.
        let mut nq = Scheduler::new(Kind::Nq);
        assert_eq!(nq.pick(&v, 0, &mut rng, 0), Some(1));
        v[2].active = 0;
        assert_eq!(nq.pick(&v, 0, &mut rng, 0), Some(2));
        assert_eq!("jsq2".parse::<Kind>(), Ok(Kind::JsqD(2)));
        assert!("jsq0".parse::<Kind>().is_err());
        assert!("fastest"
            .parse::<Kind>()
            .unwrap_err()
            .to_string()
            .contains("fastest"));
    }
}
