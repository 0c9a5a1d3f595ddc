//! A blocking client for Portask's own protocol (`docs/protocol.md`).
//!
//! One [`Client`] owns one `std::net::TcpStream` and drives the codec's
//! [`portask_protocol::ClientConn`]: typed methods send one request and wait for its
//! answer; [`Client::send`] and [`Client::wait`] keep several requests in flight; the
//! `*_nowait` methods publish without asking for an answer (errors still arrive, see
//! [`Client::take_async_errors`]). Queue consumers are [`Consumer`]s borrowed from the client.
//!
//! ```no_run
//! use portask_client::{Client, ClientOptions, Message};
//!
//! let mut client = Client::connect("127.0.0.1:7070", ClientOptions::default())?;
//! client.create_topic("demo", 3, Vec::new())?;
//! let msg = Message { key: Some("k1".into()), payload: "hello".into(), ..Message::default() };
//! let placed = client.publish_topic("demo", None, vec![msg], false)?;
//! let (partition, offset) = placed[0];
//! let fetched = client.fetch("demo", partition, offset, 10, 1 << 20, 0)?;
//! assert_eq!(&fetched.messages[0].message.payload[..], b"hello");
//! # Ok::<(), portask_client::ClientError>(())
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod consumer;
mod error;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use portask_protocol::body::{
    Ack, Bind, BindingInfo, Commit, CreateTopic, DeclareExchange, DeclareQueue, DeleteExchange,
    DeleteGroup, DeleteQueue, DeleteTopic, DescribeGroups, Fetch, Heartbeat, Leave, ListBindings,
    ListExchanges, ListGroups, ListQueues, ListTopics, Nack, Ping, Publish, Stats, Subscribe,
};
use portask_protocol::{
    ClientConfig, ClientConn, ClientEvent, Compression, ConnError, EncodeError,
};

pub use consumer::Consumer;
pub use error::{ClientError, code_name};
pub use portask_protocol::body::{
    Delivery, ExchangeInfo, FetchOk, GroupInfo, MemberInfo, Message, PartitionOffset,
    PublishResult, QueueDeclared, QueueInfo, StoredMessage, SubscribeOk, Target, TopicInfo, Value,
};
pub use portask_protocol::{Negotiated, Request, Response, code};

/// Result of a client call.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Output is written to the socket once this much is buffered, and before every wait.
const FLUSH_BYTES: usize = 64 * 1024;
/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;
/// Errors answering no-reply requests that are kept until taken; older ones are dropped.
const ASYNC_ERRORS_MAX: usize = 10_000;

/// How to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The user, if the broker wants one.
    pub user: Option<String>,
    /// The password.
    pub password: Option<String>,
    /// Compression algorithms accepted, preferred first: `"zstd"`, `"lz4"`, `"snappy"`.
    /// Empty: no compression.
    pub compression: Vec<String>,
    /// How long to wait for the connection and for each answer; `None` waits forever.
    pub timeout: Option<Duration>,
    /// Client software name sent in the handshake (shown in group member lists).
    pub client_name: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            user: None,
            password: None,
            compression: vec!["lz4".into(), "zstd".into(), "snappy".into()],
            timeout: Some(Duration::from_secs(30)),
            client_name: concat!("portask-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// A request in flight, from [`Client::send`]; redeem it with [`Client::wait`].
#[derive(Debug)]
#[must_use = "a pending request's answer is only read by Client::wait"]
pub struct Pending {
    correlation_id: u64,
    sent_at: Instant,
}

impl Pending {
    /// The request's correlation id.
    pub fn correlation_id(&self) -> u64 {
        self.correlation_id
    }

    /// When the request was handed to [`Client::send`].
    pub fn sent_at(&self) -> Instant {
        self.sent_at
    }
}

/// Takes the body out of a response of the expected kind.
macro_rules! expect {
    ($response:expr, $variant:ident) => {
        match $response {
            Response::$variant(body) => Ok(body),
            other => Err(ClientError::Protocol(format!(
                "expected {} but the broker answered opcode {:#04x}",
                stringify!($variant),
                other.opcode()
            ))),
        }
    };
}

/// A connection to a Portask broker. Blocking; not shared between threads.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    conn: ClientConn,
    rbuf: BytesMut,
    wbuf: BytesMut,
    timeout: Option<Duration>,
    server: String,
    /// Requests waiting for an answer; the parts received so far of a multi-part answer.
    pending: HashMap<u64, Option<Response>>,
    /// Answers not yet collected by `wait`.
    done: HashMap<u64, Result<Response>>,
    /// Correlation ids of this connection's `Consume`s.
    consumers: HashSet<u64>,
    /// Deliveries not yet taken, by the `Consume`'s correlation id.
    deliveries: HashMap<u64, VecDeque<Delivery>>,
    /// Errors answering no-reply requests and consumers, with their correlation ids.
    async_errors: VecDeque<(u64, ClientError)>,
    /// Set when the connection is unusable.
    fatal: Option<ClientError>,
}

