//! A report: named figures in order, printed as a table or as one JSON object.

use std::fmt::Write;

use serde_json::Value;

/// The figures of one run, in the order they were added.
#[derive(Debug, Default)]
pub(crate) struct Report {
    fields: Vec<(&'static str, Value)>,
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
