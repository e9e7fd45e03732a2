//! Figures taken at scrape time, written through prometheus-client's Prometheus text encoder
//! (format 0.0.4, what rtpengine serves): a [`Sheet`] lists families and their samples and is
//! registered as a collector.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// A sample's labels: `(name, value)` pairs.
pub type Labels = Vec<(&'static str, String)>;

/// One label.
pub fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

#[derive(Debug)]
enum Samples {
    Values(MetricType, Vec<(Labels, Value)>),
    /// Per-bucket counts (not cumulative), `+Inf` last; sum; count.
    Histogram(Vec<(f64, u64)>, f64, u64),
}

#[derive(Debug)]
struct Family {
    /// The exposed name without the `_total` the encoder adds to counters.
    name: String,
    help: String,
    samples: Samples,
}

/// Families of one scrape.
#[derive(Debug, Default)]
pub struct Sheet {
    families: Vec<Family>,
}

impl Sheet {
    /// A counter family; `name` is the exposed name, ending in `_total`.
    pub fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) -> &mut Self {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Int(v)))
            .collect();
        self.push(name, help, Samples::Values(MetricType::Counter, samples))
    }

    /// A counter family with fractional values (sums of seconds, of MOS).
    pub fn counter_f64(
        &mut self,
        name: &str,
        help: &str,
        samples: Vec<(Labels, f64)>,
    ) -> &mut Self {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Float(v)))
            .collect();
        self.push(name, help, Samples::Values(MetricType::Counter, samples))
    }

    pub fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) -> &mut Self {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Int(v)))
            .collect();
        self.push(name, help, Samples::Values(MetricType::Gauge, samples))
    }

    pub fn gauge_f64(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) -> &mut Self {
        let samples = samples
            .into_iter()
            .map(|(l, v)| (l, Value::Float(v)))
            .collect();
        self.push(name, help, Samples::Values(MetricType::Gauge, samples))
    }

    /// A histogram without labels from [`crate::metrics::quality::Histogram`].
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        h: &crate::metrics::quality::Histogram,
    ) -> &mut Self {
        self.push(name, help, Samples::Histogram(h.buckets(), h.sum, h.count))
    }

    fn push(&mut self, name: &str, help: &str, samples: Samples) -> &mut Self {
        let name = match samples {
            Samples::Values(MetricType::Counter, _) => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        self.families.push(Family {
            name: name.to_string(),
            help: help.to_string(),
            samples,
        });
        self
    }

    /// The text of these families alone.
    pub fn render(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        encode(&registry)
    }
}

/// A registry in the Prometheus text format.
pub fn encode(registry: &Registry) -> String {
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, registry);
    out
}

impl Collector for Sheet {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.families {
            match &f.samples {
                Samples::Values(kind, samples) => {
                    let mut m = encoder.encode_descriptor(&f.name, &f.help, None, *kind)?;
                    for (labels, v) in samples {
                        let m = m.encode_family(labels)?;
                        match (kind, v) {
                            (MetricType::Counter, Value::Int(v)) => {
                                ConstCounter::new(*v).encode(m)?
                            }
                            (MetricType::Counter, Value::Float(v)) => {
                                ConstCounter::new(*v).encode(m)?
                            }
                            (_, Value::Int(v)) => ConstGauge::new(*v).encode(m)?,
                            (_, Value::Float(v)) => ConstGauge::new(*v).encode(m)?,
                        }
                    }
                }
                Samples::Histogram(buckets, sum, count) => {
                    let mut m =
                        encoder.encode_descriptor(&f.name, &f.help, None, MetricType::Histogram)?;
                    m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
                }
            }
        }
        Ok(())
    }
}
