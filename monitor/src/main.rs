//! The `tlsmon` binary: parse the command line, set up logging, merge the config file, run.
//! Nothing else.
use clap::{CommandFactory, FromArgMatches};

mod app;
mod emitter;
mod manual;

/// mimalloc: replay workers allocate events that the reading thread frees; glibc's malloc makes
/// such frees contend for the worker's arena lock, mimalloc hands them back without a lock (and
/// is faster on one thread too). Built without transparent huge pages (`no_thp`): with them, a
/// few touched bytes make 2 MiB resident.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let matches = monitor::cli::Cli::command().get_matches();
    let cli = monitor::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let run = monitor::config::resolve(cli, &matches).map_err(anyhow::Error::from).and_then(app::run);
    match run {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tlsmon: error: {}", chain(&e));
            std::process::exit(2);
        }
    }
}

/// The error and its causes joined by ": ", leaving out a cause whose text the previous one
/// already carries (aya's errors repeat their source in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    let mut prev = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !prev.is_empty() && prev.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
        prev = s;
    }
    out
}
