//! A report: named figures in order, printed as a table or as one JSON object.

use std::fmt::Write;

use meshwork_identity::Hash;
use serde_json::Value;

use crate::plot::Panel;

/// The figures of one run, in the order they were added, and the charts `--plot` draws from it.
#[derive(Debug, Default)]
pub(crate) struct Report {
    fields: Vec<(&'static str, Value)>,
    panels: Vec<Panel>,
    /// `--csv`'s header line and its rows (each ending in a newline), if the experiment writes
    /// per-message data: one buffer, so a row costs its bytes and no allocation of its own.
    csv: Option<(&'static str, String)>,
}

impl Report {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a figure. Keys are snake_case with the unit in the name (`latency_ms_p50`).
    pub(crate) fn add(&mut self, key: &'static str, value: impl Into<Value>) -> &mut Self {
        self.fields.push((key, value.into()));
        self
    }

    /// Adds a chart for `--plot`.
    pub(crate) fn plot(&mut self, panel: Panel) -> &mut Self {
        self.panels.push(panel);
        self
    }

    /// The charts, in the order they were added.
    pub(crate) fn panels(&self) -> &[Panel] {
        &self.panels
    }

    /// Adds rows of per-message data for `--csv`, under `header`: every call of one experiment
    /// passes the same header.
    pub(crate) fn csv_rows(
        &mut self,
        header: &'static str,
        rows: impl IntoIterator<Item = String>,
    ) -> &mut Self {
        let (first, text) = self.csv.get_or_insert_with(|| (header, String::new()));
        debug_assert_eq!(*first, header, "rows of two shapes in one CSV");
        for row in rows {
            text.push_str(&row);
            text.push('\n');
        }
        self
    }

    /// Writes the per-message data to `file`, or says the experiment gave none.
    pub(crate) fn write_csv(&self, file: std::fs::File) -> Result<(), String> {
        use std::io::Write;
        let Some((header, rows)) = &self.csv else {
            return Err("the experiment wrote no per-message data".into());
        };
        let mut file = std::io::BufWriter::new(file);
        writeln!(file, "{header}")
            .and_then(|()| file.write_all(rows.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|e| e.to_string())
    }

    /// The figures every run ends with, the one place they are written: `events`, `events_per_sec`
    /// (wall time), `cpu_ms` and `events_per_cpu_sec` (the process's CPU time, which a busy machine does
    /// not inflate; one experiment per process, building its network included), `wall_ms`, the
    /// process's memory (`rss_bytes`, `peak_rss_bytes`) and the `trace_hash` that a second run with the
    /// seed must repeat.
    pub(crate) fn footer(&mut self, events: u64, wall_ms: f64, trace_hash: impl ToString) -> &mut Self {
        self.add("events", events)
            .add("events_per_sec", events as f64 / (wall_ms / 1000.0).max(1e-9));
        if let Some(cpu) = crate::clock::cpu_time() {
            let secs = cpu.as_secs_f64();
            self.add("cpu_ms", secs * 1000.0)
                .add("events_per_cpu_sec", events as f64 / secs.max(1e-9));
        }
        self.add("wall_ms", wall_ms);
        if let Some((rss, hwm)) = crate::clock::memory() {
            self.add("rss_bytes", rss).add("peak_rss_bytes", hwm);
        }
        self.add("trace_hash", trace_hash.to_string())
    }

    /// One JSON object, keys in insertion order.
    pub(crate) fn to_json(&self) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(key, value)| format!("{}:{}", Value::from(*key), value))
            .collect();
        format!("{{{}}}", body.join(","))
    }

    /// A two-column table.
    pub(crate) fn to_table(&self) -> String {
        let width = self.fields.iter().map(|(key, _)| key.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (key, value) in &self.fields {
            let shown = match value {
                Value::String(text) => text.clone(),
                Value::Number(n) if n.is_f64() => n.as_f64().map(|f| format!("{f:.4}")).unwrap_or_default(),
                other => other.to_string(),
            };
            let _ = writeln!(out, "{key:<width$}  {shown}");
        }
        out
    }
}

/// The trace hash of an experiment of several runs: one run's own, or the digest of every run's in
/// order, so that the same seeds give the same hash and any run that differs changes it.
pub(crate) fn trace_hash_of_runs(hashes: &[Hash]) -> Hash {
    match hashes {
        [one] => *one,
        many => {
            let parts: Vec<&[u8]> = many.iter().map(|h| h.as_bytes().as_slice()).collect();
            Hash::digest_parts(&parts)
        }
    }
}
