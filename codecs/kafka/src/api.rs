//! Request and response dispatch: whole frames to typed headers and bodies and back.
//!
//! Server side: [`decode_request`] and [`encode_response`] (plus [`api_versions_fallback`]
//! for too-new ApiVersions requests). Client side: [`encode_request`] and
//! [`decode_response`].

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, EncodeError};
pub use crate::generated::{ApiKey, RequestBody, ResponseBody, SUPPORTED};
use crate::generated::{
    ApiVersionsResponse, RequestHeader, ResponseHeader, api_versions_response::ApiVersion,
};
use crate::header::{request_header_version, response_header_version};
use crate::wire::Reader;

/// A decoded request: its header and body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The request header (API key, version, correlation id, client id).
    pub header: RequestHeader,
    /// The request body.
    pub body: RequestBody,
}

/// A request frame that cannot be served. Every variant but [`RequestError::Header`] carries
/// what the server needs to answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The frame is too short for the API key, version and correlation id: close the
    /// connection.
    #[error("unreadable request header: {0}")]
    Header(DecodeError),
    /// The API key is not one this codec knows. Kafka closes the connection.
    #[error("unknown api key {api_key}")]
    UnknownApiKey {
        /// The request's API key.
        api_key: i16,
        /// The request's API version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// The version is outside [`SUPPORTED`]: answer `UNSUPPORTED_VERSION` (35); for
    /// ApiVersions, answer with [`api_versions_fallback`].
    #[error("unsupported version {api_version} of api key {api_key}")]
    UnsupportedVersion {
        /// The request's API key.
        api_key: ApiKey,
        /// The request's API version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// The rest of the header or the body is malformed, or bytes follow the body:
    /// `INVALID_REQUEST` (42), then close.
    #[error("malformed request (api key {api_key}, version {api_version}): {error}")]
    Malformed {
        /// The request's API key.
        api_key: ApiKey,
        /// The request's API version.
        api_version: i16,
        /// The request's correlation id.
        correlation_id: i32,
        /// What is wrong.
        error: DecodeError,
    },
}

impl RequestError {
    /// The correlation id, when the header could be read.
    pub fn correlation_id(&self) -> Option<i32> {
        match self {
            Self::Header(_) => None,
            Self::UnknownApiKey { correlation_id, .. }
            | Self::UnsupportedVersion { correlation_id, .. }
            | Self::Malformed { correlation_id, .. } => Some(*correlation_id),
        }
    }

    /// The Kafka error code answering this request.
    pub fn error_code(&self) -> i16 {
        match self {
            Self::UnsupportedVersion { .. } => crate::error_codes::UNSUPPORTED_VERSION,
            Self::Header(e) | Self::Malformed { error: e, .. } => e.error_code(),
            Self::UnknownApiKey { .. } => crate::error_codes::INVALID_REQUEST,
        }
    }
}

/// The versions the broker advertises for `api_key` (min, max).
pub fn supported_versions(api_key: ApiKey) -> (i16, i16) {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == api_key)
        .map(|&(_, lo, hi)| (lo, hi))
        .unwrap_or((0, -1))
}

/// Decodes one request frame (without its 4-byte size prefix). Only versions in
/// [`SUPPORTED`] are accepted. Record batches stay zero-copy slices of `frame`.
pub fn decode_request(frame: Bytes) -> Result<Request, RequestError> {
    let mut peek = Reader::new(frame.clone());
    let api_key = peek.i16().map_err(RequestError::Header)?;
    let api_version = peek.i16().map_err(RequestError::Header)?;
    let correlation_id = peek.i32().map_err(RequestError::Header)?;
    let Some(key) = ApiKey::from_i16(api_key) else {
        return Err(RequestError::UnknownApiKey {
            api_key,
            api_version,
            correlation_id,
        });
    };
    let (lo, hi) = supported_versions(key);
    if !(lo..=hi).contains(&api_version) {
        return Err(RequestError::UnsupportedVersion {
            api_key: key,
            api_version,
            correlation_id,
        });
    }
    let malformed = |error| RequestError::Malformed {
        api_key: key,
        api_version,
        correlation_id,
        error,
    };
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r, request_header_version(api_key, api_version))
        .map_err(malformed)?;
    let body = RequestBody::decode(key, api_version, &mut r).map_err(malformed)?;
    r.finish().map_err(malformed)?;
    Ok(Request { header, body })
}

