//! Command-line parsing for the `portask` binary.

use std::path::PathBuf;

use crate::config::Overrides;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the broker.
    Serve {
        /// `--config FILE`.
        config: Option<PathBuf>,
        /// Flags that override the configuration.
        overrides: Box<OverridesEq>,
    },
    /// A client command (`produce`, `consume`, `topics`, ...) with the arguments after it;
    /// the command parses them itself.
    Tool {
        /// The command's name.
        name: String,
        /// The arguments after it.
        args: Vec<String>,
    },
    /// Print usage.
    Help,
    /// Print the version.
    Version,
}

/// [`Overrides`] with equality, for tests of the parser.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OverridesEq {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--kafka-addr`.
    pub kafka_addr: Option<String>,
    /// `--amqp-addr`.
    pub amqp_addr: Option<String>,
    /// `--portask-addr`.
    pub portask_addr: Option<String>,
    /// `--admin-addr`.
    pub admin_addr: Option<String>,
}

impl From<&OverridesEq> for Overrides {
    fn from(o: &OverridesEq) -> Self {
        Self {
            data_dir: o.data_dir.clone(),
            kafka_addr: o.kafka_addr.clone(),
            amqp_addr: o.amqp_addr.clone(),
            portask_addr: o.portask_addr.clone(),
            admin_addr: o.admin_addr.clone(),
        }
    }
}

/// Usage text.
pub const USAGE: &str = "\
portask — a message broker that speaks Kafka, AMQP 0-9-1 and its own protocol

USAGE:
    portask [serve] [OPTIONS]
    portask COMMAND [ARGS]     talk to a running broker over the Portask protocol

COMMANDS (each has --help):
    produce TOPIC          publish lines from stdin or a file (or --exchange X --routing-key R)
    consume TOPIC          print messages of a topic (or --queue Q), as text or JSON
    topics                 list | create NAME [--partitions N] | delete NAME | describe NAME
    queues                 list | declare NAME [--durable] | delete NAME
    exchanges              list | declare NAME --type T | delete NAME | bind | unbind | bindings
    groups                 list | describe GROUP | delete GROUP
    bench                  load generator: msg/s, MB/s, latency percentiles
    Client commands take --addr HOST:PORT (default 127.0.0.1:7070, env PORTASK_ADDR),
    --user and --password. Exit codes: 0 ok, 1 broker error, 2 usage error, 3 cannot connect.

SERVE OPTIONS:
    --config FILE          TOML config (defaults: configs/portask.toml, built in)
    --data-dir DIR         where the embedded log keeps its files (default ./data)
    --kafka-addr HOST:PORT Kafka listener (default 127.0.0.1:9092)
    --amqp-addr HOST:PORT  AMQP 0-9-1 listener (default 127.0.0.1:5672)
    --portask-addr HOST:PORT  Portask protocol listener (default 127.0.0.1:7070)
    --admin-addr HOST:PORT admin HTTP listener: /healthz, /metrics (default 127.0.0.1:9644)
    -h, --help             print this help
    -V, --version          print the version

Every config key can also be set with PORTASK_<SECTION>_<KEY>, e.g.
PORTASK_KAFKA_DEFAULT_PARTITIONS=4. Flags win over variables, variables over the file.
";

/// The client commands, handled by the binary's `tool` module.
pub const TOOL_COMMANDS: &[&str] = &[
    "produce",
    "consume",
    "topics",
    "queues",
    "exchanges",
    "groups",
    "bench",
];

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut args = args.into_iter().peekable();
    if let Some(first) = args.peek()
        && TOOL_COMMANDS.contains(&first.as_str())
    {
        let name = args.next().unwrap_or_default();
        return Ok(Command::Tool {
            name,
            args: args.collect(),
        });
    }
    if args.peek().is_some_and(|a| a == "serve") {
        args.next();
    }
    let mut config = None;
    let mut o = OverridesEq::default();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let slot: &mut Option<String> = match name.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--kafka-addr" => &mut o.kafka_addr,
            "--amqp-addr" => &mut o.amqp_addr,
            "--portask-addr" => &mut o.portask_addr,
            "--admin-addr" => &mut o.admin_addr,
            "--config" | "--data-dir" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or(format!("{name} needs a value"))?;
                if name == "--config" {
                    config = Some(PathBuf::from(value));
                } else {
                    o.data_dir = Some(PathBuf::from(value));
                }
                continue;
            }
            _ if !arg.starts_with('-') => {
                return Err(format!(
                    "unknown command `{arg}` (commands: serve, {}; see portask --help)",
                    TOOL_COMMANDS.join(", ")
                ));
            }
            _ => return Err(format!("unknown argument `{arg}` (see portask --help)")),
        };
        *slot = Some(
            inline
                .or_else(|| args.next())
                .ok_or(format!("{name} needs a value"))?,
        );
    }
    Ok(Command::Serve {
        config,
        overrides: Box::new(o),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_serve_and_flags() {
        let Command::Serve { config, overrides } = parse(args(
            "serve --data-dir /d --kafka-addr=127.0.0.1:1 --config c.toml",
        ))
        .unwrap() else {
            panic!("not serve")
        };
        assert_eq!(config, Some(PathBuf::from("c.toml")));
        assert_eq!(overrides.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(overrides.kafka_addr.as_deref(), Some("127.0.0.1:1"));
        assert!(matches!(parse(args("")).unwrap(), Command::Serve { .. }));
        assert_eq!(parse(args("--help")).unwrap(), Command::Help);
        assert!(parse(args("--kafka-addr")).is_err());
        assert!(parse(args("--bogus")).is_err());
        assert!(parse(args("bogus")).is_err());
    }

    #[test]
    fn client_commands_keep_their_arguments() {
        assert_eq!(
            parse(args("topics create t --partitions 3")).unwrap(),
            Command::Tool {
                name: "topics".into(),
                args: args("create t --partitions 3"),
            }
        );
        // Only the first word picks a client command.
        assert!(parse(args("serve produce")).is_err());
    }
}
