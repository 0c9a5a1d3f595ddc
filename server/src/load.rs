//! Load measurements for the adaptive compression controller: process CPU, resident memory
//! and the time the loop spends handling requests, sampled once a second from `/proc`.

use std::time::{Duration, Instant};

use portask_engine::LoadSample;

/// How often a sample is taken.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// Kernel clock ticks per second for `/proc/self/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// Measures process load between samples.
#[derive(Debug)]
pub struct LoadSampler {
    last_at: Instant,
    last_cpu_ticks: Option<u64>,
    memory_limit_bytes: u64,
    /// The longest loop turn that handled requests since the last sample.
    busiest_turn: Duration,
}

impl LoadSampler {
    /// A sampler comparing RSS with `memory_limit_bytes`, or with the machine's memory
    /// when it is 0.
    pub fn new(memory_limit_bytes: u64) -> Self {
        let limit = match memory_limit_bytes {
            0 => machine_memory_bytes().unwrap_or(u64::MAX),
            n => n,
        };
        Self {
            last_at: Instant::now(),
            last_cpu_ticks: cpu_ticks(),
            memory_limit_bytes: limit,
            busiest_turn: Duration::ZERO,
        }
    }

    /// Records how long a loop turn spent on requests; the longest one in an interval is the
    /// interval's append latency.
    pub fn record_turn(&mut self, spent: Duration) {
        self.busiest_turn = self.busiest_turn.max(spent);
    }

    /// When the next sample is due.
    pub fn next_at(&self) -> Instant {
        self.last_at + INTERVAL
    }

    /// A sample if the interval has passed.
    pub fn sample(&mut self, now: Instant) -> Option<LoadSample> {
        let elapsed = now.checked_duration_since(self.last_at)?;
        if elapsed < INTERVAL {
            return None;
        }
        let ticks = cpu_ticks();
        let cpu_percent = match (ticks, self.last_cpu_ticks) {
            (Some(t), Some(l)) => {
                (t.saturating_sub(l) as f64 / TICKS_PER_SECOND) / elapsed.as_secs_f64() * 100.0
            }
            _ => 0.0,
        };
        let memory_percent =
            rss_bytes().map_or(0.0, |r| r as f64 * 100.0 / self.memory_limit_bytes as f64);
        let sample = LoadSample {
            cpu_percent,
            memory_percent,
            append_latency_ms: self.busiest_turn.as_secs_f64() * 1000.0,
        };
        self.last_at = now;
        self.last_cpu_ticks = ticks;
        self.busiest_turn = Duration::ZERO;
        Some(sample)
    }
}

/// utime + stime of this process, in clock ticks (fields 14 and 15 of `/proc/self/stat`,
/// counted after the parenthesised command name, which may hold spaces).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &stat[stat.rfind(')')? + 2..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    kib_field(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmRSS:",
    )
}

/// Total memory from `/proc/meminfo`.
fn machine_memory_bytes() -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")
}

fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    let kib: u64 = line[name.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        assert!(cpu_ticks().is_some());
        assert!(rss_bytes().unwrap() > 0);
        assert!(machine_memory_bytes().unwrap() > rss_bytes().unwrap());
        let mut s = LoadSampler::new(0);
        s.record_turn(Duration::from_millis(7));
        assert!(s.sample(Instant::now()).is_none());
        let later = Instant::now() + INTERVAL;
        let sample = s.sample(later).unwrap();
        assert_eq!(sample.append_latency_ms, 7.0);
        assert!(sample.memory_percent > 0.0 && sample.memory_percent < 100.0);
    }

    #[test]
    fn parses_kib_fields() {
        assert_eq!(
            kib_field("VmRSS:\t  1234 kB\n", "VmRSS:"),
            Some(1234 * 1024)
        );
        assert_eq!(kib_field("Other: 1 kB\n", "VmRSS:"), None);
    }
}
