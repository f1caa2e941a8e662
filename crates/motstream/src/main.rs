//! `motstream`: parses the command line and hands each subcommand to its `run`.

use std::process::ExitCode;

use clap::FromArgMatches;

use motstream::cli::{Cli, Command};

/// jemalloc for the whole process, librdkafka's C allocations included. librdkafka allocates
/// every message on one thread and frees it on another (the application's thread and the
/// broker thread, in both directions); glibc's malloc handles that pattern badly. In the e2e
/// bench at 300,000 events/s, `_int_malloc` alone was a third of the producing thread's CPU
/// samples and the process spent 7.3 CPU s per million events with a 478 MiB peak RSS; with
/// jemalloc, 4.2-4.8 CPU s and 50-99 MiB.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn run(
    args: &motstream::config::ServiceArgs,
    matches: &clap::ArgMatches,
) -> anyhow::Result<ExitCode> {
    let leaf = matches
        .subcommand_matches("run")
        .ok_or_else(|| anyhow::anyhow!("argument matches for `run`"))?;
    let cfg = motstream::config::resolve(args, leaf)?;
    motstream_server::run(&cfg)?;
    Ok(ExitCode::SUCCESS)
}

fn embedded(cli: &Cli, matches: &clap::ArgMatches) -> anyhow::Result<ExitCode> {
    let cfg = motstream::config::resolve(&cli.service, matches)?;
    motstream_server::embedded::run(cfg, &cli.demo.settings())?;
    Ok(ExitCode::SUCCESS)
}

/// Whether the error is stdout closed by its reader.
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn main() -> ExitCode {
    let matches = motstream::cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    motstream::logging::init(cli.log_format);
    let result = match &cli.command {
        None => embedded(&cli, &matches),
        Some(Command::Catalog(c)) => motstream::catalog_cmd::run(c),
        Some(Command::Config(c)) => motstream::config::show(c, &matches),
        Some(Command::Run(args)) => run(args, &matches),
        Some(Command::Loadgen(args)) => motstream_loadgen::loadgen::run(args),
        Some(Command::Mot(c)) => motstream_client::mot(c),
        Some(Command::Experience(c)) => motstream_client::experience(c),
        Some(Command::Watch(a)) => motstream_client::watch(a),
        Some(Command::Alerts(a)) => motstream_client::alerts(a),
        Some(Command::Unidentified(a)) => motstream_client::unidentified(a),
        Some(Command::Dlq(c)) => motstream::dlq_cmd::run(c),
    };
    match result {
        Ok(code) => code,
        // `motstream ... | head`: the reader has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line: "loading config: file:3: ...".
            // The one place the binary writes to stderr directly: logging may not be set up.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
