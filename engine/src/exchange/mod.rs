//! Exchanges and their bindings.

pub(crate) mod routing;

use serde::{Deserialize, Serialize};

use crate::error::BrokerError;
use crate::value::{Table, Value, table_get};

/// The routing algorithm of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExchangeKind {
    /// Routing key equals binding key.
    Direct,
    /// Every binding.
    Fanout,
    /// Dotted patterns with `*` and `#`.
    Topic,
    /// Header values against binding arguments.
    Headers,
}

impl ExchangeKind {
    /// Parses a type name; unknown types are RabbitMQ's COMMAND_INVALID.
    pub fn parse(name: &str) -> Result<Self, BrokerError> {
        Ok(match name {
            "direct" => Self::Direct,
            "fanout" => Self::Fanout,
            "topic" => Self::Topic,
            "headers" => Self::Headers,
            other => {
                return Err(BrokerError::CommandInvalid(format!(
                    "unknown exchange type '{other}'"
                )));
            }
        })
    }

    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Fanout => "fanout",
            Self::Topic => "topic",
            Self::Headers => "headers",
        }
    }
}

/// What a binding points to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Destination {
    /// A queue, by name.
    Queue(String),
    /// An exchange, by name.
    Exchange(String),
}

/// A binding from an exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// Where matching messages go.
    pub destination: Destination,
    /// Binding key.
    pub routing_key: String,
    /// Binding arguments (headers exchanges match on them).
    pub arguments: Table,
    /// Both ends are durable, so the binding is stored.
    #[serde(default)]
    pub durable: bool,
}

impl Binding {
    pub(crate) fn same(&self, dest: &Destination, key: &str, args: &Table) -> bool {
        self.destination == *dest
            && self.routing_key == key
            && tables_equivalent(&self.arguments, args)
    }
}

fn tables_equivalent(a: &Table, b: &Table) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|(k, v)| table_get(b, k).is_some_and(|w| v.equivalent(w)))
}

/// An exchange with its bindings (as source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    /// Name.
    pub name: String,
    /// Routing algorithm.
    pub kind: ExchangeKind,
    /// Survives a restart.
    pub durable: bool,
    /// Deleted when its last binding goes away.
    pub auto_delete: bool,
    /// Cannot be published to directly.
    pub internal: bool,
    /// Declared arguments.
    pub arguments: Table,
    /// Bindings with this exchange as source, in the order they were made.
    #[serde(skip)]
    pub bindings: Vec<Binding>,
}

impl Exchange {
    /// The `alternate-exchange` argument.
    pub fn alternate(&self) -> Option<&str> {
        table_get(&self.arguments, "alternate-exchange").and_then(Value::as_str)
    }
}
