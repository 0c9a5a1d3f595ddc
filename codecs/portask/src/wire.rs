//! Bodies to and from CBOR (RFC 8949), with ciborium.
//!
//! Structs are CBOR maps keyed by field name; `Option` fields that are absent are left out;
//! byte fields are byte strings (major type 2), never arrays of integers.

use bytes::{BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DecodeError;

/// Appends the CBOR encoding of `body` to `out`.
pub fn encode_body<T: Serialize>(body: &T, out: &mut BytesMut) {
    // Writing into memory has no IO errors, and every body type maps onto CBOR.
    ciborium::into_writer(body, out.writer()).expect("bodies always encode to CBOR");
}

/// Decodes a whole CBOR body. Nesting deeper than `depth_max` and trailing bytes are errors.
pub fn decode_body<T: DeserializeOwned>(body: &[u8], depth_max: usize) -> Result<T, DecodeError> {
    let mut rest = body;
    let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, depth_max).map_err(
        |e: ciborium::de::Error<std::io::Error>| match e {
            ciborium::de::Error::Io(_) => DecodeError::Body("truncated CBOR"),
            ciborium::de::Error::Syntax(_) => DecodeError::Body("invalid CBOR"),
            ciborium::de::Error::Semantic(..) => DecodeError::Body("unexpected CBOR value"),
            ciborium::de::Error::RecursionLimitExceeded => DecodeError::Body("nested too deep"),
        },
    )?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingData);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{Message, Value};
    use bytes::Bytes;

    #[test]
    fn payloads_are_byte_strings() {
        let m = Message {
            payload: Bytes::from(vec![0xAB; 1 << 20]),
            key: Some(Bytes::from_static(b"k")),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        encode_body(&m, &mut out);
        // A 1 MiB array of integers would take 2 MiB; a byte string takes 1 MiB and a header.
        assert!(out.len() < (1 << 20) + 64, "{}", out.len());
        let key = out.windows(6).position(|w| w == b"\x63key\x41k");
        assert!(key.is_some(), "key as a byte string");
        let hdr = [0x5a, 0x00, 0x10, 0x00, 0x00];
        assert!(
            out.windows(5).any(|w| w == hdr),
            "payload is major type 2, 4-byte length"
        );
        assert_eq!(decode_body::<Message>(&out, 16).unwrap(), m);
    }

    #[test]
    fn trailing_bytes_and_deep_nesting_are_errors() {
        let mut out = BytesMut::new();
        encode_body(&Message::default(), &mut out);
        out.put_u8(0);
        assert_eq!(
            decode_body::<Message>(&out, 16),
            Err(DecodeError::TrailingData)
        );
        let mut v = Value::Null;
        for _ in 0..40 {
            v = Value::Array(vec![v]);
        }
        let mut out = BytesMut::new();
        encode_body(&v, &mut out);
        assert!(decode_body::<Value>(&out, 16).is_err());
        assert_eq!(decode_body::<Value>(&out, 64).unwrap(), v);
        assert!(decode_body::<Value>(&[0x9f; 100_000], 32).is_err());
        assert!(decode_body::<Message>(&[0xa1, 0x67], 32).is_err());
    }
}