/// Runs `f` to append a frame body to `out` after a 4-byte size prefix, then patches the size.
/// On error `out` is left as it was.
fn framed(
    out: &mut BytesMut,
    f: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_i32(0);
    let size = f(out).and_then(|()| {
        i32::try_from(out.len() - start - 4).map_err(|_| EncodeError::TooLong("frame"))
    });
    match size {
        Ok(size) => {
            out[start..start + 4].copy_from_slice(&size.to_be_bytes());
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Appends a response frame to `out`: 4-byte size, response header, body. `api_key` and
/// `api_version` are the request's; `body` must be of the same API.
pub fn encode_response(
    correlation_id: i32,
    api_key: i16,
    api_version: i16,
    body: &ResponseBody,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    debug_assert_eq!(
        body.api_key().as_i16(),
        api_key,
        "response body of another api"
    );
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    framed(out, |w| {
        header.encode(w, response_header_version(api_key, api_version))?;
        body.encode(w, api_version)
    })
}

/// Appends a request frame to `out` (client side): 4-byte size, request header, body. The
/// version is `header.request_api_version`; `body` must be of `header.request_api_key`.
pub fn encode_request(
    header: &RequestHeader,
    body: &RequestBody,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    debug_assert_eq!(
        body.api_key().as_i16(),
        header.request_api_key,
        "body of another api"
    );
    let (key, version) = (header.request_api_key, header.request_api_version);
    framed(out, |w| {
        header.encode(w, request_header_version(key, version))?;
        body.encode(w, version)
    })
}

/// Decodes a response frame (without its size prefix), knowing only the key and version of
/// the request it answers (client side). Any version valid in the schemas is accepted.
pub fn decode_response(
    api_key: i16,
    api_version: i16,
    frame: Bytes,
) -> Result<(ResponseHeader, ResponseBody), DecodeError> {
    let key = ApiKey::from_i16(api_key).ok_or(DecodeError::UnknownApiKey(api_key))?;
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, response_header_version(api_key, api_version))?;
    let body = ResponseBody::decode(key, api_version, &mut r)?;
    r.finish()?;
    Ok((header, body))
}

/// An ApiVersions response listing [`SUPPORTED`], with `error_code`.
pub fn api_versions_response(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse {
        error_code,
        api_keys: SUPPORTED
            .iter()
            .map(|&(k, min_version, max_version)| ApiVersion {
                api_key: k.as_i16(),
                min_version,
                max_version,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Appends the answer to an ApiVersions request newer than the broker supports (KIP-511):
/// an ApiVersions v0 response (header v0) with error 35 (`UNSUPPORTED_VERSION`) and the
/// supported versions, so the client retries with a version it shares with the broker.
pub fn api_versions_fallback(correlation_id: i32, out: &mut BytesMut) -> Result<(), EncodeError> {
    let body = ResponseBody::ApiVersions(api_versions_response(
        crate::error_codes::UNSUPPORTED_VERSION,
    ));
    encode_response(correlation_id, ApiKey::ApiVersions.as_i16(), 0, &body, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::ApiVersionsRequest;

    /// An ApiVersions v3 request as the Java client sends it: header v2 (client id as a
    /// classic int16 string, then an empty tagged section), compact strings in the body.
    const API_VERSIONS_V3: &[u8] = &[
        0x00, 0x00, 0x00, 0x25, // size 37
        0x00, 0x12, 0x00, 0x03, // api key 18, version 3
        0x00, 0x00, 0x00, 0x07, // correlation id 7
        0x00, 0x08, b'p', b'r', b'o', b'd', b'u', b'c', b'e', b'r', // client id "producer"
        0x00, // header tagged fields
        0x0b, b'a', b'p', b'a', b'c', b'h', b'e', b'-', b'k', b'f', b'k', // software name
        0x06, b'3', b'.', b'9', b'.', b'0', // software version
        0x00, // body tagged fields
    ];

    #[test]
    fn decodes_a_real_api_versions_v3_request() {
        let frame = Bytes::from_static(&API_VERSIONS_V3[4..]);
        assert_eq!(API_VERSIONS_V3.len() - 4, 0x25);
        let req = decode_request(frame).unwrap();
        assert_eq!(req.header.request_api_key, 18);
        assert_eq!(req.header.request_api_version, 3);
        assert_eq!(req.header.correlation_id, 7);
        assert_eq!(req.header.client_id.as_deref(), Some("producer"));
        let RequestBody::ApiVersions(body) = &req.body else {
            panic!("{:?}", req.body)
        };
        assert_eq!(body.client_software_name, "apache-kfk");
        assert_eq!(body.client_software_version, "3.9.0");
        let mut out = BytesMut::new();
        encode_request(&req.header, &req.body, &mut out).unwrap();
        assert_eq!(&out[..], API_VERSIONS_V3);
    }

    #[test]
    fn too_new_api_versions_gets_the_v0_fallback() {
        let mut frame = API_VERSIONS_V3[4..].to_vec();
        frame[3] = 99;
        let err = decode_request(Bytes::from(frame)).unwrap_err();
        let RequestError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(
            (api_key, api_version, correlation_id),
            (ApiKey::ApiVersions, 99, 7)
        );
        let mut out = BytesMut::from(&b"xx"[..]);
        api_versions_fallback(correlation_id, &mut out).unwrap();
        let n = SUPPORTED.len();
        // size, correlation id (header v0), error 35, int32 array of (key, min, max) int16s.
        assert_eq!(&out[..2], b"xx");
        let out = &out[2..];
        assert_eq!(out.len(), 4 + 4 + 2 + 4 + 6 * n);
        assert_eq!(&out[..4], &((4 + 2 + 4 + 6 * n) as i32).to_be_bytes());
        assert_eq!(&out[4..14], &[0, 0, 0, 7, 0, 35, 0, 0, 0, n as u8]);
        let (h, body) = decode_response(18, 0, Bytes::copy_from_slice(&out[4..])).unwrap();
        assert_eq!(h.correlation_id, 7);
        assert_eq!(body, ResponseBody::ApiVersions(api_versions_response(35)));
    }

    #[test]
    fn supported_table() {
        assert_eq!(supported_versions(ApiKey::Produce).0, 3);
        assert_eq!(supported_versions(ApiKey::Fetch).0, 4);
        // ListOffsetsRequest.json has `"latestVersionUnstable": false`: all versions count.
        assert_eq!(supported_versions(ApiKey::ListOffsets), (0, 10));
        assert_eq!(supported_versions(ApiKey::ApiVersions), (0, 4));
    }

    #[test]
    fn errors_carry_the_header() {
        assert!(matches!(
            decode_request(Bytes::from_static(&[0, 18, 0])),
            Err(RequestError::Header(_))
        ));
        let err = decode_request(Bytes::from_static(&[0x7f, 0, 0, 1, 0, 0, 0, 9])).unwrap_err();
        assert_eq!(err.correlation_id(), Some(9));
        // ApiVersions v0 with a trailing byte.
        let err = decode_request(Bytes::from_static(&[
            0, 18, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 1,
        ]))
        .unwrap_err();
        assert!(matches!(
            err,
            RequestError::Malformed {
                error: DecodeError::TrailingData,
                ..
            }
        ));
        assert_eq!(err.error_code(), crate::error_codes::INVALID_REQUEST);
        let ok = decode_request(Bytes::from_static(&[0, 18, 0, 0, 0, 0, 0, 5, 0xff, 0xff]));
        assert_eq!(
            ok.unwrap().body,
            RequestBody::ApiVersions(ApiVersionsRequest::default())
        );
    }

    #[test]
    fn response_round_trip_with_flexible_header() {
        let body = ResponseBody::ApiVersions(api_versions_response(0));
        let mut out = BytesMut::new();
        encode_response(3, 18, 3, &body, &mut out).unwrap();
        let (h, back) = decode_response(18, 3, out.freeze().slice(4..)).unwrap();
        assert_eq!((h.correlation_id, back), (3, body));
    }

    #[test]
    fn metadata_v12_request_all_topics() {
        // Header v2 (client id "c"), topics null, allow auto creation, no authorized ops.
        let frame: &[u8] = &[0, 3, 0, 12, 0, 0, 0, 1, 0, 1, b'c', 0, 0, 1, 0, 0];
        let req = decode_request(Bytes::from_static(frame)).unwrap();
        let RequestBody::Metadata(m) = &req.body else {
            panic!()
        };
        assert_eq!(m.topics, None);
        assert!(m.allow_auto_topic_creation);
        let mut out = BytesMut::new();
        encode_request(&req.header, &req.body, &mut out).unwrap();
        assert_eq!(&out[4..], frame);
    }

    #[test]
    fn tagged_fields_are_written_in_tag_order_with_unknown_ones() {
        let mut body = ApiVersionsResponse {
            finalized_features_epoch: 5,
            ..Default::default()
        };
        body.unknown_tagged_fields
            .insert(9, Bytes::from_static(&[0xaa]));
        body.unknown_tagged_fields
            .insert(4, Bytes::from_static(&[0xbb]));
        let mut w = BytesMut::new();
        body.encode(&mut w, 3).unwrap();
        // error 0, api keys empty (compact 1), throttle 0, then 3 tagged fields:
        // known tag 1 (int64 5), unknown tags 4 and 9.
        let expected: &[u8] = &[
            0, 0, 1, 0, 0, 0, 0, 3, 1, 8, 0, 0, 0, 0, 0, 0, 0, 5, 4, 1, 0xbb, 9, 1, 0xaa,
        ];
        assert_eq!(&w[..], expected);
        let back = ApiVersionsResponse::decode(&mut Reader::new(w.freeze()), 3).unwrap();
        assert_eq!(back, body);
        // A known tagged field that does not exist in the version is an error, an ignorable
        // one is skipped.
        assert!(body.encode(&mut BytesMut::new(), 2).is_ok());
        let out_of_order: &[u8] = &[0, 0, 1, 0, 0, 0, 0, 2, 9, 1, 0xaa, 4, 1, 0xbb];
        assert!(
            ApiVersionsResponse::decode(&mut Reader::new(Bytes::from_static(out_of_order)), 3)
                .is_err()
        );
    }
}
