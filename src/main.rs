use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let status = match upcheck::run(upcheck::Cli::parse()) {
        Ok(status) => status,
        Err(err) => upcheck::exit::explain(&err),
    };
    ExitCode::from(status)
}
