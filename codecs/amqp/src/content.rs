//! Assembly of content: a content-carrying method, then a content header, then body frames
//! whose sizes add up to the header's body size (spec 4.2.6). Frames of different channels
//! may interleave, so each channel has its own [`Assembler`].

use bytes::{Bytes, BytesMut};

use crate::generated::{BasicProperties, Method, reply_code};
use crate::limits::Limits;

/// A complete message: the method, its properties and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Content {
    /// The content-carrying method (publish, deliver, return or get-ok).
    pub method: Method,
    /// The content properties.
    pub properties: BasicProperties,
    /// The whole body. A body that came in one frame is a zero-copy slice of it.
    pub body: Bytes,
}

/// What went wrong, as (reply code, reason).
pub type ContentError = (u16, &'static str);

/// Content assembly state of one channel.
// The variants are large but short-lived; boxing would cost an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Default)]
pub enum Assembler {
    /// No content in progress.
    #[default]
    Idle,
    /// A content method arrived; its header must come next.
    AwaitingHeader(Method),
    /// The header arrived; body frames are being collected.
    AwaitingBody {
        /// The method.
        method: Method,
        /// The properties.
        properties: BasicProperties,
        /// Bytes still expected.
        remaining: u64,
        /// The body so far.
        body: Body,
    },
}

/// A body collected from one or more frames, copied only when a second frame arrives.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// Nothing yet.
    #[default]
    Empty,
    /// Exactly one frame's payload.
    One(Bytes),
    /// Several payloads, concatenated.
    Many(BytesMut),
}

impl Body {
    fn push(&mut self, part: Bytes, total: u64) {
        *self = match std::mem::take(self) {
            Self::Empty => Self::One(part),
            Self::One(first) => {
                let mut all = BytesMut::with_capacity(total as usize);
                all.extend_from_slice(&first);
                all.extend_from_slice(&part);
                Self::Many(all)
            }
            Self::Many(mut all) => {
                all.extend_from_slice(&part);
                Self::Many(all)
            }
        }
    }

    fn into_bytes(self) -> Bytes {
        match self {
            Self::Empty => Bytes::new(),
            Self::One(b) => b,
            Self::Many(b) => b.freeze(),
        }
    }
}

impl Assembler {
    /// Whether a content method is waiting for its header or body.
    pub fn in_progress(&self) -> bool {
        !matches!(self, Self::Idle)
    }

    /// Starts content for `method`, which must carry content.
    pub fn start(&mut self, method: Method) -> Result<(), ContentError> {
        if self.in_progress() {
            return Err((reply_code::UNEXPECTED_FRAME, "method frame inside content"));
        }
        *self = Self::AwaitingHeader(method);
        Ok(())
    }

    /// Takes a content header. Completes the content at once when the body is empty.
    pub fn header(
        &mut self,
        body_size: u64,
        properties: BasicProperties,
        limits: &Limits,
    ) -> Result<Option<Content>, ContentError> {
        let Self::AwaitingHeader(method) = std::mem::take(self) else {
            return Err((
                reply_code::UNEXPECTED_FRAME,
                "content header without a content method",
            ));
        };
        if body_size > limits.content_bytes_max {
            return Err((
                reply_code::PRECONDITION_FAILED,
                "message size is above the maximum",
            ));
        }
        if body_size == 0 {
            return Ok(Some(Content {
                method,
                properties,
                body: Bytes::new(),
            }));
        }
        *self = Self::AwaitingBody {
            method,
            properties,
            remaining: body_size,
            body: Body::Empty,
        };
        Ok(None)
    }

    /// Takes a body frame. Completes the content when the announced size is reached.
    pub fn body(&mut self, part: Bytes) -> Result<Option<Content>, ContentError> {
        let Self::AwaitingBody {
            remaining, body, ..
        } = self
        else {
            return Err((
                reply_code::UNEXPECTED_FRAME,
                "content body without a content header",
            ));
        };
        let len = part.len() as u64;
        if len > *remaining {
            return Err((
                reply_code::UNEXPECTED_FRAME,
                "content body larger than announced",
            ));
        }
        *remaining -= len;
        let total = *remaining + len;
        body.push(part, total);
        if *remaining > 0 {
            return Ok(None);
        }
        let Self::AwaitingBody {
            method,
            properties,
            body,
            ..
        } = std::mem::take(self)
        else {
            unreachable!("checked above")
        };
        Ok(Some(Content {
            method,
            properties,
            body: body.into_bytes(),
        }))
    }
}
