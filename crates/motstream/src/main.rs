//! `motstream`: parses the command line and hands each subcommand to its `run`.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use motstream::cli::{Cli, Command};

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    motstream::logging::init(cli.log_format);
    let result = match &cli.command {
        Command::Catalog(c) => motstream::catalog_cmd::run(c),
        Command::Config(c) => motstream::config::show(c, &matches),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "loading config: file:3: ...".
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
