//! Parsing of the SASL responses clients send in `connection.start-ok`.

use bytes::Bytes;

use crate::table::FieldTable;
use crate::wire::Reader;

/// A user name and password read from a SASL response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

/// Reads a PLAIN response (RFC 4616): `[authzid] \0 user \0 password`.
pub fn parse_plain(response: &[u8]) -> Option<Credentials> {
    let mut parts = response.split(|b| *b == 0);
    let (_authzid, user, pass) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(Credentials {
        username: String::from_utf8(user.to_vec()).ok()?,
        password: String::from_utf8(pass.to_vec()).ok()?,
    })
}

/// Reads an AMQPLAIN response: field-table entries without the size prefix, with the long
/// strings `LOGIN` and `PASSWORD`.
pub fn parse_amqplain(response: &Bytes, table_depth_max: usize) -> Option<Credentials> {
    let mut r = Reader::with_table_depth(response.clone(), table_depth_max);
    let table = FieldTable::decode_entries(&mut r).ok()?;
    let text = |key| {
        let bytes = table.get(key)?.as_bytes()?;
        String::from_utf8(bytes.to_vec()).ok()
    };
    Some(Credentials {
        username: text("LOGIN")?,
        password: text("PASSWORD")?,
    })
}

/// The PLAIN response for `username` and `password`.
pub fn plain_response(username: &str, password: &str) -> Bytes {
    Bytes::from(format!("\0{username}\0{password}"))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::table::FieldValue;

    #[test]
    fn plain_and_amqplain() {
        let c = parse_plain(b"\0guest\0guest").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("guest", "guest")
        );
        assert_eq!(parse_plain(b"admin\0bob\0pw").unwrap().username, "bob");
        assert_eq!(parse_plain(b"guest"), None);
        assert_eq!(parse_plain(b"\0a\0b\0c"), None);
        let mut t = FieldTable::new();
        t.insert("LOGIN", FieldValue::LongString(Bytes::from_static(b"u")));
        t.insert("PASSWORD", FieldValue::LongString(Bytes::from_static(b"p")));
        let mut out = BytesMut::new();
        t.encode_entries(&mut out);
        let c = parse_amqplain(&out.freeze(), 16).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert_eq!(parse_amqplain(&Bytes::from_static(b"\x05LOGIN"), 16), None);
    }
}
