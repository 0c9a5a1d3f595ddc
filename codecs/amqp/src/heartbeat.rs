//! Heartbeat timers (spec 4.2.7): send a heartbeat when nothing was sent for half the
//! negotiated interval; declare the peer dead when nothing arrived for two intervals.

/// Heartbeat state of one connection. Inactive while the interval is 0.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    interval_ms: u64,
    last_recv_ms: u64,
    next_send_ms: u64,
    sent_since_tick: bool,
}

/// What [`Heartbeat::on_timeout`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Nothing to do.
    Idle,
    /// Send a heartbeat frame.
    Send,
    /// Nothing arrived for two intervals.
    PeerDead,
}

impl Heartbeat {
    /// Starts heartbeats every `interval_s` seconds (0 turns them off).
    pub fn start(&mut self, interval_s: u16, now_ms: u64) {
        self.interval_ms = u64::from(interval_s) * 1000;
        self.last_recv_ms = now_ms;
        self.next_send_ms = now_ms + self.interval_ms / 2;
        self.sent_since_tick = false;
    }

    /// Stops heartbeats.
    pub fn stop(&mut self) {
        self.interval_ms = 0;
    }

    /// Records that bytes arrived.
    pub fn on_recv(&mut self, now_ms: u64) {
        self.last_recv_ms = self.last_recv_ms.max(now_ms);
    }

    /// Records that a frame was written.
    pub fn on_send(&mut self) {
        self.sent_since_tick = true;
    }

    /// The next instant [`Heartbeat::on_timeout`] has something to do.
    pub fn deadline(&self) -> Option<u64> {
        (self.interval_ms > 0).then(|| self.next_send_ms.min(self.dead_at()))
    }

    fn dead_at(&self) -> u64 {
        self.last_recv_ms + 2 * self.interval_ms
    }

    /// Advances time.
    pub fn on_timeout(&mut self, now_ms: u64) -> Tick {
        if self.interval_ms == 0 {
            return Tick::Idle;
        }
        if now_ms >= self.dead_at() {
            self.stop();
            return Tick::PeerDead;
        }
        if now_ms < self.next_send_ms {
            return Tick::Idle;
        }
        self.next_send_ms = now_ms + self.interval_ms / 2;
        let sent = std::mem::take(&mut self.sent_since_tick);
        if sent { Tick::Idle } else { Tick::Send }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_when_idle_and_declares_death_after_two_intervals() {
        let mut h = Heartbeat::default();
        assert_eq!(h.deadline(), None);
        h.start(10, 1000);
        assert_eq!(h.deadline(), Some(6000));
        assert_eq!(h.on_timeout(5999), Tick::Idle);
        assert_eq!(h.on_timeout(6000), Tick::Send);
        h.on_send();
        assert_eq!(h.on_timeout(11_000), Tick::Idle);
        h.on_recv(12_000);
        assert_eq!(h.on_timeout(16_000), Tick::Send);
        assert_eq!(h.on_timeout(32_000), Tick::PeerDead);
        assert_eq!(h.deadline(), None);
    }
}
