//! Samples and their rendering in the Prometheus text exposition format (0.0.4).

use std::fmt::Write as _;

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// Goes up and down.
    Gauge,
    /// Only goes up (resets on restart).
    Counter,
    /// A histogram's series (`_bucket`, `_sum`, `_count`), rendered under its family name.
    Histogram,
}

impl MetricKind {
    fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One sample of `/metrics`.
///
/// ```
/// use agentflow_dashboard::Sample;
/// let s = Sample::counter("agentflow_linear_requests_total", "Requests sent to Linear.", 12.0)
///     .label("outcome", "ok");
/// assert_eq!(s.labels, [("outcome".to_owned(), "ok".to_owned())]);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric family (`agentflow_…`); for histograms the family, with the series in
    /// [`series`](Self::series).
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Gauge, counter or histogram.
    pub kind: MetricKind,
    /// The series suffix for histograms (`_bucket`, `_sum`, `_count`), empty otherwise.
    pub series: &'static str,
    /// Labels.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A gauge.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>, value: f64) -> Self {
        Self::new(name, help, MetricKind::Gauge, value)
    }

    /// A counter.
    pub fn counter(name: impl Into<String>, help: impl Into<String>, value: f64) -> Self {
        Self::new(name, help, MetricKind::Counter, value)
    }

    fn new(name: impl Into<String>, help: impl Into<String>, kind: MetricKind, value: f64) -> Self {
        Sample { name: name.into(), help: help.into(), kind, series: "", labels: Vec::new(), value }
    }

    pub(crate) fn histogram_series(
        name: &str,
        help: &str,
        series: &'static str,
        value: f64,
    ) -> Self {
        Sample { series, ..Self::new(name, help, MetricKind::Histogram, value) }
    }

    /// Adds a label.
    pub fn label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((name.into(), value.into()));
        self
    }
}

/// Renders samples, one `# HELP`/`# TYPE` per family, families in first-seen order.
pub(crate) fn render(samples: &[Sample]) -> String {
    let mut families: Vec<&str> = Vec::new();
    for s in samples {
        if !families.contains(&s.name.as_str()) {
            families.push(&s.name);
        }
    }
    let mut out = String::new();
    for family in families {
        let mut members = samples.iter().filter(|s| s.name == family).peekable();
        let Some(first) = members.peek() else { continue };
        let _ = writeln!(out, "# HELP {family} {}", escape_help(&first.help));
        let _ = writeln!(out, "# TYPE {family} {}", first.kind.as_str());
        for s in members {
            out.push_str(&sanitize_name(&s.name));
            out.push_str(s.series);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{}=\"{}\"", sanitize_name(k), escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(s.value));
        }
    }
    out
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() }
    } else {
        format!("{v}")
    }
}

fn sanitize_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' })
        .collect()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_once_with_escaped_labels() {
        let out = render(&[
            Sample::gauge("a_jobs", "Jobs.", 2.0).label("state", "running"),
            Sample::counter("b_total", "B.", 1.5),
            Sample::gauge("a_jobs", "Jobs.", 0.0).label("state", "we\"ird\n"),
        ]);
        assert_eq!(
            out,
            "# HELP a_jobs Jobs.\n# TYPE a_jobs gauge\na_jobs{state=\"running\"} 2\n\
             a_jobs{state=\"we\\\"ird\\n\"} 0\n# HELP b_total B.\n# TYPE b_total counter\nb_total 1.5\n"
        );
    }
}