impl Client {
    /// Connects to `addr` (`host:port`) and performs the handshake.
    pub fn connect(addr: &str, options: ClientOptions) -> Result<Self> {
        let compression = options
            .compression
            .iter()
            .map(|name| {
                Compression::from_name(name).ok_or_else(|| {
                    ClientError::InvalidArgument(format!(
                        "unknown compression {name:?} (known: zstd, lz4, snappy)"
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let connect_err = |source| ClientError::Connect {
            addr: addr.to_owned(),
            source,
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the name resolves to no address");
        let mut stream = None;
        for sa in addr.to_socket_addrs().map_err(connect_err)? {
            let attempt = match options.timeout {
                Some(t) => TcpStream::connect_timeout(&sa, t),
                None => TcpStream::connect(sa),
            };
            match attempt {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| connect_err(last))?;
        stream.set_nodelay(true)?;
        stream.set_write_timeout(options.timeout)?;
        let cfg = ClientConfig {
            client: options.client_name.clone(),
            user: options.user.clone(),
            password: options.password.clone(),
            compression,
            ..ClientConfig::default()
        };
        let mut client = Self {
            stream,
            conn: ClientConn::new(cfg),
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::new(),
            timeout: options.timeout,
            server: String::new(),
            pending: HashMap::new(),
            done: HashMap::new(),
            consumers: HashSet::new(),
            deliveries: HashMap::new(),
            async_errors: VecDeque::new(),
            fatal: None,
        };
        client.conn.start(&mut client.wbuf);
        client.flush()?;
        let deadline = client.deadline();
        while client.conn.negotiated().is_none() {
            client.read_some(deadline)?;
        }
        Ok(client)
    }

    /// The server software named in the handshake.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// What the handshake settled on (version, compression, largest frame).
    pub fn negotiated(&self) -> Negotiated {
        self.conn
            .negotiated()
            .expect("a Client exists only after the handshake")
    }

    /// The timeout for each answer.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Changes the timeout for each answer; `None` waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    // -- requests in flight ----------------------------------------------------------

    /// Sends a request without waiting; its answer is read by [`Client::wait`]. Output is
    /// buffered up to 64 KiB; `wait` and [`Client::flush`] write it out.
    pub fn send(&mut self, request: &Request) -> Result<Pending> {
        self.check_open()?;
        let cid = self
            .conn
            .send_request(request, &mut self.wbuf)
            .map_err(encode_err)?;
        self.pending.insert(cid, None);
        if matches!(request, Request::Consume(_)) {
            self.consumers.insert(cid);
        }
        if self.wbuf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(Pending {
            correlation_id: cid,
            sent_at: Instant::now(),
        })
    }

    /// Sends a request with the *no reply* flag: no answer on success; a failure is kept for
    /// [`Client::take_async_errors`]. Returns the correlation id.
    pub fn send_no_reply(&mut self, request: &Request) -> Result<u64> {
        self.check_open()?;
        let cid = self
            .conn
            .send_no_reply(request, &mut self.wbuf)
            .map_err(encode_err)?;
        if self.wbuf.len() >= FLUSH_BYTES {
            self.flush()?;
        }
        Ok(cid)
    }

    /// Waits for the answer to a request sent with [`Client::send`] (all its parts, merged).
    pub fn wait(&mut self, pending: Pending) -> Result<Response> {
        let cid = pending.correlation_id;
        let deadline = self.deadline();
        self.flush()?;
        loop {
            if let Some(r) = self.done.remove(&cid) {
                return r;
            }
            if !self.pending.contains_key(&cid) {
                return Err(ClientError::Protocol(format!(
                    "no request with correlation id {cid} is waiting"
                )));
            }
            if let Err(e) = self.read_some(deadline) {
                if let Some(r) = self.done.remove(&cid) {
                    return r;
                }
                self.pending.remove(&cid);
                return Err(e);
            }
        }
    }

    /// Whether the answer to `pending` has arrived (reads what the socket has, without
    /// blocking).
    pub fn is_ready(&mut self, pending: &Pending) -> Result<bool> {
        if self.done.contains_key(&pending.correlation_id) {
            return Ok(true);
        }
        self.flush()?;
        match self.read_some(Some(Instant::now())) {
            Ok(()) | Err(ClientError::Timeout) => {}
            Err(e) => return Err(e),
        }
        Ok(self.done.contains_key(&pending.correlation_id))
    }

    /// Sends a request and waits for its answer.
    pub fn call(&mut self, request: &Request) -> Result<Response> {
        let p = self.send(request)?;
        self.wait(p)
    }

    /// Writes buffered requests to the socket.
    pub fn flush(&mut self) -> Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.wbuf);
        self.wbuf.clear();
        if let Err(e) = r {
            let e = ClientError::Io(e);
            self.fatal.get_or_insert(e.duplicate());
            return Err(e);
        }
        Ok(())
    }

    /// Errors that answered no-reply requests (publishes, acks, ...) and consumers the
    /// broker stopped, with their correlation ids, oldest first.
    pub fn take_async_errors(&mut self) -> Vec<(u64, ClientError)> {
        self.async_errors.drain(..).collect()
    }

    // -- publishing and fetching -----------------------------------------------------

    /// Appends messages to a topic (to `partition`, or by key); returns each message's
    /// partition and offset.
    pub fn publish_topic(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        messages: Vec<Message>,
        durable: bool,
    ) -> Result<Vec<(i32, i64)>> {
        let p = self.send_publish(topic_target(topic, partition), messages, durable)?;
        self.wait_publish(p)?
            .into_iter()
            .map(|r| match r {
                PublishResult::Appended { partition, offset } => Ok((partition, offset)),
                PublishResult::Routed(_) => Err(ClientError::Protocol(
                    "a topic publish was answered with a routing result".into(),
                )),
            })
            .collect()
    }

    /// Appends messages to a topic without waiting for (or asking for) an answer.
    pub fn publish_topic_nowait(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        messages: Vec<Message>,
        durable: bool,
    ) -> Result<u64> {
        self.send_no_reply(&publish(topic_target(topic, partition), messages, durable))
    }

    /// Publishes messages to an exchange, routed like AMQP `basic.publish`; returns for
    /// each message whether some queue or topic received it.
    pub fn publish_exchange(
        &mut self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        messages: Vec<Message>,
        durable: bool,
    ) -> Result<Vec<bool>> {
        let target = exchange_target(vhost, exchange, routing_key, mandatory);
        let p = self.send_publish(target, messages, durable)?;
        Ok(self
            .wait_publish(p)?
            .into_iter()
            .map(|r| match r {
                PublishResult::Routed(routed) => routed,
                PublishResult::Appended { .. } => true,
            })
            .collect())
    }

    /// Publishes messages to an exchange without waiting for (or asking for) an answer.
    pub fn publish_exchange_nowait(
        &mut self,
        vhost: &str,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        messages: Vec<Message>,
        durable: bool,
    ) -> Result<u64> {
        let target = exchange_target(vhost, exchange, routing_key, mandatory);
        self.send_no_reply(&publish(target, messages, durable))
    }

    /// Sends a `Publish` and returns at once; several may be in flight. Collect the answer
    /// with [`Client::wait_publish`].
    pub fn send_publish(
        &mut self,
        target: Target,
        messages: Vec<Message>,
        durable: bool,
    ) -> Result<Pending> {
        self.send(&publish(target, messages, durable))
    }

    /// Waits for the answer to [`Client::send_publish`]: one result per message.
    pub fn wait_publish(&mut self, pending: Pending) -> Result<Vec<PublishResult>> {
        let ok = expect!(self.wait(pending)?, PublishOk)?;
        Ok(ok.results)
    }

    /// Reads a topic partition from `offset`: at most `max_messages`, about `max_bytes` of
    /// payload (at least one message), waiting up to `max_wait_ms` for a first one.
    pub fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_messages: u32,
        max_bytes: u32,
        max_wait_ms: u32,
    ) -> Result<FetchOk> {
        let request = Request::Fetch(Fetch {
            topic: topic.to_owned(),
            partition,
            offset,
            max_messages,
            max_bytes,
            max_wait_ms,
        });
        // The broker may hold the answer for max_wait_ms: wait that much longer.
        let saved = self.timeout;
        self.timeout = saved.map(|t| t + Duration::from_millis(u64::from(max_wait_ms)));
        let r = self.call(&request);
        self.timeout = saved;
        expect!(r?, FetchOk)
    }

    // -- consumer groups -------------------------------------------------------------

    /// Joins (or rejoins, with `member_id`) a consumer group; returns this member's
    /// partitions and the committed offsets to start at.
    pub fn subscribe(
        &mut self,
        group: &str,
        topics: &[String],
        member_id: Option<&str>,
    ) -> Result<SubscribeOk> {
        let request = Request::Subscribe(Subscribe {
            group: group.to_owned(),
            topics: topics.to_vec(),
            member_id: member_id.map(str::to_owned),
        });
        expect!(self.call(&request)?, SubscribeOk)
    }

    /// Tells the group this member is alive. `REBALANCE_IN_PROGRESS` asks it to subscribe
    /// again.
    pub fn heartbeat(&mut self, group: &str, member_id: &str, generation: i32) -> Result<()> {
        self.done_call(Request::Heartbeat(Heartbeat {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            generation,
        }))
    }

    /// Leaves a consumer group.
    pub fn leave(&mut self, group: &str, member_id: &str) -> Result<()> {
        self.done_call(Request::Leave(Leave {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
        }))
    }

    /// Commits a group's offsets (the next offset to consume in each partition).
    /// `member` is the committing member's id and generation (from `SubscribeOk`), or `None`
    /// for a commit from outside the group.
    pub fn commit(
        &mut self,
        group: &str,
        offsets: Vec<PartitionOffset>,
        member: Option<(&str, i32)>,
    ) -> Result<()> {
        self.done_call(Request::Commit(Commit {
            group: group.to_owned(),
            offsets,
            member_id: member.map(|(m, _)| m.to_owned()),
            generation: member.map(|(_, g)| g),
        }))
    }

    /// Describes groups, with their members.
    pub fn describe_groups(&mut self, groups: &[String]) -> Result<Vec<GroupInfo>> {
        let request = Request::DescribeGroups(DescribeGroups {
            groups: groups.to_vec(),
        });
        Ok(expect!(self.call(&request)?, Groups)?.groups)
    }

    /// Lists every group (without members).
    pub fn list_groups(&mut self) -> Result<Vec<GroupInfo>> {
        let request = Request::ListGroups(ListGroups {});
        Ok(expect!(self.call(&request)?, Groups)?.groups)
    }

    /// Deletes an empty group and its offsets.
    pub fn delete_group(&mut self, group: &str) -> Result<()> {
        self.done_call(Request::DeleteGroup(DeleteGroup {
            group: group.to_owned(),
        }))
    }

    // -- queues ----------------------------------------------------------------------

    /// Starts a consumer on a queue, with `credit` unacknowledged deliveries allowed.
    pub fn consume(
        &mut self,
        vhost: &str,
        queue: &str,
        credit: u32,
        no_ack: bool,
    ) -> Result<Consumer<'_>> {
        let request = Request::Consume(portask_protocol::body::Consume {
            vhost: vhost.to_owned(),
            queue: queue.to_owned(),
            credit,
            no_ack,
        });
        let p = self.send(&request)?;
        let cid = p.correlation_id;
        match self.wait(p).and_then(|r| expect!(r, ConsumeOk)) {
            Ok(ok) => Ok(Consumer::new(self, cid, ok.consumer_tag)),
            Err(e) => {
                self.forget_consumer(cid);
                Err(e)
            }
        }
    }

    /// Acknowledges deliveries (no reply asked; failures go to
    /// [`Client::take_async_errors`]).
    pub fn ack(&mut self, delivery_tags: Vec<u64>, multiple: bool) -> Result<()> {
        self.send_no_reply(&Request::Ack(Ack {
            delivery_tags,
            multiple,
        }))
        .map(drop)
    }

    /// Rejects deliveries, requeued or dead-lettered (no reply asked).
    pub fn nack(&mut self, delivery_tags: Vec<u64>, requeue: bool) -> Result<()> {
        self.send_no_reply(&Request::Nack(Nack {
            delivery_tags,
            requeue,
        }))
        .map(drop)
    }

    // -- administration --------------------------------------------------------------

    /// Creates a topic; `configs` use Kafka's names (`retention.ms`, ...).
    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: Vec<(String, String)>,
    ) -> Result<()> {
        self.done_call(Request::CreateTopic(CreateTopic {
            name: name.to_owned(),
            partitions,
            configs,
        }))
    }

    /// Deletes a topic.
    pub fn delete_topic(&mut self, name: &str) -> Result<()> {
        self.done_call(Request::DeleteTopic(DeleteTopic {
            name: name.to_owned(),
        }))
    }

    /// Lists topics with their partitions and high watermarks.
    pub fn list_topics(&mut self) -> Result<Vec<TopicInfo>> {
        let request = Request::ListTopics(ListTopics {});
        Ok(expect!(self.call(&request)?, Topics)?.topics)
    }

    /// Declares a queue (`name` empty: the broker names it), like `queue.declare`.
    pub fn declare_queue(
        &mut self,
        vhost: &str,
        name: &str,
        durable: bool,
        auto_delete: bool,
        arguments: Vec<(String, Value)>,
    ) -> Result<QueueDeclared> {
        let request = Request::DeclareQueue(DeclareQueue {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            durable,
            auto_delete,
            arguments,
        });
        expect!(self.call(&request)?, QueueDeclared)
    }

    /// Deletes a queue, optionally only if it has no consumers or no messages.
    pub fn delete_queue(
        &mut self,
        vhost: &str,
        name: &str,
        if_unused: bool,
        if_empty: bool,
    ) -> Result<()> {
        self.done_call(Request::DeleteQueue(DeleteQueue {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            if_unused,
            if_empty,
        }))
    }

    /// Lists the queues of a vhost, or of all vhosts.
    pub fn list_queues(&mut self, vhost: Option<&str>) -> Result<Vec<QueueInfo>> {
        let request = Request::ListQueues(ListQueues {
            vhost: vhost.map(str::to_owned),
        });
        Ok(expect!(self.call(&request)?, Queues)?.queues)
    }

    /// Declares an exchange of `kind` `"direct"`, `"fanout"`, `"topic"` or `"headers"`.
    pub fn declare_exchange(
        &mut self,
        vhost: &str,
        name: &str,
        kind: &str,
        durable: bool,
    ) -> Result<()> {
        self.done_call(Request::DeclareExchange(DeclareExchange {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
            kind: kind.to_owned(),
            durable,
        }))
    }

    /// Deletes an exchange.
    pub fn delete_exchange(&mut self, vhost: &str, name: &str) -> Result<()> {
        self.done_call(Request::DeleteExchange(DeleteExchange {
            vhost: vhost.to_owned(),
            name: name.to_owned(),
        }))
    }

    /// Lists the exchanges of a vhost, or of all vhosts.
    pub fn list_exchanges(&mut self, vhost: Option<&str>) -> Result<Vec<ExchangeInfo>> {
        let request = Request::ListExchanges(ListExchanges {
            vhost: vhost.map(str::to_owned),
        });
        Ok(expect!(self.call(&request)?, Exchanges)?.exchanges)
    }

    /// Lists bindings, of one vhost or of all.
    pub fn list_bindings(&mut self, vhost: Option<&str>) -> Result<Vec<BindingInfo>> {
        let request = Request::ListBindings(ListBindings {
            vhost: vhost.map(str::to_owned),
        });
        Ok(expect!(self.call(&request)?, Bindings)?.bindings)
    }

    /// Binds `destination` (a queue, exchange or topic) to `exchange` with a routing key.
    pub fn bind(
        &mut self,
        vhost: &str,
        destination: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<()> {
        self.done_call(Request::Bind(binding(
            vhost,
            destination,
            exchange,
            routing_key,
        )))
    }

    /// Removes a binding made by [`Client::bind`].
    pub fn unbind(
        &mut self,
        vhost: &str,
        destination: &str,
        exchange: &str,
        routing_key: &str,
    ) -> Result<()> {
        self.done_call(Request::Unbind(binding(
            vhost,
            destination,
            exchange,
            routing_key,
        )))
    }

    /// The broker's counters, by name.
    pub fn stats(&mut self) -> Result<Vec<(String, u64)>> {
        let request = Request::Stats(Stats {});
        Ok(expect!(self.call(&request)?, StatsOk)?.entries)
    }

    /// Round trip to the broker; returns how long it took.
    pub fn ping(&mut self) -> Result<Duration> {
        let start = Instant::now();
        expect!(self.call(&Request::Ping(Ping {}))?, Pong)?;
        Ok(start.elapsed())
    }

    // -- internals -------------------------------------------------------------------

    fn done_call(&mut self, request: Request) -> Result<()> {
        expect!(self.call(&request)?, Done).map(drop)
    }

    fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| Instant::now() + t)
    }

    fn check_open(&self) -> Result<()> {
        match &self.fatal {
            Some(e) => Err(e.duplicate()),
            None => Ok(()),
        }
    }

    pub(crate) fn forget_consumer(&mut self, cid: u64) {
        self.consumers.remove(&cid);
        self.deliveries.remove(&cid);
    }

    pub(crate) fn pop_delivery(&mut self, cid: u64) -> Option<Delivery> {
        self.deliveries.get_mut(&cid)?.pop_front()
    }

    pub(crate) fn take_async_error_for(&mut self, cid: u64) -> Option<ClientError> {
        let i = self.async_errors.iter().position(|(c, _)| *c == cid)?;
        self.async_errors.remove(i).map(|(_, e)| e)
    }

    /// Reads once from the socket (waiting until `deadline`) and handles what arrived.
    /// `Err(Timeout)` when nothing came in time.
    pub(crate) fn read_some(&mut self, deadline: Option<Instant>) -> Result<()> {
        if let Some(e) = &self.fatal {
            return Err(e.duplicate());
        }
        let wait = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    // Poll: a non-blocking look at what is already there.
                    Some(Duration::from_micros(1))
                } else {
                    Some(d - now)
                }
            }
        };
        self.stream.set_read_timeout(wait)?;
        let len = self.rbuf.len();
        self.rbuf.resize(len + READ_CHUNK, 0);
        let r = self.stream.read(&mut self.rbuf[len..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.rbuf.truncate(len + n);
        match r {
            Ok(0) => {
                let e = self.fatal.get_or_insert(ClientError::Closed);
                return Err(e.duplicate());
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ClientError::Timeout);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => {
                let e = io_err(e);
                self.fatal.get_or_insert(e.duplicate());
                return Err(e);
            }
        }
        let r = self.conn.handle_input(&mut self.rbuf);
        self.drain_events();
        if let Err(e) = r {
            let e = match e {
                ConnError::Refused { code, message } => ClientError::broker(code, message),
                ConnError::Closed => self
                    .fatal
                    .as_ref()
                    .map_or(ClientError::Closed, ClientError::duplicate),
                other => ClientError::Protocol(other.to_string()),
            };
            self.fatal.get_or_insert(e.duplicate());
            return Err(e);
        }
        Ok(())
    }

    fn drain_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                ClientEvent::Connected { server, .. } => self.server = server,
                ClientEvent::Response {
                    correlation_id,
                    more,
                    response,
                } => {
                    let Some(slot) = self.pending.get_mut(&correlation_id) else {
                        continue; // a request given up on (timed out)
                    };
                    match slot {
                        Some(acc) => merge(acc, response),
                        None => *slot = Some(response),
                    }
                    if !more && let Some(Some(r)) = self.pending.remove(&correlation_id) {
                        self.done.insert(correlation_id, Ok(r));
                    }
                }
                ClientEvent::Error {
                    correlation_id: 0,
                    code,
                    message,
                } => {
                    self.fatal.get_or_insert(ClientError::broker(code, message));
                }
                ClientEvent::Error {
                    correlation_id,
                    code,
                    message,
                } => {
                    let e = ClientError::broker(code, message);
                    if self.pending.remove(&correlation_id).is_some() {
                        self.done.insert(correlation_id, Err(e));
                    } else {
                        if self.async_errors.len() >= ASYNC_ERRORS_MAX {
                            self.async_errors.pop_front();
                        }
                        self.async_errors.push_back((correlation_id, e));
                    }
                }
                ClientEvent::Delivery {
                    correlation_id,
                    delivery,
                } if self.consumers.contains(&correlation_id) => {
                    self.deliveries
                        .entry(correlation_id)
                        .or_default()
                        .push_back(delivery);
                }
                _ => {}
            }
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Requests sent without waiting (nowait publishes, acks) still go out.
        if self.fatal.is_none() {
            let _ = self.stream.write_all(&self.wbuf);
        }
    }
}

