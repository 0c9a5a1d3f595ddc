//! Which request and response header versions go with an API version.
//!
//! Request header v1 for non-flexible request versions and v2 for flexible ones; its
//! `client_id` stays a classic nullable `int16` string even in v2. Response header v0 for
//! non-flexible versions and v1 for flexible ones, except that ApiVersions responses always
//! use v0 so that a client can read the reply to a version it guessed (KIP-511).

use crate::generated::ApiKey;

/// The request header version of a request of `api_key` in `api_version`. Unknown keys get
/// the non-flexible v1.
pub fn request_header_version(api_key: i16, api_version: i16) -> i16 {
    match ApiKey::from_i16(api_key) {
        Some(k) if api_version >= k.flexible_min() => 2,
        _ => 1,
    }
}

/// The response header version of a response to `api_key` in `api_version`.
pub fn response_header_version(api_key: i16, api_version: i16) -> i16 {
    match ApiKey::from_i16(api_key) {
        Some(ApiKey::ApiVersions) => 0,
        Some(k) if api_version >= k.flexible_min() => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_versions() {
        assert_eq!(request_header_version(18, 2), 1);
        assert_eq!(request_header_version(18, 3), 2);
        assert_eq!(response_header_version(18, 3), 0);
        assert_eq!(request_header_version(0, 8), 1);
        assert_eq!(request_header_version(0, 9), 2);
        assert_eq!(response_header_version(0, 9), 1);
        assert_eq!(response_header_version(3, 8), 0);
        assert_eq!(response_header_version(3, 9), 1);
        assert_eq!(request_header_version(9999, 0), 1);
    }
}
