//! The adaptive controller: picks the algorithm and level of adaptive topics from measured load.
//!
//! The server measures and calls [`crate::Engine::observe_load`] about once a second with a
//! [`LoadSample`]. The controller walks a ladder from cheapest to strongest:
//! none, lz4, zstd 1, zstd 3, zstd 6, zstd 9 (and the configured zstd level when higher).
//!
//! - CPU above `cpu_threshold_high_percent` or append latency above
//!   `latency_threshold_high_ms`: one step down (cheaper).
//! - CPU below `cpu_threshold_low_percent` and memory above `memory_threshold_high_percent`:
//!   one step up (smaller data in memory and on disk).
//! - CPU below the low threshold, memory and latency fine, and below the configured baseline:
//!   one step back up towards the baseline.
//!
//! Hysteresis: the gap between the CPU thresholds, `samples_to_act` consecutive samples
//! asking for the same move, and at least `cooldown_ms` between two changes.

use crate::Millis;
use crate::batch::StoredCompression;
use crate::compression::policy::AdaptiveConfig;

/// One load measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadSample {
    /// Process CPU over the last interval, in percent of one core.
    pub cpu_percent: f64,
    /// Resident memory in percent of the limit (or of the machine's memory).
    pub memory_percent: f64,
    /// Observed append latency, in ms.
    pub append_latency_ms: f64,
}

/// A change the controller made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompressionDecision {
    /// Compression before.
    pub from: StoredCompression,
    /// Compression after.
    pub to: StoredCompression,
    /// Why, with the measured values.
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    Down,
    Up,
    Relax,
}

/// The controller's state.
#[derive(Debug, Clone)]
pub struct Controller {
    cfg: AdaptiveConfig,
    ladder: Vec<StoredCompression>,
    baseline: usize,
    pos: usize,
    pending: Option<(Move, u32)>,
    last_change: Option<Millis>,
    decisions: u64,
}

fn rung_of(ladder: &[StoredCompression], c: StoredCompression) -> usize {
    match c {
        StoredCompression::None => 0,
        StoredCompression::Lz4 | StoredCompression::Snappy => 1,
        StoredCompression::Zstd { level } => ladder
            .iter()
            .rposition(|r| matches!(r, StoredCompression::Zstd { level: l } if *l <= level))
            .unwrap_or(2),
    }
}

impl Controller {
    /// A controller starting at (and relaxing back to) `baseline`.
    pub fn new(cfg: AdaptiveConfig, baseline: StoredCompression) -> Self {
        let mut ladder = vec![StoredCompression::None, StoredCompression::Lz4];
        ladder.extend([1, 3, 6, 9].map(|level| StoredCompression::Zstd { level }));
        if let StoredCompression::Zstd { level } = baseline
            && level > 9
        {
            ladder.push(baseline);
        }
        let pos = rung_of(&ladder, baseline);
        if ladder[pos] != baseline {
            ladder[pos] = baseline;
        }
        Self {
            cfg,
            ladder,
            baseline: pos,
            pos,
            pending: None,
            last_change: None,
            decisions: 0,
        }
    }

    /// The compression adaptive topics use now.
    pub fn current(&self) -> StoredCompression {
        self.ladder[self.pos]
    }

    /// Changes made so far.
    pub fn decisions(&self) -> u64 {
        self.decisions
    }

    fn wanted(&self, s: &LoadSample) -> Option<(Move, String)> {
        let c = &self.cfg;
        let values = format!(
            "cpu {:.1}%, memory {:.1}%, append latency {:.1} ms",
            s.cpu_percent, s.memory_percent, s.append_latency_ms
        );
        if s.cpu_percent > f64::from(c.cpu_threshold_high_percent) {
            let why = format!("cpu above {}% ({values})", c.cpu_threshold_high_percent);
            return (self.pos > 0).then_some((Move::Down, why));
        }
        if s.append_latency_ms > c.latency_threshold_high_ms as f64 {
            let why = format!(
                "append latency above {} ms ({values})",
                c.latency_threshold_high_ms
            );
            return (self.pos > 0).then_some((Move::Down, why));
        }
        if s.cpu_percent < f64::from(c.cpu_threshold_low_percent) {
            if s.memory_percent > f64::from(c.memory_threshold_high_percent) {
                let why = format!(
                    "cpu below {}% and memory above {}% ({values})",
                    c.cpu_threshold_low_percent, c.memory_threshold_high_percent
                );
                return (self.pos + 1 < self.ladder.len()).then_some((Move::Up, why));
            }
            if self.pos < self.baseline {
                let why = format!(
                    "load back to normal, returning towards the configured compression ({values})"
                );
                return Some((Move::Relax, why));
            }
        }
        None
    }

