//! Serde for `Option<[u8; 16]>` as a CBOR byte string of 16 bytes (a ULID).

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(id: &Option<[u8; 16]>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_bytes(id),
        None => s.serialize_none(),
    }
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 16]>, D::Error> {
    match Option::<Bytes>::deserialize(d)? {
        None => Ok(None),
        Some(b) => <[u8; 16]>::try_from(&b[..])
            .map(Some)
            .map_err(|_| serde::de::Error::custom("id is not 16 bytes")),
    }
}
