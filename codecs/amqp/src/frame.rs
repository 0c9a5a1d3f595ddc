//! Splitting a byte stream into AMQP frames, and encoding frames into a caller's buffer.
//!
//! A frame is `type u8, channel u16, size u32, payload, 0xCE` (spec 4.2.3). The server side
//! first expects the 8-byte protocol header `AMQP\x00\x00\x09\x01` (spec 4.2.2).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, FrameError};
use crate::generated::{BasicProperties, FRAME_END, Method, class_id, frame_type};
use crate::wire::Reader;

/// The protocol header of AMQP 0-9-1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";

/// Bytes of framing around a payload: type, channel, size and the frame-end octet.
pub const FRAME_OVERHEAD: u32 = 8;

/// One decoded frame. Bodies are zero-copy slices of the input.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// The peer's protocol header (server side only, first thing on the stream).
    ProtocolHeader,
    /// A method frame.
    Method {
        /// The channel.
        channel: u16,
        /// The decoded method.
        method: Method,
    },
    /// A content header frame.
    Header {
        /// The channel.
        channel: u16,
        /// The class of the content; always the basic class.
        class_id: u16,
        /// Total size of the body frames that follow.
        body_size: u64,
        /// The content properties.
        properties: BasicProperties,
    },
    /// A content body frame.
    Body {
        /// The channel.
        channel: u16,
        /// This frame's part of the body.
        payload: Bytes,
    },
    /// A heartbeat frame (always on channel 0).
    Heartbeat,
}

impl Frame {
    /// The channel the frame belongs to (0 for the header and heartbeats).
    pub fn channel(&self) -> u16 {
        match self {
            Self::Method { channel, .. } | Self::Header { channel, .. } => *channel,
            Self::Body { channel, .. } => *channel,
            Self::ProtocolHeader | Self::Heartbeat => 0,
        }
    }
}

/// Splits frames off the front of a caller-owned buffer. Only the 7-byte frame header of an
/// incomplete frame is looked at, and its size is checked against frame_max before any
/// buffering, so a frame is never re-parsed as more bytes arrive.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    awaiting_header: bool,
    frame_max: u32,
    table_depth_max: usize,
}

impl FrameDecoder {
    /// A decoder for the server side: the protocol header comes first.
    pub fn server(frame_max: u32, table_depth_max: usize) -> Self {
        Self {
            awaiting_header: true,
            frame_max,
            table_depth_max,
        }
    }

    /// A decoder for the client side: frames from the first byte.
    pub fn client(frame_max: u32, table_depth_max: usize) -> Self {
        Self {
            awaiting_header: false,
            frame_max,
            table_depth_max,
        }
    }

    /// The largest frame accepted, framing included.
    pub fn frame_max(&self) -> u32 {
        self.frame_max
    }

    /// Changes the largest frame accepted (after tuning).
    pub fn set_frame_max(&mut self, frame_max: u32) {
        self.frame_max = frame_max;
    }

