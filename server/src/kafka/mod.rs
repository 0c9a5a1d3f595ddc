//! The Kafka protocol adapter: turns decoded requests into engine calls and engine results
//! into responses.
//!
//! Requests of one connection are answered in order, one at a time, as Kafka brokers do:
//! while a request is parked (a Fetch long-poll, a JoinGroup or SyncGroup waiting for the
//! rest of the group), later requests stay unread in the connection's buffer.

mod admin_apis;
mod cluster;
mod convert;
mod errors;
mod fetch;
mod groups;
mod offsets;
mod produce;

use bytes::Bytes;
use portask_kafka::api::{self, Request, RequestBody, RequestError, ResponseBody};
use portask_kafka::frame::FrameDecoder;
use portask_kafka::limits::Limits;
use portask_kafka::records::DecodeLimits;

use crate::broker::Broker;
use crate::config::Config;
use crate::conn::{Conn, WRITE_HIGH_WATER_BYTES};
use crate::worker::Now;

/// Kafka settings shared by all connections.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Host given to clients in Metadata and FindCoordinator.
    pub advertised_host: String,
    /// Port given to clients.
    pub advertised_port: i32,
    /// Frame limits.
    pub limits: Limits,
    /// Limits on produced record batches.
    pub records: DecodeLimits,
}

impl KafkaSettings {
    /// Settings from the `[kafka]` section.
    pub fn from_config(config: &Config) -> Self {
        let (advertised_host, advertised_port) = config.kafka_advertised();
        Self {
            advertised_host,
            advertised_port,
            limits: Limits {
                frame_bytes_max: config.kafka.max_frame_bytes,
            },
            records: DecodeLimits {
                decompressed_bytes_max: config.kafka.max_decompressed_batch_bytes,
                ..DecodeLimits::default()
            },
        }
    }
}

/// The node id of this broker: it is the only one and leads every partition.
pub(crate) const NODE_ID: i32 = 0;

/// Per-connection Kafka state.
#[derive(Debug, Default)]
pub struct Session {
    frames: FrameDecoder,
    parked: Option<Parked>,
}

/// A request waiting for something before it can be answered.
#[derive(Debug)]
enum Parked {
    /// A Fetch waiting for `min_bytes` or its deadline.
    Fetch {
        header: Header,
        req: Box<portask_kafka::generated::FetchRequest>,
        deadline: u64,
    },
    /// A JoinGroup or SyncGroup waiting for the group.
    Group { header: Header },
    /// A ListOffsets waiting for a timestamp lookup in storage.
    ListOffsets {
        header: Header,
        req: Box<portask_kafka::generated::ListOffsetsRequest>,
    },
}

/// What a response needs from its request header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Header {
    pub(crate) api_key: i16,
    pub(crate) api_version: i16,
    pub(crate) correlation_id: i32,
}

/// What handling a request led to.
pub(crate) enum Handled {
    /// Answer now.
    Reply(ResponseBody),
    /// Answer nothing (Produce with acks = 0).
    NoReply,
    /// A Fetch to answer once data or its deadline arrives.
    ParkFetch(Box<portask_kafka::generated::FetchRequest>, u64),
    /// A group request answered by a later engine output.
    ParkGroup,
    /// A ListOffsets to answer once its storage reads complete.
    ParkListOffsets(Box<portask_kafka::generated::ListOffsetsRequest>),
}

/// The context of one request.
pub(crate) struct Ctx<'a> {
    pub(crate) broker: &'a mut Broker,
    pub(crate) now: Now,
    /// Engine-facing id of the connection.
    pub(crate) conn: u64,
    pub(crate) header: Header,
    pub(crate) client_id: &'a str,
    pub(crate) client_host: String,
}

/// Decodes and answers the requests buffered on `conn`, until one parks, the input runs out,
/// or the output backs up.
pub fn drive(conn: &mut Conn, key: usize, broker: &mut Broker, now: Now) {
    while conn.session.parked.is_none()
        && !conn.close_after_flush
        && conn.wbuf.len() < WRITE_HIGH_WATER_BYTES
    {
        let frame = match conn.session.frames.decode(&mut conn.rbuf) {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                eprintln!("portask: kafka: closing connection from {}: {e}", conn.peer);
                close(conn);
                break;
            }
        };
        broker.requests_total += 1;
        handle_frame(conn, key, broker, now, frame);
    }
}

/// Completes a parked request if it can be. Returns whether the connection needs flushing.
pub fn resume(conn: &mut Conn, key: usize, broker: &mut Broker, now: Now) -> bool {
    let id = conn.id(key);
    let done = match conn.session.parked.take() {
        None => return false,
        Some(Parked::Fetch {
            header,
            req,
            deadline,
        }) => {
            let due = deadline <= now.mono;
            let reply = (broker.wake_parked || due)
                .then(|| fetch::complete(broker, &req, header.api_version, due))
                .flatten();
            match reply {
                Some(body) => {
                    broker.remove_deadline(deadline, id);
                    respond(conn, header, &body);
                    true
                }
                None => {
                    conn.session.parked = Some(Parked::Fetch {
                        header,
                        req,
                        deadline,
                    });
                    false
                }
            }
        }
        Some(Parked::ListOffsets { header, req }) => {
            let reply = broker
                .wake_parked
                .then(|| offsets::try_list_offsets(broker, header.api_version, &req))
                .flatten();
            match reply {
                Some(body) => {
                    respond(conn, header, &body);
                    true
                }
                None => {
                    conn.session.parked = Some(Parked::ListOffsets { header, req });
                    false
                }
            }
        }
        Some(Parked::Group { header }) => {
            match broker.take_output(id).and_then(groups::output_response) {
                Some(body) => {
                    respond(conn, header, &body);
                    true
                }
                None => {
                    conn.session.parked = Some(Parked::Group { header });
                    false
                }
            }
        }
    };
    if done {
        drive(conn, key, broker, now);
    }
    done
}

