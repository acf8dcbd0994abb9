//! Logging set-up: `RUST_LOG` filters; lines on stderr, for people or (`log_format = "json"`)
//! one JSON object per line for log collectors.

use tracing_subscriber::{EnvFilter, fmt};

use crate::config::LogFormat;

/// Installs the global subscriber once; later calls (tests) are ignored.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"))
        // The IMAP client traces every command it sends, the login's password included.
        .add_directive("async_imap=info".parse().expect("a valid directive"));
    let lines = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => lines.try_init(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
}

/// The Prometheus recorder, installed once per process; `/metrics` renders it.
pub fn metrics() -> &'static metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> =
        std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
            .set_buckets(&[
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
            .expect("static buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (an embedding program's) keeps working; ours then
        // renders only what it recorded itself.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Counts delivery outcomes as they are recorded.
pub fn record_deliveries<'a>(
    outcomes: impl IntoIterator<Item = &'a crate::store::deliveries::Outcome>,
) {
    use crate::store::deliveries::Outcome;
    for outcome in outcomes {
        match outcome {
            Outcome::Sent(_) => metrics::counter!("fortnight_messages_sent_total").increment(1),
            Outcome::Failed { bounce: true, .. } => {
                metrics::counter!("fortnight_messages_failed_total", "reason" => "permanent")
                    .increment(1)
            }
            Outcome::Failed { bounce: false, .. } => {
                metrics::counter!("fortnight_messages_failed_total", "reason" => "gave_up")
                    .increment(1)
            }
            Outcome::Retry { .. } => {
                metrics::counter!("fortnight_messages_failed_total", "reason" => "temporary")
                    .increment(1)
            }
            Outcome::Skipped => metrics::counter!("fortnight_messages_skipped_total").increment(1),
            Outcome::Released { .. } => {}
        }
    }
}

/// Records how long the SMTP server took to take one message.
pub fn record_smtp_latency(took: std::time::Duration) {
    metrics::histogram!("fortnight_smtp_seconds").record(took.as_secs_f64());
}