/// Adds a later part of a multi-part response to the parts before it.
fn merge(acc: &mut Response, part: Response) {
    match (acc, part) {
        (Response::FetchOk(a), Response::FetchOk(b)) => {
            a.messages.extend(b.messages);
            a.high_watermark = a.high_watermark.max(b.high_watermark);
        }
        (Response::PublishOk(a), Response::PublishOk(b)) => a.results.extend(b.results),
        (Response::Topics(a), Response::Topics(b)) => a.topics.extend(b.topics),
        (Response::Queues(a), Response::Queues(b)) => a.queues.extend(b.queues),
        (Response::Exchanges(a), Response::Exchanges(b)) => a.exchanges.extend(b.exchanges),
        (Response::Groups(a), Response::Groups(b)) => a.groups.extend(b.groups),
        (Response::StatsOk(a), Response::StatsOk(b)) => a.entries.extend(b.entries),
        (acc, part) => *acc = part,
    }
}

fn publish(target: Target, messages: Vec<Message>, durable: bool) -> Request {
    Request::Publish(Publish {
        target,
        messages,
        durable,
    })
}

/// The target for a topic publish.
pub fn topic_target(topic: &str, partition: Option<i32>) -> Target {
    Target::Topic {
        topic: topic.to_owned(),
        partition,
    }
}

/// The target for an exchange publish.
pub fn exchange_target(vhost: &str, exchange: &str, routing_key: &str, mandatory: bool) -> Target {
    Target::Exchange {
        vhost: vhost.to_owned(),
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
        mandatory,
    }
}

fn binding(vhost: &str, destination: &str, exchange: &str, routing_key: &str) -> Bind {
    Bind {
        vhost: vhost.to_owned(),
        queue_or_exchange: destination.to_owned(),
        exchange: exchange.to_owned(),
        routing_key: routing_key.to_owned(),
    }
}

fn encode_err(e: EncodeError) -> ClientError {
    match e {
        EncodeError::NotOpen => ClientError::Closed,
        other => ClientError::InvalidArgument(other.to_string()),
    }
}

fn io_err(e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::Timeout,
        _ => ClientError::Io(e),
    }
}