fn handle_frame(conn: &mut Conn, key: usize, broker: &mut Broker, now: Now, frame: Bytes) {
    let request = match api::decode_request(frame) {
        Ok(r) => r,
        Err(e) => return answer_undecodable(conn, e),
    };
    let Request {
        header: req_header,
        body,
    } = request;
    let header = Header {
        api_key: req_header.request_api_key,
        api_version: req_header.request_api_version,
        correlation_id: req_header.correlation_id,
    };
    let client_id = req_header.client_id.unwrap_or_default();
    let mut ctx = Ctx {
        broker,
        now,
        conn: conn.id(key),
        header,
        client_id: &client_id,
        client_host: format!("/{}", conn.peer.ip()),
    };
    match dispatch(&mut ctx, body) {
        Handled::Reply(body) => respond(conn, header, &body),
        Handled::NoReply => {}
        Handled::ParkFetch(req, deadline) => {
            ctx.broker.add_deadline(deadline, ctx.conn);
            conn.session.parked = Some(Parked::Fetch {
                header,
                req,
                deadline,
            });
        }
        Handled::ParkListOffsets(req) => {
            conn.session.parked = Some(Parked::ListOffsets { header, req });
        }
        Handled::ParkGroup => {
            ctx.broker.collect_outputs();
            match ctx
                .broker
                .take_output(ctx.conn)
                .and_then(groups::output_response)
            {
                Some(body) => respond(conn, header, &body),
                None => conn.session.parked = Some(Parked::Group { header }),
            }
        }
    }
}

fn dispatch(ctx: &mut Ctx<'_>, body: RequestBody) -> Handled {
    let reply = match body {
        RequestBody::ApiVersions(_) => cluster::api_versions(),
        RequestBody::Metadata(r) => cluster::metadata(ctx, r),
        RequestBody::DescribeCluster(r) => cluster::describe_cluster(ctx, r),
        RequestBody::FindCoordinator(r) => cluster::find_coordinator(ctx, r),
        RequestBody::SaslHandshake(_) => cluster::sasl_handshake(),
        RequestBody::SaslAuthenticate(_) => cluster::sasl_authenticate(),
        RequestBody::Produce(r) => return produce::produce(ctx, r),
        RequestBody::Fetch(r) => return fetch::fetch(ctx, r),
        RequestBody::ListOffsets(r) => return offsets::list_offsets(ctx, r),
        RequestBody::OffsetCommit(r) => offsets::offset_commit(ctx, r),
        RequestBody::OffsetFetch(r) => offsets::offset_fetch(ctx, r),
        RequestBody::OffsetForLeaderEpoch(r) => offsets::offset_for_leader_epoch(ctx, r),
        RequestBody::DeleteRecords(r) => offsets::delete_records(ctx, r),
        RequestBody::InitProducerId(r) => offsets::init_producer_id(ctx, r),
        RequestBody::JoinGroup(r) => return groups::join(ctx, r),
        RequestBody::SyncGroup(r) => return groups::sync(ctx, r),
        RequestBody::Heartbeat(r) => groups::heartbeat(ctx, r),
        RequestBody::LeaveGroup(r) => groups::leave(ctx, r),
        RequestBody::ListGroups(r) => groups::list(ctx, r),
        RequestBody::DescribeGroups(r) => groups::describe(ctx, r),
        RequestBody::DeleteGroups(r) => groups::delete(ctx, r),
        RequestBody::CreateTopics(r) => admin_apis::create_topics(ctx, r),
        RequestBody::DeleteTopics(r) => admin_apis::delete_topics(ctx, r),
        RequestBody::CreatePartitions(r) => admin_apis::create_partitions(ctx, r),
        RequestBody::DescribeConfigs(r) => admin_apis::describe_configs(ctx, r),
        RequestBody::AlterConfigs(r) => admin_apis::alter_configs(ctx, r),
        RequestBody::IncrementalAlterConfigs(r) => admin_apis::incremental_alter_configs(ctx, r),
    };
    Handled::Reply(reply)
}

fn answer_undecodable(conn: &mut Conn, err: RequestError) {
    if !cluster::answer_unservable(&err, &mut conn.wbuf) {
        eprintln!(
            "portask: kafka: closing connection from {}: {err}",
            conn.peer
        );
        conn.rbuf.clear();
        conn.close_after_flush = true;
    }
}

fn respond(conn: &mut Conn, header: Header, body: &ResponseBody) {
    if let Err(e) = api::encode_response(
        header.correlation_id,
        header.api_key,
        header.api_version,
        body,
        &mut conn.wbuf,
    ) {
        eprintln!(
            "portask: kafka: cannot encode response to api {}: {e}",
            header.api_key
        );
        close(conn);
    }
}

fn close(conn: &mut Conn) {
    conn.rbuf.clear();
    conn.close_after_flush = true;
}
