//! The answers of Prometheus's HTTP API (`/api/v1/query`), read from bytes: an instant vector's
//! series, or the error Prometheus gave. Anything else is "not a Prometheus answer", said with a
//! printable start of what came back.

use serde::Deserialize;

use crate::model::text::printable;

/// One series of an instant vector: the labels lbtop reads and the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub instance: String,
    /// The scrape job: one instance label can be scraped by several jobs (node_exporter and a
    /// blackbox probe of the same `host:port`).
    pub job: Option<String>,
    /// `__name__`, kept by selectors and dropped by functions and aggregations.
    pub name: Option<String>,
    pub mode: Option<String>,
    pub cpu: Option<String>,
    /// The labels of node_exporter's `node_ipvs_backend_*` series, when it has them.
    pub backend: Option<Box<Backend>>,
    pub value: f64,
}

/// A backend's labels in node_exporter's ipvs collector: the virtual service (`proto` TCP, UDP
/// or FWM; `local_mark` in hex for FWM) and the real server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Backend {
    pub proto: String,
    pub local_address: String,
    pub local_port: String,
    pub local_mark: String,
    pub remote_address: String,
    pub remote_port: String,
}

/// Why an answer could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// Prometheus answered, with an error (a bad selector, a query that timed out there).
    #[error("Prometheus refused the query ({kind}): {message}")]
    Query { kind: String, message: String },
    /// Something other than Prometheus's API answered.
    #[error("not a Prometheus API answer: {0}")]
    NotPrometheus(String),
}

#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: Labels,
    value: (f64, String),
}

/// The labels lbtop reads; any others are stepped over as the answer is parsed, never kept (a
/// series can carry thousands of labels, and an answer hundreds of thousands of series).
#[derive(Deserialize)]
struct Labels {
    instance: Option<String>,
    job: Option<String>,
    #[serde(rename = "__name__")]
    name: Option<String>,
    mode: Option<String>,
    cpu: Option<String>,
    proto: Option<String>,
    local_address: Option<String>,
    local_port: Option<String>,
    local_mark: Option<String>,
    remote_address: Option<String>,
    remote_port: Option<String>,
}

/// How much of a body that is not Prometheus's an error shows.
const SHOWN: usize = 80;

/// The start of `body`, printable, for an error message.
pub(crate) fn glimpse(body: &[u8]) -> String {
    let cut = &body[..body.len().min(SHOWN * 4)];
    let text = String::from_utf8_lossy(cut);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        "an empty body".into()
    } else {
        format!("\"{}\"", printable(&one_line, SHOWN))
    }
}

/// The series of an instant-vector answer with HTTP status `status`. Prometheus answers errors
/// with 400, 422 or 503 and a JSON body saying why; any other body is not Prometheus's.
pub(crate) fn parse_vector(status: u16, body: &[u8]) -> Result<Vec<Series>, ApiError> {
    let not_prometheus = || ApiError::NotPrometheus(format!("HTTP {status}, {}", glimpse(body)));
    let reply: Reply = serde_json::from_slice(body).map_err(|_| not_prometheus())?;
    match reply.status.as_str() {
        "success" if (200..300).contains(&status) => {}
        "error" => {
            return Err(ApiError::Query {
                kind: printable(reply.error_type.as_deref().unwrap_or("unknown"), 40),
                message: printable(reply.error.as_deref().unwrap_or("no reason given"), 300),
            });
        }
        _ => return Err(not_prometheus()),
    }
    let Some(data) = reply.data else {
        return Err(not_prometheus());
    };
    if data.result_type != "vector" {
        return Err(ApiError::NotPrometheus(format!(
            "a {:?} where an instant vector was asked for",
            printable(&data.result_type, 20)
        )));
    }
    Ok(data
        .result
        .into_iter()
        .filter_map(|s| {
            let value = parse_value(&s.value.1)?;
            let m = s.metric;
            let backend = m.remote_address.map(|remote_address| {
                Box::new(Backend {
                    proto: m.proto.unwrap_or_default(),
                    local_address: m.local_address.unwrap_or_default(),
                    local_port: m.local_port.unwrap_or_default(),
                    local_mark: m.local_mark.unwrap_or_default(),
                    remote_address,
                    remote_port: m.remote_port.unwrap_or_default(),
                })
            });
            Some(Series {
                instance: m.instance?,
                job: m.job,
                name: m.name,
                mode: m.mode,
                cpu: m.cpu,
                backend,
                value,
            })
        })
        .collect())
}

/// A sample value as the API writes it: a string, with `NaN`, `+Inf` and `-Inf`.
fn parse_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_vector_gives_its_series_with_instance_and_value() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"node_cpu_seconds_total","instance":"10.0.0.1:9100","job":"node","cpu":"3","mode":"idle"},"value":[1700000000.5,"1234.56"]},
            {"metric":{"instance":"10.0.0.2:9100"},"value":[1700000000.5,"NaN"]},
            {"metric":{"job":"x"},"value":[1700000000.5,"1"]}]}}"#;
        let series = parse_vector(200, body).expect("vector");
        assert_eq!(
            series,
            vec![Series {
                instance: "10.0.0.1:9100".into(),
                job: Some("node".into()),
                name: Some("node_cpu_seconds_total".into()),
                mode: Some("idle".into()),
                cpu: Some("3".into()),
                backend: None,
                value: 1234.56,
            }]
        );
    }

    #[test]
    fn labels_lbtop_does_not_read_are_stepped_over_however_many() {
        // 100,000 other labels on one series: none is kept, and the series is read.
        let mut body = String::from(
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"#,
        );
        for i in 0..100_000 {
            body.push_str(&format!(r#""l{i}":"v{i}","#));
        }
        body.push_str(
            r#""instance":"10.0.0.1:9100","remote_address":"10.0.0.9","remote_port":"80"},"value":[1,"2"]}]}}"#,
        );
        let series = parse_vector(200, body.as_bytes()).expect("vector");
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].instance, "10.0.0.1:9100");
        let backend = series[0].backend.as_deref().expect("a backend");
        assert_eq!(
            (
                backend.remote_address.as_str(),
                backend.remote_port.as_str()
            ),
            ("10.0.0.9", "80")
        );
        assert_eq!(backend.proto, "");
    }

    #[test]
    fn prometheus_errors_and_other_answers_are_told_apart() {
        let bad = br#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            parse_vector(400, bad).expect_err("error").to_string(),
            "Prometheus refused the query (bad_data): parse error at char 5"
        );
        let html = b"<html>\n<body>\x1b[2J Not Found</body></html>";
        let e = parse_vector(404, html).expect_err("html").to_string();
        assert!(
            e.starts_with("not a Prometheus API answer: HTTP 404, \"<html> <body>\\u{1b}[2J"),
            "{e}"
        );
        assert!(
            parse_vector(200, b"")
                .expect_err("empty")
                .to_string()
                .contains("empty body")
        );
        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse_vector(200, matrix).is_err());
        let other_json = br#"{"status":"ok"}"#;
        assert!(parse_vector(200, other_json).is_err());
    }
}
