//! The `tlsmon` binary: parse the command line, set up logging, run. Nothing else.
use clap::Parser;

mod app;

fn main() {
    let cli = monitor::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cli.log));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match app::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("tlsmon: error: {e:#}");
            std::process::exit(2);
        }
    }
}