    /// Takes the next complete frame off the front of `buf`. `Ok(None)` leaves `buf` untouched
    /// when the frame is not complete yet.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if self.awaiting_header {
            return self.decode_protocol_header(buf);
        }
        let Some(head) = buf.first_chunk::<7>() else {
            return Ok(None);
        };
        let kind = head[0];
        let channel = u16::from_be_bytes([head[1], head[2]]);
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]);
        let max = self.frame_max.saturating_sub(FRAME_OVERHEAD);
        if size > max {
            return Err(FrameError::TooLarge { size, max });
        }
        let total = 7 + size as usize + 1;
        if buf.len() < total {
            return Ok(None);
        }
        let end = buf[total - 1];
        if end != FRAME_END {
            return Err(FrameError::MissingFrameEnd(end));
        }
        let mut raw = buf.split_to(total).freeze();
        raw.truncate(total - 1);
        let payload = raw.slice(7..);
        self.parse(kind, channel, payload).map(Some)
    }

    fn decode_protocol_header(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let n = buf.len().min(PROTOCOL_HEADER.len());
        if buf[..n] != PROTOCOL_HEADER[..n] {
            return Err(FrameError::BadProtocolHeader);
        }
        if n < PROTOCOL_HEADER.len() {
            return Ok(None);
        }
        let _ = buf.split_to(PROTOCOL_HEADER.len());
        self.awaiting_header = false;
        Ok(Some(Frame::ProtocolHeader))
    }

    fn parse(&self, kind: u8, channel: u16, payload: Bytes) -> Result<Frame, FrameError> {
        match kind {
            frame_type::METHOD => self.parse_method(channel, payload),
            frame_type::HEADER => self.parse_header(channel, payload),
            frame_type::BODY => Ok(Frame::Body { channel, payload }),
            frame_type::HEARTBEAT if channel == 0 && payload.is_empty() => Ok(Frame::Heartbeat),
            frame_type::HEARTBEAT => Err(FrameError::BadHeartbeat(channel)),
            other => Err(FrameError::UnknownFrameType(other)),
        }
    }

    fn parse_method(&self, channel: u16, payload: Bytes) -> Result<Frame, FrameError> {
        let mut r = Reader::with_table_depth(payload, self.table_depth_max);
        let malformed = |class_id, method_id, error| FrameError::Malformed {
            channel,
            class_id,
            method_id,
            error,
        };
        let (Ok(class_id), Ok(method_id)) = (r.u16(), r.u16()) else {
            return Err(malformed(0, 0, DecodeError::Truncated("method ids")));
        };
        let method = match Method::decode(class_id, method_id, &mut r) {
            Ok(m) => m,
            Err(DecodeError::UnknownMethod { .. }) => {
                return Err(FrameError::UnknownMethod {
                    channel,
                    class_id,
                    method_id,
                });
            }
            Err(e) => return Err(malformed(class_id, method_id, e)),
        };
        r.finish().map_err(|e| malformed(class_id, method_id, e))?;
        Ok(Frame::Method { channel, method })
    }

    fn parse_header(&self, channel: u16, payload: Bytes) -> Result<Frame, FrameError> {
        let mut r = Reader::with_table_depth(payload, self.table_depth_max);
        let malformed = |class_id, error| FrameError::Malformed {
            channel,
            class_id,
            method_id: 0,
            error,
        };
        let class_id = r.u16().map_err(|e| malformed(0, e))?;
        if class_id != class_id::BASIC {
            return Err(FrameError::BadContentClass { class_id });
        }
        let weight = r.u16().map_err(|e| malformed(class_id, e))?;
        if weight != 0 {
            return Err(malformed(
                class_id,
                DecodeError::Invalid("content header weight"),
            ));
        }
        let body_size = r.u64().map_err(|e| malformed(class_id, e))?;
        let properties = BasicProperties::decode(&mut r).map_err(|e| malformed(class_id, e))?;
        r.finish().map_err(|e| malformed(class_id, e))?;
        Ok(Frame::Header {
            channel,
            class_id,
            body_size,
            properties,
        })
    }
}

/// Appends a frame of type `kind` whose payload `fill` writes.
fn put_frame(out: &mut BytesMut, kind: u8, channel: u16, fill: impl FnOnce(&mut BytesMut)) {
    out.put_u8(kind);
    out.put_u16(channel);
    let at = out.len();
    out.put_u32(0);
    fill(out);
    let size = u32::try_from(out.len() - at - 4).expect("frame under 4 GiB");
    out[at..at + 4].copy_from_slice(&size.to_be_bytes());
    out.put_u8(FRAME_END);
}

/// Appends the protocol header.
pub fn encode_protocol_header(out: &mut BytesMut) {
    out.put_slice(PROTOCOL_HEADER);
}

/// Appends a method frame.
pub fn encode_method(channel: u16, method: &Method, out: &mut BytesMut) {
    put_frame(out, frame_type::METHOD, channel, |o| method.encode(o));
}

/// Appends a content header frame for the basic class.
pub fn encode_header(channel: u16, body_size: u64, props: &BasicProperties, out: &mut BytesMut) {
    put_frame(out, frame_type::HEADER, channel, |o| {
        o.put_u16(class_id::BASIC);
        o.put_u16(0);
        o.put_u64(body_size);
        props.encode(o);
    });
}

