//! Facts about methods from the spec: who sends them, whether they are synchronous, which
//! methods answer them, whether they carry content.

use crate::generated::{METHODS, Method};

/// What the spec says about one method. The table is [`METHODS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodInfo {
    /// The class id.
    pub class_id: u16,
    /// The method id.
    pub method_id: u16,
    /// `class.method`, e.g. `basic.publish`.
    pub name: &'static str,
    /// The client may send it (the XML's `<chassis name="server">`).
    pub sent_by_client: bool,
    /// The server may send it (the XML's `<chassis name="client">`).
    pub sent_by_server: bool,
    /// The sender waits for one of [`MethodInfo::responses`].
    pub synchronous: bool,
    /// A content header and body frames follow the method.
    pub content: bool,
    /// Method ids, in the same class, of the methods that answer this one.
    pub responses: &'static [u16],
}

impl MethodInfo {
    /// The entry for (`class_id`, `method_id`), if the method exists.
    pub fn lookup(class_id: u16, method_id: u16) -> Option<&'static Self> {
        METHODS
            .binary_search_by_key(&(class_id, method_id), |m| (m.class_id, m.method_id))
            .ok()
            .map(|i| &METHODS[i])
    }
}

impl Method {
    /// What the spec says about this method.
    pub fn info(&self) -> &'static MethodInfo {
        MethodInfo::lookup(self.class_id(), self.method_id()).expect("every method is in METHODS")
    }

    /// `class.method`, e.g. `basic.publish`.
    pub fn name(&self) -> &'static str {
        self.info().name
    }

    /// Whether the client may send this method.
    pub fn sent_by_client(&self) -> bool {
        self.info().sent_by_client
    }

    /// Whether the server may send this method.
    pub fn sent_by_server(&self) -> bool {
        self.info().sent_by_server
    }

    /// Whether the sender waits for a reply.
    pub fn is_synchronous(&self) -> bool {
        self.info().synchronous
    }

    /// Method ids, in the same class, of the replies.
    pub fn responses(&self) -> &'static [u16] {
        self.info().responses
    }

    /// Whether a content header and body follow (basic.publish, deliver, return, get-ok).
    pub fn has_content(&self) -> bool {
        self.info().content
    }
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};

    use crate::generated::*;
    use crate::table::FieldValue;
    use crate::wire::Reader;

    #[test]
    fn start_ok_as_pika_sends_it() {
        let mut bytes = vec![0, 10, 0, 11, 0, 0, 0, 17, 7];
        bytes.extend_from_slice(b"product");
        bytes.extend_from_slice(&[b'S', 0, 0, 0, 4]);
        bytes.extend_from_slice(b"pika");
        bytes.extend_from_slice(b"\x05PLAIN\x00\x00\x00\x0c\x00guest\x00guest\x05en_US");
        let mut r = Reader::new(Bytes::from(bytes.clone()));
        let (c, m) = (r.u16().unwrap(), r.u16().unwrap());
        let method = Method::decode(c, m, &mut r).unwrap();
        r.finish().unwrap();
        let Method::ConnectionStartOk(s) = &method else {
            panic!("{method:?}")
        };
        assert_eq!(s.mechanism, "PLAIN");
        assert_eq!(&s.response[..], b"\0guest\0guest");
        let product = s.client_properties.get("product");
        assert_eq!(
            product,
            Some(&FieldValue::LongString(Bytes::from_static(b"pika")))
        );
        assert_eq!(method.name(), "connection.start-ok");
        assert!(method.sent_by_client() && !method.sent_by_server());
        let mut out = BytesMut::new();
        method.encode(&mut out);
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn bits_are_packed_lsb_first() {
        let q = QueueDeclare {
            queue: "q".into(),
            durable: true,
            nowait: true,
            ..Default::default()
        };
        let mut out = BytesMut::new();
        Method::from(q).encode(&mut out);
        assert_eq!(
            &out[..],
            &[0, 50, 0, 10, 0, 0, 1, b'q', 0b1_0010, 0, 0, 0, 0]
        );
        let info = Method::from(BasicGet::default());
        assert_eq!(info.responses(), &[71, 72]);
        assert!(Method::from(BasicDeliver::default()).has_content());
        assert!(BasicReject::default().requeue, "spec default");
    }

    #[test]
    fn properties_use_the_flag_bits() {
        let p = BasicProperties {
            content_type: Some("a".into()),
            delivery_mode: Some(2),
            cluster_id: Some(String::new()),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        p.encode(&mut out);
        assert_eq!(&out[..], &[0x90, 0x04, 1, b'a', 2, 0]);
        let back = BasicProperties::decode(&mut Reader::new(out.freeze())).unwrap();
        assert_eq!(back, p);
        let bad = BasicProperties::decode(&mut Reader::new(Bytes::from_static(&[0, 1])));
        assert!(bad.is_err());
    }
}
