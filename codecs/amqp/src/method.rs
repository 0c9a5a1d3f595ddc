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
