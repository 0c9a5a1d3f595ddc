//! Channel methods and content frames of an open connection.

use bytes::{Bytes, BytesMut};

use super::{Channel, ServerConn, ServerEvent, State};
use crate::content::Content;
use crate::error::CloseReason;
use crate::generated::{
    BasicProperties, ChannelClose, ChannelCloseOk, ChannelOpenOk, Method, class_id, reply_code,
};

impl ServerConn {
    /// Checks that a frame on `channel` (not 0) may be read now. `None` means: ignore it.
    fn channel_frame_ok(
        &mut self,
        channel: u16,
        ids: (u16, u16),
        out: &mut BytesMut,
    ) -> Option<()> {
        match self.state {
            State::Open => {}
            State::Closing { .. } | State::Closed => return None,
            _ => {
                let why = format!("frame on channel {channel} before connection.open-ok");
                let r = CloseReason::new(reply_code::UNEXPECTED_FRAME, &why, ids.0, ids.1);
                self.hard_error(r, out);
                return None;
            }
        }
        if channel > self.negotiated.channel_max {
            let why = format!("channel {channel} is above channel_max");
            let r = CloseReason::new(reply_code::CHANNEL_ERROR, &why, ids.0, ids.1);
            self.hard_error(r, out);
            return None;
        }
        Some(())
    }

    pub(super) fn on_channel_method(&mut self, channel: u16, method: Method, out: &mut BytesMut) {
        let ids = (method.class_id(), method.method_id());
        if self.channel_frame_ok(channel, ids, out).is_none() {
            return;
        }
        if ids.0 == class_id::CONNECTION || !method.sent_by_client() {
            let why = format!("{} is not a client method on a channel", method.name());
            let r = CloseReason::new(reply_code::COMMAND_INVALID, &why, ids.0, ids.1);
            return self.hard_error(r, out);
        }
        let Some(ch) = self.channels.get_mut(&channel) else {
            return self.on_unopened_channel(channel, method, out);
        };
        if ch.content.in_progress() {
            let why = format!(
                "expected content header for class 60, got {}",
                method.name()
            );
            let r = CloseReason::new(reply_code::UNEXPECTED_FRAME, &why, ids.0, ids.1);
            return self.hard_error(r, out);
        }
        if ch.closing {
            if let Method::ChannelClose(_) = method {
                self.write(channel, &ChannelCloseOk {}.into(), out);
            }
            if matches!(method, Method::ChannelClose(_) | Method::ChannelCloseOk(_)) {
                self.channels.remove(&channel);
                self.events
                    .push_back(ServerEvent::ChannelClosed { channel });
            }
            return;
        }
        match method {
            Method::ChannelOpen(_) => {
                let why = format!("second 'channel.open' seen on channel {channel}");
                let r = CloseReason::new(reply_code::CHANNEL_ERROR, &why, ids.0, ids.1);
                self.hard_error(r, out);
            }
            Method::ChannelClose(_) => {
                self.write(channel, &ChannelCloseOk {}.into(), out);
                self.channels.remove(&channel);
                self.events
                    .push_back(ServerEvent::ChannelClosed { channel });
            }
            // A close-ok with no close of ours outstanding: nothing to finish.
            Method::ChannelCloseOk(_) => {}
            m @ Method::BasicPublish(_) => {
                ch.content.start(m).expect("no content in progress");
            }
            method => self
                .events
                .push_back(ServerEvent::Method { channel, method }),
        }
    }

    fn on_unopened_channel(&mut self, channel: u16, method: Method, out: &mut BytesMut) {
        match method {
            Method::ChannelOpen(_) => {
                self.channels.insert(channel, Channel::default());
                self.write(channel, &ChannelOpenOk::default().into(), out);
                self.events
                    .push_back(ServerEvent::ChannelOpened { channel });
            }
            // RabbitMQ answers a close of a channel it does not know with close-ok.
            Method::ChannelClose(_) => self.write(channel, &ChannelCloseOk {}.into(), out),
            m => {
                let why = "expected 'channel.open'";
                let (c, id) = (m.class_id(), m.method_id());
                self.hard_error(CloseReason::new(reply_code::CHANNEL_ERROR, why, c, id), out);
            }
        }
    }

    /// Finds the open channel a content frame belongs to, or answers the error.
    fn content_channel(&mut self, channel: u16, out: &mut BytesMut) -> Option<&mut Channel> {
        let ids = (class_id::BASIC, 0);
        if channel == 0 {
            if matches!(self.state, State::Closing { .. } | State::Closed) {
                return None;
            }
            let why = "content frame on channel 0";
            let r = CloseReason::new(reply_code::UNEXPECTED_FRAME, why, ids.0, ids.1);
            self.hard_error(r, out);
            return None;
        }
        self.channel_frame_ok(channel, ids, out)?;
        if !self.channels.contains_key(&channel) {
            let why = "expected 'channel.open'";
            let r = CloseReason::new(reply_code::CHANNEL_ERROR, why, ids.0, ids.1);
            self.hard_error(r, out);
            return None;
        }
        self.channels.get_mut(&channel).filter(|c| !c.closing)
    }

    pub(super) fn on_header(
        &mut self,
        channel: u16,
        body_size: u64,
        properties: BasicProperties,
        out: &mut BytesMut,
    ) {
        let limits = self.cfg.limits;
        let Some(ch) = self.content_channel(channel, out) else {
            return;
        };
        let result = ch.content.header(body_size, properties, &limits);
        self.on_content_result(channel, result, out);
    }

    pub(super) fn on_body(&mut self, channel: u16, payload: Bytes, out: &mut BytesMut) {
        let Some(ch) = self.content_channel(channel, out) else {
            return;
        };
        let result = ch.content.body(payload);
        self.on_content_result(channel, result, out);
    }

    fn on_content_result(
        &mut self,
        channel: u16,
        result: Result<Option<Content>, (u16, &'static str)>,
        out: &mut BytesMut,
    ) {
        match result {
            Ok(None) => {}
            Ok(Some(Content {
                method: Method::BasicPublish(method),
                properties,
                body,
            })) => {
                let publish = ServerEvent::Publish {
                    channel,
                    method,
                    properties,
                    body,
                };
                self.events.push_back(publish);
            }
            Ok(Some(_)) => unreachable!("the server only assembles basic.publish"),
            Err((code, why)) if !reply_code::is_hard_error(code) => {
                let r = CloseReason::new(code, why, class_id::BASIC, 40);
                self.soft_error(channel, r, out);
            }
            Err((code, why)) => {
                self.hard_error(CloseReason::new(code, why, class_id::BASIC, 0), out);
            }
        }
    }

    /// A soft error: `channel.close`, then the channel ignores frames until close-ok.
    pub(super) fn soft_error(&mut self, channel: u16, reason: CloseReason, out: &mut BytesMut) {
        if !matches!(self.state, State::Open) {
            return;
        }
        let Some(ch) = self.channels.get_mut(&channel).filter(|c| !c.closing) else {
            return;
        };
        ch.closing = true;
        ch.content = Default::default();
        let close = ChannelClose {
            reply_code: reason.code,
            reply_text: reason.text,
            class_id: reason.class_id,
            method_id: reason.method_id,
        };
        self.write(channel, &close.into(), out);
    }
}
