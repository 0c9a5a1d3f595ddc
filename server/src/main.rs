//! The `portask` binary: parses the command line, loads the config, serves until a signal.

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
        Command::Serve { config, overrides } => {
            let flags = Overrides::from(&*overrides);
            let config = match Config::load(config.as_deref(), std::env::vars(), &flags) {
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
