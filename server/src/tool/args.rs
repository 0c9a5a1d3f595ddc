//! A small argument parser for the client commands: `--name VALUE`, `--name=VALUE`,
//! switches, repeated options and positionals, with clap-like error messages.

use std::collections::HashMap;
use std::str::FromStr;

use super::Failure;

/// Options every client command takes.
pub(crate) const CONNECTION_OPTIONS: &str = "\
CONNECTION:
    --addr HOST:PORT       broker's Portask listener (default 127.0.0.1:7070, env PORTASK_ADDR)
    --user USER            user name (env PORTASK_USER); loopback clients may omit it
    --password PASSWORD    password (env PORTASK_PASSWORD)
    --timeout SECONDS      how long to wait for each answer (default 30)
    -h, --help             print this help
";

/// What a command accepts.
pub(crate) struct Spec {
    /// The command's name as typed, e.g. `"topics create"`.
    pub(crate) command: &'static str,
    /// The one-line usage, e.g. `"portask topics create NAME [--partitions N]"`.
    pub(crate) usage: &'static str,
    /// The full help text (without the connection options).
    pub(crate) help: &'static str,
    /// Options that take a value.
    pub(crate) values: &'static [&'static str],
    /// Options that take no value.
    pub(crate) switches: &'static [&'static str],
}

const COMMON_VALUES: &[&str] = &["--addr", "--user", "--password", "--timeout"];

/// A parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    values: HashMap<String, Vec<String>>,
    switches: Vec<String>,
    /// Arguments that are not options, in order.
    pub(crate) positionals: Vec<String>,
    command: &'static str,
    usage: &'static str,
}

impl Spec {
    /// Parses `args`; `--help` comes back as [`Failure::Help`].
    pub(crate) fn parse(&self, args: &[String]) -> Result<Parsed, Failure> {
        let mut p = Parsed {
            command: self.command,
            usage: self.usage,
            ..Parsed::default()
        };
        let mut it = args.iter();
        let mut only_positionals = false;
        while let Some(arg) = it.next() {
            if only_positionals || !arg.starts_with('-') || arg == "-" {
                p.positionals.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positionals = true;
                continue;
            }
            if arg == "-h" || arg == "--help" {
                return Err(Failure::Help(format!(
                    "{}\n{CONNECTION_OPTIONS}",
                    self.help
                )));
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (arg.as_str(), None),
            };
            if self.switches.contains(&name) {
                if inline.is_some() {
                    return Err(p.usage_error(format!("option '{name}' takes no value")));
                }
                p.switches.push(name.to_owned());
            } else if self.values.contains(&name) || COMMON_VALUES.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => it.next().cloned().ok_or_else(|| {
                        p.usage_error(format!(
                            "a value is required for '{name}' but none was supplied"
                        ))
                    })?,
                };
                p.values.entry(name.to_owned()).or_default().push(value);
            } else {
                return Err(p.usage_error(format!("unexpected argument '{arg}' found")));
            }
        }
        Ok(p)
    }
}

impl Parsed {
    /// A usage error for this command, with its usage line and a hint.
    pub(crate) fn usage_error(&self, message: impl Into<String>) -> Failure {
        Failure::Usage {
            message: message.into(),
            usage: self.usage,
            command: self.command,
        }
    }

    /// The last value of an option.
    pub(crate) fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name)?.last().map(String::as_str)
    }

    /// Every value of a repeated option, in order.
    pub(crate) fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether a switch was given.
    pub(crate) fn switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }

    /// An option's value parsed as a number (or anything `FromStr`).
    pub(crate) fn number<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, Failure> {
        match self.value(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                self.usage_error(format!("invalid value '{v}' for '{name}': expected {what}"))
            }),
        }
    }

    /// The positional at `index`, or a usage error naming it.
    pub(crate) fn positional(&self, index: usize, name: &str) -> Result<&str, Failure> {
        self.positionals
            .get(index)
            .map(String::as_str)
            .ok_or_else(|| {
                self.usage_error(format!("the required argument {name} was not provided"))
            })
    }

    /// A usage error when more than `max` positionals were given.
    pub(crate) fn at_most(&self, max: usize) -> Result<(), Failure> {
        match self.positionals.get(max) {
            Some(extra) => Err(self.usage_error(format!("unexpected argument '{extra}' found"))),
            None => Ok(()),
        }
    }

    /// A usage error when more than one of `names` was given.
    pub(crate) fn exclusive(&self, names: &[&str]) -> Result<(), Failure> {
        let given: Vec<_> = names
            .iter()
            .filter(|n| self.switch(n) || self.value(n).is_some())
            .collect();
        if given.len() > 1 {
            return Err(self.usage_error(format!(
                "the argument '{}' cannot be used with '{}'",
                given[0], given[1]
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        command: "demo",
        usage: "portask demo X",
        help: "demo",
        values: &["--partition", "--header"],
        switches: &["--durable"],
    };

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_values_switches_and_positionals() {
        let p = SPEC
            .parse(&args(
                "t --partition=3 --header a=1 --header b=2 --durable --addr h:1 -- -x",
            ))
            .unwrap();
        assert_eq!(p.positionals, ["t", "-x"]);
        assert_eq!(
            p.number::<i32>("--partition", "an integer").unwrap(),
            Some(3)
        );
        assert_eq!(p.values("--header"), ["a=1", "b=2"]);
        assert!(p.switch("--durable"));
        assert_eq!(p.value("--addr"), Some("h:1"));
    }

    #[test]
    fn reports_usage_errors() {
        assert!(matches!(
            SPEC.parse(&args("--bogus")),
            Err(Failure::Usage { .. })
        ));
        assert!(matches!(
            SPEC.parse(&args("--partition")),
            Err(Failure::Usage { .. })
        ));
        assert!(matches!(
            SPEC.parse(&args("--durable=1")),
            Err(Failure::Usage { .. })
        ));
        assert!(matches!(SPEC.parse(&args("-h")), Err(Failure::Help(_))));
        let p = SPEC.parse(&args("--partition x")).unwrap();
        assert!(p.number::<i32>("--partition", "an integer").is_err());
        assert!(p.positional(0, "TOPIC").is_err());
    }
}
