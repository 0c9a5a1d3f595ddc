//! Users, passwords and per-vhost permissions, as RabbitMQ checks them.

use std::collections::BTreeMap;
use std::net::IpAddr;

use regex::Regex;

use crate::config::{AmqpConfig, ConfigError};

/// What an operation does to a resource, RabbitMQ's three permission kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Declare or delete.
    Configure,
    /// Publish to, or bind a queue to (write on the queue side).
    Write,
    /// Consume, get, purge, or bind from (read on the exchange side).
    Read,
}

impl Access {
    /// The word RabbitMQ uses in its ACCESS_REFUSED texts.
    pub fn word(self) -> &'static str {
        match self {
            Self::Configure => "configure",
            Self::Write => "write",
            Self::Read => "read",
        }
    }
}

#[derive(Debug)]
struct Permissions {
    configure: Regex,
    write: Regex,
    read: Regex,
}

#[derive(Debug)]
struct User {
    password: String,
    loopback_only: bool,
    permissions: BTreeMap<String, Permissions>,
}

/// The configured users.
#[derive(Debug, Default)]
pub struct Users {
    users: BTreeMap<String, User>,
}

impl Users {
    /// Compiles the users of `[amqp]`; an invalid permission pattern names its user and vhost.
    pub fn from_config(config: &AmqpConfig) -> Result<Self, ConfigError> {
        let mut users = BTreeMap::new();
        for u in &config.users {
            let mut permissions = BTreeMap::new();
            for (vhost, p) in &u.permissions {
                let compile = |what: &str, pattern: &str| {
                    Regex::new(pattern).map_err(|e| ConfigError::Invalid {
                        origin: String::new(),
                        message: format!(
                            "`amqp.users.permissions` {what} pattern of user '{}' on vhost '{vhost}': {e}",
                            u.name
                        ),
                    })
                };
                permissions.insert(
                    vhost.clone(),
                    Permissions {
                        configure: compile("configure", &p.configure)?,
                        write: compile("write", &p.write)?,
                        read: compile("read", &p.read)?,
                    },
                );
            }
            let user = User {
                password: u.password.clone(),
                loopback_only: u.loopback_only,
                permissions,
            };
            users.insert(u.name.clone(), user);
        }
        Ok(Self { users })
    }

    /// Checks a login. The error is the text RabbitMQ sends with ACCESS_REFUSED.
    pub fn authenticate(
        &self,
        mechanism: &str,
        name: &str,
        password: &str,
        peer: IpAddr,
    ) -> Result<(), String> {
        let refused = || {
            format!(
                "Login was refused using authentication mechanism {mechanism}. For details see the \
                 broker logfile."
            )
        };
        let user = self.users.get(name).ok_or_else(refused)?;
        if user.password != password {
            return Err(refused());
        }
        if user.loopback_only && !peer.is_loopback() {
            return Err(format!("User '{name}' can only connect via localhost"));
        }
        Ok(())
    }

    /// Whether `user` may open `vhost`; the error is RabbitMQ's NOT_ALLOWED text.
    pub fn may_open(&self, user: &str, vhost: &str) -> Result<(), String> {
        match self.users.get(user) {
            Some(u) if u.permissions.contains_key(vhost) => Ok(()),
            _ => Err(format!(
                "access to vhost '{vhost}' refused for user '{user}'"
            )),
        }
    }

    /// Checks `access` to a resource; the error is RabbitMQ's ACCESS_REFUSED text.
    /// `kind` is "exchange" or "queue".
    pub fn check(
        &self,
        user: &str,
        vhost: &str,
        access: Access,
        kind: &str,
        name: &str,
    ) -> Result<(), String> {
        let allowed = self
            .users
            .get(user)
            .and_then(|u| u.permissions.get(vhost))
            .is_some_and(|p| {
                let re = match access {
                    Access::Configure => &p.configure,
                    Access::Write => &p.write,
                    Access::Read => &p.read,
                };
                re.is_match(name)
            });
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "access to {kind} '{name}' in vhost '{vhost}' refused for user '{user}'"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    fn users() -> Users {
        let c = Config::load(None, [], &Overrides::default()).unwrap();
        Users::from_config(&c.amqp).unwrap()
    }

    #[test]
    fn guest_only_from_loopback() {
        let u = users();
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let remote: IpAddr = "10.1.2.3".parse().unwrap();
        assert!(u.authenticate("PLAIN", "guest", "guest", local).is_ok());
        let e = u
            .authenticate("PLAIN", "guest", "guest", remote)
            .unwrap_err();
        assert_eq!(e, "User 'guest' can only connect via localhost");
        let e = u.authenticate("PLAIN", "guest", "nope", local).unwrap_err();
        assert!(e.starts_with("Login was refused using authentication mechanism PLAIN"));
        assert!(u.authenticate("AMQPLAIN", "nobody", "x", local).is_err());
    }

    #[test]
    fn permissions_are_checked_per_vhost() {
        let u = users();
        assert!(u.may_open("guest", "/").is_ok());
        assert_eq!(
            u.may_open("guest", "other").unwrap_err(),
            "access to vhost 'other' refused for user 'guest'"
        );
        assert!(
            u.check("guest", "/", Access::Write, "exchange", "amq.direct")
                .is_ok()
        );
        assert!(
            u.check("guest", "other", Access::Read, "queue", "q")
                .is_err()
        );
    }
}