/// Appends one body frame.
pub fn encode_body(channel: u16, payload: &[u8], out: &mut BytesMut) {
    put_frame(out, frame_type::BODY, channel, |o| o.put_slice(payload));
}

/// Appends a heartbeat frame.
pub fn encode_heartbeat(out: &mut BytesMut) {
    put_frame(out, frame_type::HEARTBEAT, 0, |_| {});
}

/// Appends a content-carrying method, its content header, and the body split into body
/// frames of at most `frame_max - 8` bytes each (no body frame for an empty body).
pub fn encode_content(
    channel: u16,
    method: &Method,
    props: &BasicProperties,
    body: &Bytes,
    frame_max: u32,
    out: &mut BytesMut,
) {
    encode_method(channel, method, out);
    encode_header(channel, body.len() as u64, props, out);
    let chunk = frame_max.saturating_sub(FRAME_OVERHEAD).max(1) as usize;
    out.reserve(body.len() + body.len().div_ceil(chunk) * FRAME_OVERHEAD as usize);
    for part in body.chunks(chunk) {
        encode_body(channel, part, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generated::BasicPublish;

    #[test]
    fn content_is_split_at_frame_max() {
        let body = Bytes::from(vec![7u8; 10_000]);
        let props = BasicProperties {
            delivery_mode: Some(2),
            ..Default::default()
        };
        let publish = Method::BasicPublish(BasicPublish {
            routing_key: "q".into(),
            ..Default::default()
        });
        let mut out = BytesMut::new();
        encode_content(1, &publish, &props, &body, 4096, &mut out);
        let mut d = FrameDecoder::client(4096, 16);
        let mut sizes = Vec::new();
        assert!(matches!(
            d.decode(&mut out),
            Ok(Some(Frame::Method { channel: 1, .. }))
        ));
        let header = d.decode(&mut out).unwrap().unwrap();
        assert!(matches!(
            header,
            Frame::Header {
                body_size: 10_000,
                ..
            }
        ));
        while let Some(f) = d.decode(&mut out).unwrap() {
            let Frame::Body { payload, .. } = f else {
                panic!("{f:?}")
            };
            sizes.push(payload.len());
        }
        assert_eq!(sizes, vec![4088, 4088, 1824]);
    }

    #[test]
    fn header_then_frames_byte_by_byte() {
        let mut stream = BytesMut::new();
        encode_protocol_header(&mut stream);
        encode_heartbeat(&mut stream);
        let mut d = FrameDecoder::server(4096, 16);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in stream {
            buf.put_u8(b);
            while let Some(f) = d.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(frames, vec![Frame::ProtocolHeader, Frame::Heartbeat]);
    }

    #[test]
    fn bad_input_is_rejected_before_buffering() {
        let mut d = FrameDecoder::server(4096, 16);
        assert_eq!(
            d.decode(&mut BytesMut::from(&b"AMQP\x00\x00\x09\x02"[..])),
            Err(FrameError::BadProtocolHeader)
        );
        let mut d = FrameDecoder::server(4096, 16);
        assert_eq!(
            d.decode(&mut BytesMut::from(&b"GET / HTTP/1.1"[..])),
            Err(FrameError::BadProtocolHeader)
        );
        let mut d = FrameDecoder::client(4096, 16);
        let huge = [1u8, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            d.decode(&mut BytesMut::from(&huge[..])),
            Err(FrameError::TooLarge {
                size: u32::MAX,
                max: 4088
            })
        );
        let no_end = [8u8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            d.decode(&mut BytesMut::from(&no_end[..])),
            Err(FrameError::MissingFrameEnd(0))
        );
        let hb = [8u8, 0, 3, 0, 0, 0, 0, 0xce];
        assert_eq!(
            d.decode(&mut BytesMut::from(&hb[..])),
            Err(FrameError::BadHeartbeat(3))
        );
        let unknown = [1u8, 0, 1, 0, 0, 0, 4, 0, 99, 0, 1, 0xce];
        assert!(matches!(
            d.decode(&mut BytesMut::from(&unknown[..])),
            Err(FrameError::UnknownMethod { class_id: 99, .. })
        ));
    }
}
