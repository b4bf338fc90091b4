//! Arguments several subcommands share, so their flags and help read the same everywhere.

use clap::Args;

/// The tail of every `list` subcommand: how many rows, and whether to print JSON.
#[derive(Debug, Args)]
pub struct ListPage {
    /// Show at most this many.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
