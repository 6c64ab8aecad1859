//! The result table: each figure beside its baseline, the ratio, and its target.

use serde::Serialize;
use serde_json::{Map, Value};

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The scenario (`ingest`, `fanout`, …).
    pub scenario: String,
    /// What was measured.
    pub metric: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: String,
    /// The baseline it is compared with, and its value in the same unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<(String, f64)>,
    /// `value / baseline`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// The target, e.g. `>= 10000`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Whether the target is met.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub met: Option<bool>,
}

/// A target to compare a figure with.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// At least this much.
    AtLeast(f64),
    /// At most this much.
    AtMost(f64),
}

impl Figure {
    /// A figure without baseline or target.
    pub fn new(scenario: &str, metric: &str, value: f64, unit: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
            baseline: None,
            ratio: None,
            target: None,
            met: None,
        }
    }

    /// With a baseline and the ratio to it.
    #[must_use]
    pub fn against(mut self, baseline: &str, value: f64) -> Self {
        self.ratio = (value != 0.0).then(|| self.value / value);
        self.baseline = Some((baseline.to_owned(), value));
        self
    }

    /// With a target.
    #[must_use]
    pub fn goal(mut self, goal: Goal) -> Self {
        let (text, met) = match goal {
            Goal::AtLeast(t) => (format!(">= {}", num(t)), self.value >= t),
            Goal::AtMost(t) => (format!("<= {}", num(t)), self.value <= t),
        };
        self.target = Some(text);
        self.met = Some(met);
        self
    }
}

/// The conditions of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Conditions {
    /// CPUs available.
    pub cpus: usize,
    /// Release or debug build.
    pub profile: &'static str,
    /// `in-process` or the URL.
    pub target: String,
    /// 1-minute load average before and after.
    pub load_before: Option<f64>,
    /// 1-minute load average after.
    pub load_after: Option<f64>,
    /// Compiler processes running before the run (other load).
    pub compilers_before: usize,
    /// Compiler processes running after the run.
    pub compilers_after: usize,
    /// The open-file soft limit in force.
    pub open_files: Option<u64>,
}

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Machine and load.
    pub conditions: Conditions,
    /// The figures.
    pub figures: Vec<Figure>,
    /// Each scenario's full result.
    pub details: Map<String, Value>,
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        let s = format!("{:.0}", v);
        // thousands separators
        let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl Report {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let c = &self.conditions;
        let mut out = format!(
            "atmls-loadgen: {} cpus, {} build, target {}, load {:?} -> {:?}, compiler processes {} -> {}, open files {}\n\n",
            c.cpus,
            c.profile,
            c.target,
            c.load_before,
            c.load_after,
            c.compilers_before,
            c.compilers_after,
            c.open_files
                .map_or("unlimited".to_owned(), |n| n.to_string())
        );
        let rows: Vec<[String; 7]> = self
            .figures
            .iter()
            .map(|f| {
                [
                    f.scenario.clone(),
                    f.metric.clone(),
                    format!("{} {}", num(f.value), f.unit),
                    f.baseline
                        .as_ref()
                        .map_or(String::new(), |(b, v)| format!("{b}: {}", num(*v))),
                    f.ratio.map_or(String::new(), |r| format!("{r:.2}x")),
                    f.target.clone().unwrap_or_default(),
                    f.met
                        .map_or(String::new(), |m| if m { "met" } else { "MISSED" }.into()),
                ]
            })
            .collect();
        let head = [
            "scenario", "metric", "value", "baseline", "ratio", "target", "",
        ]
        .map(str::to_owned);
        let mut width = [0usize; 7];
        for r in std::iter::once(&head).chain(&rows) {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for r in std::iter::once(&head).chain(&rows) {
            let line: Vec<String> = r
                .iter()
                .zip(width)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_compare() {
        let f = Figure::new("ingest", "rate", 12_000.0, "env/s")
            .against("raw", 6_000.0)
            .goal(Goal::AtLeast(10_000.0));
        assert_eq!(f.ratio, Some(2.0));
        assert_eq!(f.met, Some(true));
        assert_eq!(num(12_345.6), "12,346");
        let f = Figure::new("fanout", "p99", 60.0, "ms").goal(Goal::AtMost(50.0));
        assert_eq!(f.met, Some(false));
    }
}
