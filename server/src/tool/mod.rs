//! The client commands of the `portask` binary (`produce`, `consume`, `topics`, `queues`,
//! `exchanges`, `groups`, `bench`): they talk to a running broker over the Portask protocol
//! with `portask-client`.
//!
//! Exit codes: 0 success, 1 the broker refused a request (or the connection failed midway),
//! 2 usage error, 3 cannot connect.

mod admin;
mod args;
mod bench;
mod consume;
mod format;
mod produce;

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use portask_client::{Client, ClientError, ClientOptions, code_name};

use args::Parsed;

/// The broker address when neither `--addr` nor `PORTASK_ADDR` is given.
pub(crate) const DEFAULT_ADDR: &str = "127.0.0.1:7070";

/// Environment variables the client commands read (not broker configuration).
pub(crate) const ENV_VARS: &[&str] = &["PORTASK_ADDR", "PORTASK_USER", "PORTASK_PASSWORD"];

/// Why a command stopped.
#[derive(Debug)]
pub(crate) enum Failure {
    /// `--help` was asked for: print this and succeed.
    Help(String),
    /// The command line is wrong.
    Usage {
        message: String,
        usage: &'static str,
        command: &'static str,
    },
    /// A client call failed, talking to `addr`.
    Client { error: ClientError, addr: String },
    /// Something local failed (a file, stdout).
    Local(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Local(e.to_string())
    }
}

/// Runs client command `name` with the arguments after it.
pub(crate) fn run(name: &str, args: &[String]) -> ExitCode {
    let result = match name {
        "produce" => produce::run(args),
        "consume" => consume::run(args),
        "topics" | "queues" | "exchanges" | "groups" => admin::run(name, args),
        "bench" => bench::run(args),
        _ => Err(Failure::Local(format!("unknown command {name}"))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => report(f),
    }
}

fn report(f: Failure) -> ExitCode {
    match f {
        Failure::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Failure::Usage {
            message,
            usage,
            command,
        } => {
            eprintln!(
                "error: {message}\n\nUsage: {usage}\n\nFor more information, try 'portask {command} --help'."
            );
            ExitCode::from(2)
        }
        Failure::Client {
            error: ClientError::Connect { addr, source },
            ..
        } => {
            eprintln!(
                "portask: cannot connect to the broker at {addr}: {source}\n\
                 hint: is a broker running there? Start one with `portask serve` (its Portask \
                 listener is 127.0.0.1:7070 by default), or point --addr / PORTASK_ADDR at yours."
            );
            ExitCode::from(3)
        }
        Failure::Client { error, addr } => {
            eprintln!("portask: {}", describe(&error, &addr));
            ExitCode::from(1)
        }
        Failure::Local(message) => {
            eprintln!("portask: {message}");
            ExitCode::from(1)
        }
    }
}

/// A message for a client error a shell user can act on.
fn describe(error: &ClientError, addr: &str) -> String {
    match error {
        ClientError::Broker { code, message } => {
            let hint = match *code {
                portask_client::code::AUTH_FAILED => {
                    "\nhint: pass --user and --password (or PORTASK_USER / PORTASK_PASSWORD)"
                }
                portask_client::code::UNKNOWN_TOPIC => {
                    "\nhint: `portask topics list` shows the topics; `portask topics create NAME` makes one"
                }
                portask_client::code::UNKNOWN_QUEUE => {
                    "\nhint: `portask queues list` shows the queues; `portask queues declare NAME` makes one"
                }
                _ if error.is_retriable() => "\nhint: this is temporary; try again",
                _ => "",
            };
            format!(
                "broker error {} ({code}): {message}{hint}",
                code_name(*code)
            )
        }
        ClientError::Timeout => {
            format!("no answer from the broker at {addr} in time (raise --timeout)")
        }
        ClientError::Closed => format!("the broker at {addr} closed the connection"),
        ClientError::Protocol(m) => {
            format!("{addr} does not speak the Portask protocol as expected: {m}")
        }
        other => format!("{other} (broker at {addr})"),
    }
}

/// A connection made from the common options.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) addr: String,
}

impl Conn {
    /// Wraps a client error with the address, for [`report`].
    pub(crate) fn fail(&self, error: ClientError) -> Failure {
        Failure::Client {
            error,
            addr: self.addr.clone(),
        }
    }
}

/// The connection settings from `--addr`, `--user`, `--password`, `--timeout` and the
/// environment.
pub(crate) fn connection_settings(p: &Parsed) -> Result<(String, ClientOptions), Failure> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let addr = p
        .value("--addr")
        .map(str::to_owned)
        .or_else(|| env("PORTASK_ADDR"))
        .unwrap_or_else(|| DEFAULT_ADDR.to_owned());
    if !addr.contains(':') {
        return Err(p.usage_error(format!(
            "invalid value '{addr}' for '--addr': expected HOST:PORT"
        )));
    }
    let timeout: f64 = p
        .number("--timeout", "a number of seconds")?
        .unwrap_or(30.0);
    if !(timeout > 0.0 && timeout.is_finite()) {
        return Err(p.usage_error("'--timeout' must be a positive number of seconds"));
    }
    let options = ClientOptions {
        user: p
            .value("--user")
            .map(str::to_owned)
            .or_else(|| env("PORTASK_USER")),
        password: p
            .value("--password")
            .map(str::to_owned)
            .or_else(|| env("PORTASK_PASSWORD")),
        timeout: Some(Duration::from_secs_f64(timeout)),
        client_name: concat!("portask-cli/", env!("CARGO_PKG_VERSION")).to_owned(),
        ..ClientOptions::default()
    };
    Ok((addr, options))
}

/// Connects with the common options.
pub(crate) fn connect(p: &Parsed) -> Result<Conn, Failure> {
    let (addr, options) = connection_settings(p)?;
    match Client::connect(&addr, options) {
        Ok(client) => Ok(Conn { client, addr }),
        Err(error) => Err(Failure::Client { error, addr }),
    }
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly.
pub(crate) fn write_out(out: &mut impl Write, bytes: &[u8]) -> Result<(), Failure> {
    match out.write_all(bytes) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r.map_err(Failure::from),
    }
}
