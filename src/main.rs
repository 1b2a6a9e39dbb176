use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(upcheck::main_with_args(std::env::args_os().collect()))
}
