//! One blocking connection to the Redis server, reopened with back-off after a failure.
//!
//! Every storage call goes through [`RedisConn::run`]. While the server is unreachable a call
//! fails at once with [`StorageError::Io`] (without touching the network) until the back-off
//! delay has passed; the next call after it tries to connect once, bounded by the connect
//! timeout. Replies are bounded by the IO timeout, so a stalled server costs a caller at most
//! that long.

use std::io;
use std::time::{Duration, Instant};

use portask_engine::storage::StorageError;
use redis::{Client, Connection, ErrorKind, RedisError, RedisResult};

/// First delay before reconnecting after a failed connect.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay between two connect attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// Timeouts of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Bound on establishing a connection (TCP connect and the `SELECT`/`AUTH` handshake).
    pub connect: Duration,
    /// Bound on writing a request and on waiting for its reply.
    pub io: Duration,
    /// Bound on replies while recovering (which reads whole logs at once).
    pub recover_io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_millis(200),
            io: Duration::from_millis(1000),
            recover_io: Duration::from_secs(60),
        }
    }
}

pub(super) struct RedisConn {
    client: Client,
    /// The URL without its password, for messages.
    shown_url: String,
    timeouts: Timeouts,
    io_timeout: Duration,
    conn: Option<Connection>,
    /// No connect attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// An outage was reported on stderr and its end was not yet.
    reported_down: bool,
}

impl RedisConn {
    pub(super) fn new(url: &str, timeouts: Timeouts) -> Result<Self, StorageError> {
        let client = Client::open(url).map_err(|e| {
            StorageError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid redis url: {e}"),
            ))
        })?;
        Ok(Self {
            client,
            shown_url: hide_password(url),
            timeouts,
            io_timeout: timeouts.io,
            conn: None,
            retry_at: None,
            backoff: BACKOFF_MIN,
            reported_down: false,
        })
    }

    /// Uses `timeout` for replies from now on (and on later connections).
    pub(super) fn set_io_timeout(&mut self, timeout: Duration) {
        self.io_timeout = timeout;
        if let Some(c) = &self.conn {
            let _ = c.set_read_timeout(Some(timeout));
            let _ = c.set_write_timeout(Some(timeout));
        }
    }

    pub(super) fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Whether a connection is open (it may still turn out broken on the next call).
    #[cfg(test)]
    pub(super) fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn unreachable(&self, why: String) -> StorageError {
        StorageError::Io(io::Error::new(
            io::ErrorKind::NotConnected,
            format!("redis at {} unreachable: {why}", self.shown_url),
        ))
    }

    fn connect(&mut self) -> Result<&mut Connection, StorageError> {
        if self.conn.is_none() {
            let now = Instant::now();
            if let Some(at) = self.retry_at.filter(|at| now < *at) {
                let left = at - now;
                return Err(
                    self.unreachable(format!("next connect attempt in {} ms", left.as_millis()))
                );
            }
            match self.open() {
                Ok(c) => {
                    if self.reported_down {
                        eprintln!("portask: redis at {} reachable again", self.shown_url);
                        self.reported_down = false;
                    }
                    self.conn = Some(c);
                    self.retry_at = None;
                    self.backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.retry_at = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                    if !self.reported_down {
                        eprintln!(
                            "portask: redis at {} unreachable ({e}); storage calls fail until it is back",
                            self.shown_url
                        );
                        self.reported_down = true;
                    }
                    return Err(self.unreachable(e.to_string()));
                }
            }
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn open(&self) -> RedisResult<Connection> {
        let c = self
            .client
            .get_connection_with_timeout(self.timeouts.connect)?;
        c.set_read_timeout(Some(self.io_timeout))?;
        c.set_write_timeout(Some(self.io_timeout))?;
        Ok(c)
    }

    /// Runs `f` on the connection (opening it first if needed) and maps its failure: a
    /// broken or timed-out connection is dropped, to be reopened by a later call.
    pub(super) fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Connection) -> RedisResult<T>,
    ) -> Result<T, StorageError> {
        let conn = self.connect()?;
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.failed(e)),
        }
    }

    fn failed(&mut self, e: RedisError) -> StorageError {
        if e.is_io_error() || e.is_unrecoverable_error() {
            // The reply stream may be out of step with the requests: start over. The first
            // call after this reconnects at once; back-off applies to failed connects.
            self.conn = None;
            if !self.reported_down {
                eprintln!(
                    "portask: redis at {} connection lost ({e}); reconnecting",
                    self.shown_url
                );
                self.reported_down = true;
            }
            return self.unreachable(e.to_string());
        }
        match e.kind() {
            ErrorKind::TypeError | ErrorKind::ParseError => {
                StorageError::Corrupt(format!("unexpected reply from redis: {e}"))
            }
            // Server-side refusals (LOADING, OOM, READONLY, MISCONF, EXECABORT, ...) are
            // passing conditions for the client: a retriable IO error.
            _ => StorageError::Io(io::Error::other(format!("redis refused: {e}"))),
        }
    }
}

/// `redis://user:secret@host/0` → `redis://user:***@host/0`.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((auth, host)) => match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => format!("{scheme}://***@{host}"),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::hide_password;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            hide_password("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            hide_password("redis://u:pw@127.0.0.1:6379/0"),
            "redis://u:***@127.0.0.1:6379/0"
        );
        assert_eq!(hide_password("redis://pw@h/1"), "redis://***@h/1");
    }
}
