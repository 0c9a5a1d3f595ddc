//! Field values and tables, shaped like AMQP 0-9-1 field tables but free of any codec.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// An ordered table of named values (AMQP field table).
pub type Table = Vec<(String, Value)>;

/// One field value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value.
    Void,
    /// Boolean.
    Bool(bool),
    /// Signed 8-bit integer.
    I8(i8),
    /// Unsigned 8-bit integer.
    U8(u8),
    /// Signed 16-bit integer.
    I16(i16),
    /// Unsigned 16-bit integer.
    U16(u16),
    /// Signed 32-bit integer.
    I32(i32),
    /// Unsigned 32-bit integer.
    U32(u32),
    /// Signed 64-bit integer.
    I64(i64),
    /// 32-bit float.
    F32(f32),
    /// 64-bit float.
    F64(f64),
    /// Decimal: `value / 10^scale`.
    Decimal {
        /// Number of decimal digits.
        scale: u8,
        /// Unscaled value.
        value: u32,
    },
    /// Long string (bytes, usually UTF-8).
    Str(#[serde(with = "bytes_serde")] Bytes),
    /// Byte array.
    Bytes(#[serde(with = "bytes_serde")] Bytes),
    /// Array of values.
    Array(Vec<Value>),
    /// Seconds since the Unix epoch.
    Timestamp(u64),
    /// Nested table.
    Table(Table),
}

impl Value {
    /// A string value.
    pub fn str(s: &str) -> Value {
        Value::Str(Bytes::copy_from_slice(s.as_bytes()))
    }

    /// The value as an integer, for the integer types only.
    pub fn as_int(&self) -> Option<i64> {
        Some(match *self {
            Value::I8(v) => v.into(),
            Value::U8(v) => v.into(),
            Value::I16(v) => v.into(),
            Value::U16(v) => v.into(),
            Value::I32(v) => v.into(),
            Value::U32(v) => v.into(),
            Value::I64(v) => v,
            _ => return None,
        })
    }

    /// The value as text, for strings only.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// RabbitMQ's name of the value's field type.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Void => "void",
            Value::Bool(_) => "bool",
            Value::I8(_) => "byte",
            Value::U8(_) => "unsignedbyte",
            Value::I16(_) => "short",
            Value::U16(_) => "unsignedshort",
            Value::I32(_) => "signedint",
            Value::U32(_) => "unsignedint",
            Value::I64(_) => "long",
            Value::F32(_) => "float",
            Value::F64(_) => "double",
            Value::Decimal { .. } => "decimal",
            Value::Str(_) => "longstr",
            Value::Bytes(_) => "binary",
            Value::Array(_) => "array",
            Value::Timestamp(_) => "timestamp",
            Value::Table(_) => "table",
        }
    }

    /// Equality as RabbitMQ compares arguments: integers by value whatever their width.
    pub fn equivalent(&self, other: &Value) -> bool {
        match (self.as_int(), other.as_int()) {
            (Some(a), Some(b)) => a == b,
            _ => self == other,
        }
    }

    /// The value printed the way RabbitMQ prints it in error texts (`~tp` / `~ts`).
    pub fn display(&self) -> String {
        if let Some(i) = self.as_int() {
            return i.to_string();
        }
        match self {
            Value::Str(b) | Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Void => "undefined".into(),
            Value::F32(f) => f.to_string(),
            Value::F64(f) => f.to_string(),
            Value::Timestamp(t) => t.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// The value as an Erlang term in RabbitMQ's argument errors (`<<"x">>` for strings).
    pub fn erlang_term(&self) -> String {
        match self {
            Value::Str(b) | Value::Bytes(b) => format!("<<\"{}\">>", String::from_utf8_lossy(b)),
            other => other.display(),
        }
    }
}

/// Looks a key up in a table.
pub fn table_get<'a>(table: &'a Table, key: &str) -> Option<&'a Value> {
    table.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// Sets a key in a table: replaces the value in place, or appends.
pub fn table_set(table: &mut Table, key: &str, value: Value) {
    match table.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => table.push((key.to_owned(), value)),
    }
}

/// Serde for [`Bytes`] as a CBOR byte string.
pub(crate) mod bytes_serde {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer, de};

    pub(crate) fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    struct Visitor;

    impl<'de> de::Visitor<'de> for Visitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        d.deserialize_bytes(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_compare_by_value() {
        assert!(Value::I32(5).equivalent(&Value::I64(5)));
        assert!(!Value::I32(5).equivalent(&Value::str("5")));
        assert_eq!(Value::U8(7).type_name(), "unsignedbyte");
        assert_eq!(Value::str("a").erlang_term(), "<<\"a\">>");
    }

    #[test]
    fn table_set_replaces_in_place() {
        let mut t = vec![("a".into(), Value::I8(1)), ("b".into(), Value::I8(2))];
        table_set(&mut t, "a", Value::I8(3));
        table_set(&mut t, "c", Value::Void);
        assert_eq!(table_get(&t, "a"), Some(&Value::I8(3)));
        assert_eq!(t.len(), 3);
    }
}
