//! A queue consumer: deliveries pushed by the broker within a credit window.

use std::time::{Duration, Instant};

use portask_protocol::body::{Cancel, Credit};

use crate::{Client, ClientError, Delivery, Request, Response, Result};

/// A consumer started by [`Client::consume`]. It borrows the client: deliveries are read
/// from the client's socket. Dropping it cancels it on the broker (without waiting).
#[derive(Debug)]
pub struct Consumer<'a> {
    client: &'a mut Client,
    correlation_id: u64,
    tag: String,
    cancelled: bool,
}

impl<'a> Consumer<'a> {
    pub(crate) fn new(client: &'a mut Client, correlation_id: u64, tag: String) -> Self {
        Self {
            client,
            correlation_id,
            tag,
            cancelled: false,
        }
    }

    /// The consumer tag the broker gave.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The client, for other requests while consuming.
    pub fn client(&mut self) -> &mut Client {
        self.client
    }

    /// The next delivery, waiting up to `timeout` (`None`: forever). `Ok(None)` when none
    /// came in time. An error the broker sent about this consumer (its queue was deleted,
    /// ...) is returned once.
    pub fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Delivery>> {
        let deadline = timeout.map(|t| Instant::now() + t);
        self.client.flush()?;
        loop {
            if let Some(d) = self.client.pop_delivery(self.correlation_id) {
                return Ok(Some(d));
            }
            if let Some(e) = self.client.take_async_error_for(self.correlation_id) {
                return Err(e);
            }
            match self.client.read_some(deadline) {
                Ok(()) => {}
                Err(ClientError::Timeout) => {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(self.client.pop_delivery(self.correlation_id));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Acknowledges a delivery (with `multiple`, every earlier one of the connection too).
    pub fn ack(&mut self, delivery_tag: u64, multiple: bool) -> Result<()> {
        self.client.ack(vec![delivery_tag], multiple)
    }

    /// Rejects a delivery: requeued, or dead-lettered or dropped.
    pub fn nack(&mut self, delivery_tag: u64, requeue: bool) -> Result<()> {
        self.client.nack(vec![delivery_tag], requeue)
    }

    /// Allows `credit` more unacknowledged deliveries (no reply asked).
    pub fn credit(&mut self, credit: u32) -> Result<()> {
        let request = Request::Credit(Credit {
            consumer_tag: self.tag.clone(),
            credit,
        });
        self.client.send_no_reply(&request).map(drop)
    }

    /// Stops the consumer and waits for the broker to confirm; unacknowledged deliveries
    /// go back to the queue, deliveries received but not taken are dropped.
    pub fn cancel(mut self) -> Result<()> {
        self.cancelled = true;
        let request = Request::Cancel(Cancel {
            consumer_tag: self.tag.clone(),
        });
        let r = self.client.call(&request);
        self.client.forget_consumer(self.correlation_id);
        match r? {
            Response::Done(_) => Ok(()),
            other => Err(ClientError::Protocol(format!(
                "expected Done but the broker answered opcode {:#04x}",
                other.opcode()
            ))),
        }
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        if !self.cancelled {
            let request = Request::Cancel(Cancel {
                consumer_tag: self.tag.clone(),
            });
            let _ = self.client.send_no_reply(&request);
            self.client.forget_consumer(self.correlation_id);
        }
    }
}
