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
    let common = cli.experiment.common();
    let json = common.json;
    // The output files are checked before the run, which may be long: an experiment that writes no
    // such output, or a path that cannot be created, fails at once.
    if common.csv.is_some() && !cli.experiment.writes_csv() {
        eprintln!("meshsim: --csv: the experiment writes no per-message data (flood and gossip do)");
        return ExitCode::FAILURE;
    }
    if common.plot.is_some() && !cli.experiment.draws_plot() {
        eprintln!("meshsim: --plot: the experiment draws no chart");
        return ExitCode::FAILURE;
    }
    let Ok(csv) = common
        .csv
        .as_deref()
        .map(|path| create("--csv", path))
        .transpose()
    else {
        return ExitCode::FAILURE;
    };
    let plot = common.plot.clone();
    if let Some(path) = &plot
        && create("--plot", path).is_err()
    {
        return ExitCode::FAILURE;
    }
    if json {
        clock::hide_progress();
    }
    let report = match cli.experiment.run() {
        Ok(report) => report,
        Err(err) => {
            eprintln!("meshsim: {err}");
            // No output files from a failed run, not even the empty ones made to check the paths.
            for path in [&common.csv, &plot].into_iter().flatten() {
                let _ = std::fs::remove_file(path);
            }
            return ExitCode::FAILURE;
        }
    };
    // The figures are printed whatever becomes of the files: a long run's results are never lost.
    let mut written = true;
    if let Some(path) = plot
        && let Err(err) = plot::write_svg(&path, report.panels())
    {
        eprintln!("meshsim: --plot: {err}");
        written = false;
    }
    if let Some(file) = csv
        && let Err(err) = report.write_csv(file)
    {
        eprintln!("meshsim: --csv: {err}");
        written = false;
    }
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    if written {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Creates the output file of `flag` at `path` (empty), saying why on stderr if it cannot.
fn create(flag: &str, path: &std::path::Path) -> Result<std::fs::File, ()> {
    std::fs::File::create(path).map_err(|err| eprintln!("meshsim: {flag}: {}: {err}", path.display()))
}
