//! The Portask broker: the mio event loop, the protocol adapters, the storage drivers and the
//! configuration around the deterministic engine.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod admin;
pub mod amqp;
pub mod auth;
pub mod broker;
pub mod cli;
pub mod config;
pub mod conn;
pub mod kafka;
pub mod load;
pub mod portask;
pub mod storage;
pub mod worker;

use std::io;

use mio::net::UnixStream;
use portask_engine::{Engine, EngineConfig, Storage};

use crate::broker::Broker;
use crate::config::{Backend, Config};
use crate::conn::Kind;
use crate::worker::{Durability, Listener, Worker};

/// Opens storage, binds the listeners, and serves until SIGTERM or SIGINT.
pub fn serve(config: Config) -> io::Result<()> {
    for warning in &config.warnings {
        eprintln!("portask: {warning}");
    }
    let retry_io = config.storage.backend == Backend::Redis;
    let (storage, storage_events) = storage::offload::start(open_storage(&config)?, retry_io)?;
    let storage = Box::new(storage);
    let mut engine = Engine::open(engine_config(&config), storage, 0).map_err(io::Error::other)?;
    engine.set_retention_defaults(portask_engine::retention::RetentionDefaults {
        retention_ms: config.storage.retention_ms,
        retention_bytes: config.storage.retention_bytes,
        check_interval_ms: config.storage.retention_check_interval_ms,
    });
    for vhost in &config.amqp.vhosts {
        engine.ensure_vhost(vhost).map_err(io::Error::other)?;
    }
    let amqp_settings = amqp_settings(&config).map_err(io::Error::other)?;
    let kafka = Listener::bind(config.kafka.listen, Kind::Kafka)?;
    let amqp = Listener::bind(config.amqp.listen, Kind::Amqp)?;
    let portask = Listener::bind(config.portask.listen, Kind::Portask)?;
    let admin = Listener::bind(config.admin.listen, Kind::Admin)?;
    eprintln!(
        "portask: kafka listener ready on {}",
        kafka.sock.local_addr()?
    );
    eprintln!(
        "portask: amqp listener ready on {}",
        amqp.sock.local_addr()?
    );
    eprintln!(
        "portask: admin listener ready on {}",
        admin.sock.local_addr()?
    );
    eprintln!(
        "portask: portask listener ready on {}",
        portask.sock.local_addr()?
    );
    let portask_settings = portask_protocol::conn::server::ServerConfig::default();
    let broker = Broker::new(
        engine,
        kafka::KafkaSettings::from_config(&config),
        amqp_settings,
        portask_settings,
    );
    let durability = Durability {
        policy: config.storage.fsync,
        interval_ms: config.storage.fsync_interval_ms,
    };
    let adaptive = broker.engine.config().compression.default.adaptive;
    let memory_limit = config.compression.memory_limit_bytes.unwrap_or(0);
    let listeners = vec![kafka, amqp, portask, admin];
    let mut worker =
        Worker::new(listeners, broker, signal_pipe()?, storage_events)?.with_durability(durability);
    if adaptive {
        worker = worker.with_load_sampling(memory_limit);
    }
    worker.run()?;
    eprintln!("portask: storage synced, bye");
    Ok(())
}

fn amqp_settings(config: &Config) -> Result<amqp::AmqpSettings, config::ConfigError> {
    let server = portask_amqp::conn::server::ServerConfig {
        server_properties: amqp::server_properties(),
        channel_max: config.amqp.channel_max,
        frame_max: config.amqp.frame_max,
        heartbeat_s: config.amqp.heartbeat_s,
        ..Default::default()
    };
    Ok(amqp::AmqpSettings {
        server,
        users: auth::Users::from_config(&config.amqp)?,
        memory_high_watermark_bytes: config.amqp.memory_high_watermark_bytes,
    })
}

fn open_storage(config: &Config) -> io::Result<Box<dyn Storage + Send>> {
    Ok(match config.storage.backend {
        Backend::Memory => Box::new(portask_engine::MemStorage::default()),
        Backend::Redis => {
            let opts = storage::redis::RedisOptions::new(
                &config.storage.redis_url,
                &config.storage.redis_namespace,
            );
            let redis = storage::redis::RedisStorage::open(&opts)
                .map_err(|e| io::Error::other(format!("storage.redis_url: {e}")))?;
            Box::new(redis)
        }
        Backend::Disk => {
            // Fsyncs are the worker's (`storage.fsync`), not the store's on every append.
            let opts = storage::DiskOptions {
                segment_bytes: config.storage.segment_bytes,
                segment_ms: config.storage.segment_ms,
                sync_on_append: false,
                ..Default::default()
            };
            let disk = storage::DiskStorage::open(&config.data_dir, opts).map_err(|e| {
                io::Error::other(format!(
                    "cannot open data dir {}: {e}",
                    config.data_dir.display()
                ))
            })?;
            Box::new(disk)
        }
    })
}

fn engine_config(config: &Config) -> EngineConfig {
    EngineConfig {
        auto_create_topics: config.kafka.auto_create_topics,
        default_partitions: config.kafka.default_partitions,
        compression: config
            .compression_policy()
            .expect("validated when the config was loaded"),
        group_initial_rebalance_delay_ms: config.groups.initial_rebalance_delay_ms,
        group_min_session_timeout_ms: config.groups.min_session_timeout_ms,
        group_max_session_timeout_ms: config.groups.max_session_timeout_ms,
        ..EngineConfig::default()
    }
}

/// A pipe that SIGTERM and SIGINT write to, read by the event loop.
fn signal_pipe() -> io::Result<UnixStream> {
    let (reader, writer) = std::os::unix::net::UnixStream::pair()?;
    reader.set_nonblocking(true)?;
    writer.set_nonblocking(true)?;
    let writer2 = writer.try_clone()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, writer)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, writer2)?;
    Ok(UnixStream::from_std(reader))
}