    /// Feeds one sample taken at `now`; returns the change made, if any.
    pub fn observe(&mut self, now: Millis, sample: &LoadSample) -> Option<CompressionDecision> {
        let Some((mv, reason)) = self.wanted(sample) else {
            self.pending = None;
            return None;
        };
        let count = match self.pending {
            Some((m, n)) if m == mv => n + 1,
            _ => 1,
        };
        self.pending = Some((mv, count));
        let cooled = self
            .last_change
            .is_none_or(|t| now.saturating_sub(t) >= self.cfg.cooldown_ms);
        if count < self.cfg.samples_to_act.max(1) || !cooled {
            return None;
        }
        let from = self.current();
        self.pos = match mv {
            Move::Down => self.pos - 1,
            Move::Up | Move::Relax => self.pos + 1,
        };
        self.pending = None;
        self.last_change = Some(now);
        self.decisions += 1;
        Some(CompressionDecision {
            from,
            to: self.current(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(cpu: f64, memory: f64, latency: f64) -> LoadSample {
        LoadSample {
            cpu_percent: cpu,
            memory_percent: memory,
            append_latency_ms: latency,
        }
    }

    fn controller() -> Controller {
        let cfg = AdaptiveConfig {
            samples_to_act: 3,
            cooldown_ms: 5_000,
            ..AdaptiveConfig::default()
        };
        Controller::new(cfg, StoredCompression::Zstd { level: 3 })
    }

    #[test]
    fn high_cpu_steps_down_after_consecutive_samples_and_cooldown() {
        let mut c = controller();
        let hot = sample(95.0, 10.0, 1.0);
        assert_eq!(c.observe(0, &hot), None);
        assert_eq!(c.observe(1_000, &hot), None);
        let d = c.observe(2_000, &hot).expect("third sample acts");
        assert_eq!(d.from, StoredCompression::Zstd { level: 3 });
        assert_eq!(d.to, StoredCompression::Zstd { level: 1 });
        assert!(d.reason.contains("cpu above 80%"), "{}", d.reason);
        // Cooldown: three more hot samples within 5 s change nothing.
        for t in [3_000, 4_000, 5_000] {
            assert_eq!(c.observe(t, &hot), None);
        }
        assert_eq!(c.observe(7_000, &hot).unwrap().to, StoredCompression::Lz4);
        for t in (8_000..20_000).step_by(1_000) {
            c.observe(t, &hot);
        }
        assert_eq!(c.current(), StoredCompression::None);
        assert_eq!(c.decisions(), 3);
        // Nothing below none.
        for t in (20_000..40_000).step_by(1_000) {
            assert_eq!(c.observe(t, &hot), None);
        }
    }

    #[test]
    fn a_broken_streak_resets_the_count() {
        let mut c = controller();
        let hot = sample(95.0, 10.0, 1.0);
        let calm = sample(50.0, 10.0, 1.0);
        c.observe(0, &hot);
        c.observe(1_000, &hot);
        assert_eq!(c.observe(2_000, &calm), None);
        assert_eq!(c.observe(3_000, &hot), None);
        assert_eq!(c.observe(4_000, &hot), None);
        assert!(c.observe(5_000, &hot).is_some());
    }

    #[test]
    fn latency_steps_down_and_low_cpu_with_memory_pressure_steps_up() {
        let mut c = controller();
        let slow = sample(10.0, 10.0, 500.0);
        for t in 0..3 {
            c.observe(t * 1_000, &slow);
        }
        assert_eq!(c.current(), StoredCompression::Zstd { level: 1 });
        let tight = sample(10.0, 95.0, 1.0);
        let mut last = None;
        for t in 3..40 {
            if let Some(d) = c.observe(t * 1_000, &tight) {
                assert!(d.reason.contains("memory above 80%"), "{}", d.reason);
                last = Some(d.to);
            }
        }
        assert_eq!(last, Some(StoredCompression::Zstd { level: 9 }));
        assert_eq!(c.current(), StoredCompression::Zstd { level: 9 });
    }

    #[test]
    fn relaxes_back_to_the_baseline_but_not_beyond() {
        let mut c = controller();
        for t in 0..3 {
            c.observe(t * 1_000, &sample(99.0, 0.0, 0.0));
        }
        assert_eq!(c.current(), StoredCompression::Zstd { level: 1 });
        let idle = sample(5.0, 10.0, 0.5);
        for t in 3..60 {
            c.observe(t * 1_000, &idle);
        }
        assert_eq!(c.current(), StoredCompression::Zstd { level: 3 });
        // Between the thresholds nothing moves.
        let mid = sample(50.0, 99.0, 1.0);
        for t in 60..90 {
            assert_eq!(c.observe(t * 1_000, &mid), None);
        }
    }

    #[test]
    fn baseline_off_the_ladder_is_kept() {
        let c = Controller::new(
            AdaptiveConfig::default(),
            StoredCompression::Zstd { level: 19 },
        );
        assert_eq!(c.current(), StoredCompression::Zstd { level: 19 });
        let c = Controller::new(AdaptiveConfig::default(), StoredCompression::Snappy);
        assert_eq!(c.current(), StoredCompression::Snappy);
        let c = Controller::new(
            AdaptiveConfig::default(),
            StoredCompression::Zstd { level: 4 },
        );
        assert_eq!(c.current(), StoredCompression::Zstd { level: 4 });
    }
}
