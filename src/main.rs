//! Thin entry point: parse the command line, set up logging and the panic hook, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = keel::cli::Cli::parse_from(keel::cli::object_ref::expand(std::env::args_os()));
    keel::logging::install_panic_hook();
    match keel::cli::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // An error may quote what the operator typed; a pasted key is not repeated.
            eprintln!(
                "keel: {}",
                keel::core::redact::redact_str(&format!("{err:#}"))
            );
            keel::cli::exit_code_for(&err)
        }
    }
}
