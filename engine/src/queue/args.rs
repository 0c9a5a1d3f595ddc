//! Queue arguments: validation with RabbitMQ's texts and declare equivalence.

use crate::error::BrokerError;
use crate::value::{Table, Value, table_get};

/// What to do when a queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop (and dead-letter) the oldest ready message.
    #[default]
    DropHead,
    /// Refuse the new message.
    RejectPublish,
    /// Refuse the new message and dead-letter it.
    RejectPublishDlx,
}

/// The parsed arguments of a queue.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueArgs {
    /// `x-message-ttl`.
    pub message_ttl: Option<u64>,
    /// `x-expires`.
    pub expires: Option<u64>,
    /// `x-max-length`.
    pub max_length: Option<u64>,
    /// `x-max-length-bytes`.
    pub max_length_bytes: Option<u64>,
    /// `x-overflow`.
    pub overflow: Overflow,
    /// `x-dead-letter-exchange`.
    pub dead_letter_exchange: Option<String>,
    /// `x-dead-letter-routing-key`.
    pub dead_letter_routing_key: Option<String>,
    /// `x-max-priority` (0: no priorities).
    pub max_priority: u8,
    /// `x-single-active-consumer`.
    pub single_active_consumer: bool,
    /// `x-queue-type` = `stream`: the queue is the topic of the same name.
    pub stream: bool,
}

/// Classic-queue arguments a stream queue refuses, as RabbitMQ does.
const NOT_FOR_STREAMS: [&str; 8] = [
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-expires",
    "x-max-length",
    "x-max-priority",
    "x-message-ttl",
    "x-overflow",
    "x-single-active-consumer",
];

/// The arguments RabbitMQ compares on redeclare.
const EQUIVALENCE_KEYS: [&str; 10] = [
    "x-dead-letter-exchange",
    "x-dead-letter-routing-key",
    "x-expires",
    "x-max-length",
    "x-max-length-bytes",
    "x-max-priority",
    "x-message-ttl",
    "x-overflow",
    "x-queue-type",
    "x-single-active-consumer",
];

fn int_arg(v: &Value, min: i64) -> Result<i64, String> {
    let Some(i) = v.as_int() else {
        return Err(format!("{{unacceptable_type,{}}}", v.type_name()));
    };
    if i < 0 {
        return Err(format!("{{value_negative,{i}}}"));
    }
    if i < min {
        return Err(format!("{{value_zero,{i}}}"));
    }
    Ok(i)
}

fn str_arg(v: &Value) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{{unacceptable_type,{}}}", v.type_name()))
}

impl QueueArgs {
    /// Validates and parses a queue's arguments; `what` is e.g. `queue 'q' in vhost '/'`.
    pub fn parse(args: &Table, what: &str) -> Result<QueueArgs, BrokerError> {
        let mut out = QueueArgs::default();
        for (key, v) in args {
            out.parse_one(key, v, args).map_err(|e| {
                BrokerError::InvalidArgument(format!("invalid arg '{key}' for {what}: {e}"))
            })?;
        }
        let refused = args
            .iter()
            .find(|(k, _)| NOT_FOR_STREAMS.contains(&k.as_str()));
        if let (true, Some((key, _))) = (out.stream, refused) {
            return Err(BrokerError::InvalidArgument(format!(
                "invalid arg '{key}' for {what} of queue type rabbit_stream_queue"
            )));
        }
        Ok(out)
    }

    fn parse_one(&mut self, key: &str, v: &Value, args: &Table) -> Result<(), String> {
        match key {
            "x-message-ttl" => self.message_ttl = Some(int_arg(v, 0)? as u64),
            "x-expires" => self.expires = Some(int_arg(v, 1)? as u64),
            "x-max-length" => self.max_length = Some(int_arg(v, 0)? as u64),
            "x-max-length-bytes" => self.max_length_bytes = Some(int_arg(v, 0)? as u64),
            "x-overflow" => {
                self.overflow = match str_arg(v)?.as_str() {
                    "drop-head" => Overflow::DropHead,
                    "reject-publish" => Overflow::RejectPublish,
                    "reject-publish-dlx" => Overflow::RejectPublishDlx,
                    _ => return Err(format!("{{invalid_overflow,{}}}", v.erlang_term())),
                }
            }
            "x-dead-letter-exchange" => self.dead_letter_exchange = Some(str_arg(v)?),
            "x-dead-letter-routing-key" => {
                self.dead_letter_routing_key = Some(str_arg(v)?);
                if table_get(args, "x-dead-letter-exchange").is_none() {
                    return Err("routing_key_but_no_dlx_defined".into());
                }
            }
            "x-max-priority" => {
                let p = int_arg(v, 0)?;
                if p > 255 {
                    return Err(format!("{{max_value_exceeded,{p}}}"));
                }
                self.max_priority = p as u8;
            }
            "x-single-active-consumer" => match v {
                Value::Bool(b) => self.single_active_consumer = *b,
                other => return Err(format!("{{unacceptable_type,{}}}", other.type_name())),
            },
            "x-queue-type" => match str_arg(v)?.as_str() {
                "classic" => {}
                "stream" => self.stream = true,
                _ => return Err(format!("{{unsupported_queue_type,{}}}", v.erlang_term())),
            },
            _ => {}
        }
        Ok(())
    }
}

