//! `portask-codegen`: generates the Kafka message codecs of `portask-kafka` from the Kafka
//! JSON message schemas. Builds never run it; its output is committed.
//!
//! With `amqp` as the first argument it generates the AMQP 0-9-1 methods instead; see
//! [`amqp`].
//!
//! Run from the workspace root:
//!
//! ```text
//! cargo run -p portask-codegen -- ../shared/specs/kafka-messages codecs/kafka/src/generated \
//!     proptests/tests/kafka_messages/strategies.rs
//! cargo fmt -p portask-kafka -p portask-proptests
//! ```
//!
//! The first argument is the schema directory, the second the output directory of the message
//! modules and `mod.rs`, the optional third the file of random builders used by the property
//! tests. Field names are the snake case of the schema names; Rust keywords become raw
//! identifiers (`Type` -> `r#type`).

mod amqp;
mod amqp_emit;
mod emit;
mod modfile;
mod schema;
mod strategies;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use schema::Message;

/// The APIs generated, by request name without the `Request` suffix.
const APIS: &[&str] = &[
    "Produce",
    "Fetch",
    "ListOffsets",
    "Metadata",
    "OffsetCommit",
    "OffsetFetch",
    "FindCoordinator",
    "JoinGroup",
    "Heartbeat",
    "LeaveGroup",
    "SyncGroup",
    "DescribeGroups",
    "ListGroups",
    "SaslHandshake",
    "ApiVersions",
    "CreateTopics",
    "DeleteTopics",
    "DeleteRecords",
    "InitProducerId",
    "OffsetForLeaderEpoch",
    "DescribeConfigs",
    "AlterConfigs",
    "SaslAuthenticate",
    "CreatePartitions",
    "DeleteGroups",
    "IncrementalAlterConfigs",
    "DescribeCluster",
];

/// Header schemas generated besides the APIs.
const HEADERS: &[&str] = &["RequestHeader", "ResponseHeader"];

fn load(dir: &Path, name: &str) -> Result<Message, String> {
    let file = format!("{name}.json");
    let text = std::fs::read_to_string(dir.join(&file)).map_err(|e| format!("{file}: {e}"))?;
    schema::parse_message(&file, &text)
}

fn run(args: &[String]) -> Result<(), String> {
    let [spec, out, rest @ ..] = args else {
        return Err("usage: portask-codegen <schema dir> <output dir> [strategies file]".into());
    };
    let spec = PathBuf::from(spec);
    let out = PathBuf::from(out);
    let mut msgs = Vec::new();
    let mut pairs = Vec::new();
    for h in HEADERS {
        msgs.push(load(&spec, h)?);
    }
    let mut api_msgs = Vec::new();
    for api in APIS {
        let req = load(&spec, &format!("{api}Request"))?;
        let resp = load(&spec, &format!("{api}Response"))?;
        if req.api_key != resp.api_key || req.api_key.is_none() {
            return Err(format!("{api}: request and response api keys differ"));
        }
        api_msgs.push((api.to_string(), req, resp));
    }
    for (_, req, resp) in &api_msgs {
        msgs.push(req.clone());
        msgs.push(resp.clone());
    }
    for (api, req, resp) in &api_msgs {
        pairs.push((api.clone(), req, resp));
    }
    pairs.sort_by_key(|p| p.1.api_key);
    std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
    for m in &msgs {
        let path = out.join(format!("{}.rs", emit::module_name(m)));
        std::fs::write(&path, emit::emit_message(m)).map_err(|e| format!("{path:?}: {e}"))?;
    }
    let mod_rs = modfile::emit(&msgs, &pairs);
    std::fs::write(out.join("mod.rs"), mod_rs).map_err(|e| e.to_string())?;
    if let [strategies] = rest {
        std::fs::write(strategies, strategies::emit(&msgs, &pairs)).map_err(|e| e.to_string())?;
    }
    eprintln!("generated {} messages into {}", msgs.len(), out.display());
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((mode, rest)) if mode == "amqp" => amqp::run(rest),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("portask-codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
