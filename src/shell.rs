//! Shell integration: completion scripts and the man page, generated from the clap
//! definition so they always list the options the binary has.

use std::io::{self, Write};

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// Prints what `--completions` or `--man` asks for; `None` when neither is given.
pub(crate) fn print_requested(cli: &Cli) -> Option<anyhow::Result<()>> {
    let text = if let Some(shell) = cli.completions {
        let mut command = Cli::command();
        let name = command.get_name().to_owned();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut command, name, &mut script);
        script
    } else if cli.man {
        let mut page = Vec::new();
        if let Err(err) = clap_mangen::Man::new(Cli::command()).render(&mut page) {
            return Some(Err(err).context("cannot render the man page"));
        }
        page
    } else {
        return None;
    };
    let mut stdout = io::stdout().lock();
    Some(
        stdout
            .write_all(&text)
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout"),
    )
}
