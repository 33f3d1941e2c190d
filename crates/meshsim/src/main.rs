//! `meshsim`: the researchers' front door to the meshwork simulator.
//!
//! `meshsim <experiment> [--nodes N] [--seed S] [--json] [--csv FILE] ...` runs one experiment and prints
//! a readable table, or with `--json` one JSON object on stdout. Long phases show a live status line on
//! stderr when it is a terminal (never with `--json`). Keys are
//! snake_case with units in their names; every run ends with the same footer (`Report::footer`):
//! `events`, `events_per_sec`, `cpu_ms`, `events_per_cpu_sec`, `wall_ms`, `rss_bytes`,
//! `peak_rss_bytes` and `trace_hash`; and reports its `seed`.
//!
//! The hostile-peer experiments (issue #14): `meshsim sybil-gossip` (Sybils from a few /24s flood
//! HyParView's membership requests; share of honest nodes whose views stay honest-majority, broadcast
//! reliability; `--no-admission-limits` for plain HyParView), `meshsim sybil-kad` (Sybils from a few /24s
//! join Kademlia and lie in lookups; lookup success and their share of the tables; `--no-prefix-limits`),
//! and the "ban your neighbours" attack, `meshsim gossip-spam --spam-kind valid-burst` (valid messages
//! in bursts through honest relays; `honest_bans_of_honest` must stay 0).
//!
//! To add an experiment: write `src/experiments/<name>.rs` with an `Args` struct (flattening
//! [`cli::Common`]) and a `run(&Args) -> Result<Report, String>` function, declare it in
//! `src/experiments/mod.rs`, and add one variant to [`cli::Experiment`] and one arm to its `run`.

mod cli;
mod clock;
mod experiments;
mod plot;
mod report;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let json = cli.experiment.common().json;
    let plot = cli.experiment.common().plot.clone();
    let csv = cli.experiment.common().csv.clone();
    if csv.is_some() && !cli.experiment.writes_csv() {
        eprintln!("meshsim: --csv: the experiment writes no per-message data (flood and gossip do)");
        return ExitCode::FAILURE;
    }
    if json {
        clock::hide_progress();
    }
    match cli.experiment.run() {
        Ok(report) => {
            if let Some(path) = plot {
                if let Err(err) = plot::write_svg(&path, report.panels()) {
                    eprintln!("meshsim: --plot: {err}");
                    return ExitCode::FAILURE;
                }
            }
            if let Some(path) = csv {
                if let Err(err) = report.write_csv(&path) {
                    eprintln!("meshsim: --csv: {err}");
                    return ExitCode::FAILURE;
                }
            }
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.to_table());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("meshsim: {err}");
            ExitCode::FAILURE
        }
    }
}
