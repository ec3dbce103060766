//! The faults of a run, drawn from a seed: when each SIGKILL and the PostgreSQL restart
//! happen (counted from the moment every call is streaming) and how long the server stays
//! down after each kill. The same seed gives the same plan; the interleaving with the
//! calls still varies from run to run (scheduling, the database's timing).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the server; start it again on the same port after `down`.
    KillServer { down: Duration },
    /// `pg_ctl restart` the harness's PostgreSQL (the server stays up).
    RestartPostgres,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// After the start of streaming.
    pub at: Duration,
    pub fault: Fault,
}

/// How long the server stays down after a kill, before it is started again.
pub const DOWN: (Duration, Duration) = (Duration::from_millis(200), Duration::from_millis(3_000));

/// `kills` server kills and `pg_restarts` PostgreSQL restarts at uniformly drawn moments in
/// `window`, in time order.
pub fn plan(seed: u64, kills: u32, pg_restarts: u32, window: (Duration, Duration)) -> Vec<Planned> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (from, to) = (window.0.as_millis() as u64, window.1.as_millis() as u64);
    let at = |rng: &mut StdRng| Duration::from_millis(rng.random_range(from..=to.max(from)));
    let mut out = Vec::new();
    for _ in 0..kills {
        let when = at(&mut rng);
        let down = rng.random_range(DOWN.0.as_millis() as u64..=DOWN.1.as_millis() as u64);
        out.push(Planned {
            at: when,
            fault: Fault::KillServer {
                down: Duration::from_millis(down),
            },
        });
    }
    for _ in 0..pg_restarts {
        out.push(Planned {
            at: at(&mut rng),
            fault: Fault::RestartPostgres,
        });
    }
    out.sort_by_key(|p| p.at);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_plan_within_the_window() {
        let window = (Duration::from_secs(2), Duration::from_secs(30));
        let a = plan(42, 5, 1, window);
        assert_eq!(a, plan(42, 5, 1, window), "the same seed, the same plan");
        assert_ne!(a, plan(43, 5, 1, window), "another seed, another plan");
        assert_eq!(a.len(), 6);
        let kills = a
            .iter()
            .filter(|p| matches!(p.fault, Fault::KillServer { .. }))
            .count();
        assert_eq!(kills, 5);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at), "in time order");
        for p in &a {
            assert!(p.at >= window.0 && p.at <= window.1, "{p:?}");
            if let Fault::KillServer { down } = p.fault {
                assert!(down >= DOWN.0 && down <= DOWN.1, "{p:?}");
            }
        }
        assert!(plan(1, 0, 0, window).is_empty());
    }
}