fn describe(v: Option<&Value>) -> String {
    match v {
        None => "none".into(),
        Some(v) => format!("the value '{}' of type '{}'", v.display(), v.type_name()),
    }
}

fn lookup<'a>(args: &'a Table, key: &str) -> Option<&'a Value> {
    match (key, table_get(args, key)) {
        ("x-queue-type", Some(v)) if v.as_str() == Some("classic") => None,
        (_, v) => v,
    }
}

/// Compares the arguments that matter between the current and a redeclared queue.
pub fn assert_args_equivalent(
    current: &Table,
    received: &Table,
    what: &str,
) -> Result<(), BrokerError> {
    assert_keys_equivalent(&EQUIVALENCE_KEYS, current, received, what)
}

/// Compares the named arguments between a current and a redeclared entity.
pub fn assert_keys_equivalent(
    keys: &[&str],
    current: &Table,
    received: &Table,
    what: &str,
) -> Result<(), BrokerError> {
    for &key in keys {
        let (c, r) = (lookup(current, key), lookup(received, key));
        let text = match (c, r) {
            (None, None) => continue,
            (Some(c), Some(r)) if c.equivalent(r) => continue,
            (Some(c), Some(r)) => format!("'{}' but current is '{}'", r.display(), c.display()),
            (c, r) => format!("{} but current is {}", describe(r), describe(c)),
        };
        return Err(BrokerError::PreconditionFailed(format!(
            "inequivalent arg '{key}' for {what}: received {text}"
        )));
    }
    Ok(())
}

/// Compares one declare field, e.g. `durable`.
pub fn assert_field_equivalent(
    field: &str,
    current: &str,
    received: &str,
    what: &str,
) -> Result<(), BrokerError> {
    if current == received {
        return Ok(());
    }
    Err(BrokerError::PreconditionFailed(format!(
        "inequivalent arg '{field}' for {what}: received '{received}' but current is '{current}'"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kv: &[(&str, Value)]) -> Table {
        kv.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn validation_texts() {
        let what = "queue 'q' in vhost '/'";
        let err = |a: Table| QueueArgs::parse(&a, what).unwrap_err().to_string();
        assert_eq!(
            err(t(&[("x-max-length", Value::I32(-1))])),
            "invalid arg 'x-max-length' for queue 'q' in vhost '/': {value_negative,-1}"
        );
        assert_eq!(
            err(t(&[("x-expires", Value::I32(0))])),
            "invalid arg 'x-expires' for queue 'q' in vhost '/': {value_zero,0}"
        );
        assert_eq!(
            err(t(&[("x-message-ttl", Value::str("5"))])),
            "invalid arg 'x-message-ttl' for queue 'q' in vhost '/': {unacceptable_type,longstr}"
        );
        assert_eq!(
            err(t(&[("x-dead-letter-routing-key", Value::str("k"))])),
            "invalid arg 'x-dead-letter-routing-key' for queue 'q' in vhost '/': \
             routing_key_but_no_dlx_defined"
        );
        let ok = QueueArgs::parse(&t(&[("x-max-priority", Value::U8(5))]), what).unwrap();
        assert_eq!(ok.max_priority, 5);
    }

    #[test]
    fn equivalence_texts() {
        let what = "queue 'q' in vhost '/'";
        let a = t(&[("x-message-ttl", Value::I32(100))]);
        let b = t(&[
            ("x-message-ttl", Value::I64(100)),
            ("x-other", Value::I8(1)),
        ]);
        assert!(assert_args_equivalent(&a, &b, what).is_ok());
        let e = assert_args_equivalent(&a, &t(&[]), what)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received none but \
             current is the value '100' of type 'signedint'"
        );
        let e = assert_args_equivalent(&a, &t(&[("x-message-ttl", Value::I32(5))]), what);
        assert_eq!(
            e.unwrap_err().to_string(),
            "inequivalent arg 'x-message-ttl' for queue 'q' in vhost '/': received '5' but \
             current is '100'"
        );
        let classic = t(&[("x-queue-type", Value::str("classic"))]);
        assert!(assert_args_equivalent(&classic, &t(&[]), what).is_ok());
    }
}
