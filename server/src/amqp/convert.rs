//! AMQP field tables and content properties to the engine's values and back.

use portask_amqp::generated::BasicProperties;
use portask_amqp::table::{FieldTable, FieldValue};
use portask_engine::{MessageProps, Table, Value};

/// An AMQP field table as an engine table.
pub(crate) fn table_in(t: FieldTable) -> Table {
    t.0.into_iter().map(|(k, v)| (k, value_in(v))).collect()
}

fn value_in(v: FieldValue) -> Value {
    match v {
        FieldValue::Bool(b) => Value::Bool(b),
        FieldValue::I8(x) => Value::I8(x),
        FieldValue::U8(x) => Value::U8(x),
        FieldValue::I16(x) => Value::I16(x),
        FieldValue::U16(x) => Value::U16(x),
        FieldValue::I32(x) => Value::I32(x),
        FieldValue::U32(x) => Value::U32(x),
        FieldValue::I64(x) => Value::I64(x),
        FieldValue::F32(x) => Value::F32(x),
        FieldValue::F64(x) => Value::F64(x),
        FieldValue::Decimal { scale, value } => Value::Decimal { scale, value },
        FieldValue::LongString(s) => Value::Str(s),
        FieldValue::ByteArray(b) => Value::Bytes(b),
        FieldValue::Array(a) => Value::Array(a.into_iter().map(value_in).collect()),
        FieldValue::Timestamp(t) => Value::Timestamp(t),
        FieldValue::Table(t) => Value::Table(table_in(t)),
        FieldValue::Void => Value::Void,
    }
}

/// An engine table as an AMQP field table.
pub(crate) fn table_out(t: &Table) -> FieldTable {
    FieldTable(t.iter().map(|(k, v)| (k.clone(), value_out(v))).collect())
}

fn value_out(v: &Value) -> FieldValue {
    match v {
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::I8(x) => FieldValue::I8(*x),
        Value::U8(x) => FieldValue::U8(*x),
        Value::I16(x) => FieldValue::I16(*x),
        Value::U16(x) => FieldValue::U16(*x),
        Value::I32(x) => FieldValue::I32(*x),
        Value::U32(x) => FieldValue::U32(*x),
        Value::I64(x) => FieldValue::I64(*x),
        Value::F32(x) => FieldValue::F32(*x),
        Value::F64(x) => FieldValue::F64(*x),
        Value::Decimal { scale, value } => FieldValue::Decimal {
            scale: *scale,
            value: *value,
        },
        Value::Str(s) => FieldValue::LongString(s.clone()),
        Value::Bytes(b) => FieldValue::ByteArray(b.clone()),
        Value::Array(a) => FieldValue::Array(a.iter().map(value_out).collect()),
        Value::Timestamp(t) => FieldValue::Timestamp(*t),
        Value::Table(t) => FieldValue::Table(table_out(t)),
        Value::Void => FieldValue::Void,
    }
}

/// Content-header properties as the engine's message properties.
pub(crate) fn props_in(p: BasicProperties) -> MessageProps {
    MessageProps {
        content_type: p.content_type,
        content_encoding: p.content_encoding,
        headers: p.headers.map(table_in),
        delivery_mode: p.delivery_mode,
        priority: p.priority,
        correlation_id: p.correlation_id,
        reply_to: p.reply_to,
        expiration: p.expiration,
        message_id: p.message_id,
        timestamp: p.timestamp,
        kind: p.r#type,
        user_id: p.user_id,
        app_id: p.app_id,
        cluster_id: p.cluster_id,
    }
}

/// The engine's message properties as content-header properties.
pub(crate) fn props_out(p: &MessageProps) -> BasicProperties {
    BasicProperties {
        content_type: p.content_type.clone(),
        content_encoding: p.content_encoding.clone(),
        headers: p.headers.as_ref().map(table_out),
        delivery_mode: p.delivery_mode,
        priority: p.priority,
        correlation_id: p.correlation_id.clone(),
        reply_to: p.reply_to.clone(),
        expiration: p.expiration.clone(),
        message_id: p.message_id.clone(),
        timestamp: p.timestamp,
        r#type: p.kind.clone(),
        user_id: p.user_id.clone(),
        app_id: p.app_id.clone(),
        cluster_id: p.cluster_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn tables_round_trip() {
        let mut inner = FieldTable::new();
        inner.insert("n", FieldValue::I64(-5));
        let mut t = FieldTable::new();
        t.insert("s", FieldValue::LongString(Bytes::from_static(b"x")));
        t.insert(
            "a",
            FieldValue::Array(vec![FieldValue::Bool(true), FieldValue::Void]),
        );
        t.insert("t", FieldValue::Table(inner));
        t.insert(
            "d",
            FieldValue::Decimal {
                scale: 2,
                value: 314,
            },
        );
        assert_eq!(table_out(&table_in(t.clone())), t);
    }

    #[test]
    fn properties_round_trip() {
        let p = BasicProperties {
            content_type: Some("text/plain".into()),
            delivery_mode: Some(2),
            priority: Some(7),
            expiration: Some("60000".into()),
            r#type: Some("kind".into()),
            timestamp: Some(1_700_000_000),
            ..Default::default()
        };
        assert_eq!(props_out(&props_in(p.clone())), p);
    }
}
