//! The `portask` binary: parses the command line, then either serves (loads the config and
//! runs until a signal) or runs a client command against a running broker.

mod tool;

use std::process::ExitCode;

use portask_server::cli::{self, Command};
use portask_server::config::{Config, Overrides};

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("portask: {e}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("portask {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::Tool { name, args } => tool::run(&name, &args),
        Command::Serve { config, overrides } => {
            let flags = Overrides::from(&*overrides);
            // The client commands' variables are not broker configuration.
            let vars = std::env::vars().filter(|(k, _)| !tool::ENV_VARS.contains(&k.as_str()));
            let config = match Config::load(config.as_deref(), vars, &flags) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("portask: {e}");
                    return ExitCode::from(2);
                }
            };
            match portask_server::serve(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("portask: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
