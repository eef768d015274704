//! What the spans say about the process: `service.name`, `service.version`,
//! `OTEL_RESOURCE_ATTRIBUTES`, and where it runs on Google Cloud.
//!
//! The GKE/GCE detector reads the metadata server as the original's did,
//! but within a deadline (name resolution included) and quietly: off Google
//! Cloud it finds nothing in at most that time, where the original blocked
//! without a timeout and crashed.
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The metadata server's host, as Google's client libraries name it.
const DEFAULT_METADATA_HOST: &str = "metadata.google.internal";
/// Where a pod's namespace is mounted by Kubernetes.
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Resource attributes, in the order they were added; a later value for the
/// same key replaces the earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    attributes: Vec<(String, String)>,
}

impl Resource {
    /// Adds or replaces one attribute.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some((_, existing)) => *existing = value,
            None => self.attributes.push((key, value)),
        }
    }

    /// Adds or replaces each of `attributes`, in order.
    pub fn merge(&mut self, attributes: impl IntoIterator<Item = (String, String)>) {
        for (key, value) in attributes {
            self.set(key, value);
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every attribute, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Detects GKE and GCE from the metadata server and the Downward API
/// variables (`POD_NAME`, `NAMESPACE`, `CONTAINER_NAME`).
#[derive(Debug, Clone)]
pub struct GcpDetector {
    metadata_host: String,
    timeout: Duration,
}

impl Default for GcpDetector {
    fn default() -> Self {
        Self {
            metadata_host: DEFAULT_METADATA_HOST.to_owned(),
            timeout: Duration::from_millis(500),
        }
    }
}

impl GcpDetector {
    /// The metadata server at `GCE_METADATA_HOST` (`host` or `host:port`)
    /// if set, else `metadata.google.internal`; a 500 ms deadline.
    pub fn from_env() -> Self {
        let mut detector = Self::default();
        if let Some(host) = std::env::var("GCE_METADATA_HOST")
            .ok()
            .filter(|h| !h.is_empty())
        {
            detector.metadata_host = host;
        }
        detector
    }

    /// The metadata server's `host` or `host:port`.
    #[must_use]
    pub fn metadata_host(mut self, host: impl Into<String>) -> Self {
        self.metadata_host = host.into();
        self
    }

    /// The longest detection may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The attributes the original's detector set, under today's semantic
    /// conventions plus its own names where they differ (`cloud.zone`,
    /// `gcp.resource_type`), so that its queries keep working. Empty off
    /// Google Cloud, or if the metadata server does not answer in time.
    pub fn detect(&self) -> Vec<(String, String)> {
        self.detect_with(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`detect`](Self::detect), reading variables through `env`.
    pub fn detect_with(&self, env: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        let Some(metadata) = self.metadata() else {
            return Vec::new();
        };
        let text = |value: &Value| match value {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let mut attributes = vec![("cloud.provider".to_owned(), "gcp".to_owned())];
        let mut add = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                attributes.push((key.to_owned(), value));
            }
        };
        add("cloud.account.id", text(&metadata["project"]["projectId"]));
        // "projects/123/zones/europe-west1-b" -> "europe-west1-b"
        let zone = text(&metadata["instance"]["zone"])
            .and_then(|z| z.rsplit('/').next().map(str::to_owned));
        if let Some(zone) = &zone {
            add("cloud.availability_zone", Some(zone.clone()));
            add("cloud.zone", Some(zone.clone()));
            add(
                "cloud.region",
                zone.rsplit_once('-').map(|(region, _)| region.to_owned()),
            );
        }
        add("host.id", text(&metadata["instance"]["id"]));
        let cluster = text(&metadata["instance"]["attributes"]["cluster-name"]);
        if let Some(cluster) = cluster {
            add("cloud.platform", Some("gcp_kubernetes_engine".to_owned()));
            add("gcp.resource_type", Some("gke_container".to_owned()));
            add("k8s.cluster.name", Some(cluster));
            add(
                "k8s.namespace.name",
                env("NAMESPACE").or_else(|| {
                    std::fs::read_to_string(NAMESPACE_FILE)
                        .ok()
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                }),
            );
            add("k8s.pod.name", env("POD_NAME").or_else(|| env("HOSTNAME")));
            add("container.name", env("CONTAINER_NAME"));
        } else {
            add("cloud.platform", Some("gcp_compute_engine".to_owned()));
            add("gcp.resource_type", Some("gce_instance".to_owned()));
        }
        attributes
    }

    /// The metadata server's `?recursive=true` document, fetched on a thread
    /// of its own so that a slow name lookup cannot exceed the deadline.
    fn metadata(&self) -> Option<Value> {
        let (tx, rx) = mpsc::channel();
        let host = self.metadata_host.clone();
        let timeout = self.timeout;
        std::thread::Builder::new()
            .name("gcp-metadata".to_owned())
            .spawn(move || {
                let _ = tx.send(fetch_metadata(&host, timeout));
            })
            .ok()?;
        match rx.recv_timeout(self.timeout) {
            Ok(Ok(value)) => Some(value),
            Ok(Err(why)) => {
                log::debug!("not on Google Cloud ({why})");
                None
            }
            Err(_) => {
                log::debug!(
                    "not on Google Cloud (no answer from {} in {:?})",
                    self.metadata_host,
                    self.timeout
                );
                None
            }
        }
    }
}

fn fetch_metadata(host: &str, timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let authority = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("no address for {authority}"))?;
    let remaining = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream = TcpStream::connect_timeout(&addr, remaining()).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(remaining()))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(remaining()))
        .map_err(|e| e.to_string())?;
    // HTTP/1.0: the server closes the connection after the body, so reading
    // to the end is the whole response, never chunked.
    write!(
        stream,
        "GET /computeMetadata/v1/?recursive=true HTTP/1.0\r\nHost: {host}\r\nMetadata-Flavor: Google\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .take(1 << 20)
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let mut lines = head.lines();
    let status = lines.next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("metadata server answered `{status}`"));
    }
    // Anything else on that name is not Google's metadata server.
    if !lines.any(|line| {
        line.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("metadata-flavor") && v.trim() == "Google"
        })
    }) {
        return Err("the answer lacks `Metadata-Flavor: Google`".to_owned());
    }
    serde_json::from_str(body).map_err(|e| format!("metadata is not JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_attributes_replace_earlier_ones_in_place() {
        let mut resource = Resource::default();
        resource.set("service.name", "a");
        resource.set("k", "1");
        resource.merge([("service.name".to_owned(), "b".to_owned())]);
        assert_eq!(
            resource.iter().collect::<Vec<_>>(),
            [("service.name", "b"), ("k", "1")]
        );
        assert_eq!(resource.get("k"), Some("1"));
    }
}
