//! Connection files: everything a client or an engine needs to reach a controller.
//!
//! Two files per profile, both written mode 0600: `controller-client.json` (client port and
//! heartbeat) and `controller-engine.json` (engine and heartbeat ports). Copying the engine
//! file to another host is all an engine there needs. Reading and writing them (with the
//! permission checks) is the `profiles` crate's job; this module owns the format.

use serde::{Deserialize, Serialize};

/// Format version written in every file; readers accept this and older.
pub const FORMAT_VERSION: u32 = 1;

/// Heartbeat settings, chosen by the controller and shared with engines and clients.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Milliseconds between two pings.
    pub period_ms: u64,
    /// Periods without an answer after which a peer is declared dead.
    pub misses: u32,
}

impl HeartbeatConfig {
    /// How long a peer may stay silent before it is declared dead.
    pub fn deadline(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.period_ms.saturating_mul(self.misses.max(1) as u64))
    }
}

impl Default for HeartbeatConfig {
    /// One ping a second, dead after five silent seconds.
    fn default() -> Self {
        HeartbeatConfig {
            period_ms: 1000,
            misses: 5,
        }
    }
}

/// Which side a connection file is for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Client,
    Engine,
}

/// The contents of a connection file.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ConnectionInfo {
    /// Format version ([`FORMAT_VERSION`]).
    pub version: u32,
    pub kind: FileKind,
    /// Always `tcp` for now.
    pub transport: String,
    /// Address peers connect to (the controller's `--location`).
    pub location: String,
    /// Signing key (hex text of 256 random bits).
    pub key: String,
    /// Always `hmac-sha256`.
    pub signature_scheme: String,
    /// Port of the socket this side talks to: the client socket, or the engine socket.
    pub port: u16,
    /// Port of the controller's heartbeat publisher.
    pub hb_ping: u16,
    /// Port where engines answer heartbeats (engine files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hb_pong: Option<u16>,
    /// Port of the controller's event publisher (`cluster events`); client files only,
    /// absent in files written by controllers from before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<u16>,
    pub heartbeat: HeartbeatConfig,
    /// Largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Process id of the controller that wrote the file.
    pub controller_pid: u32,
    /// `user@host` to tunnel through, when the controller is only reachable over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh: Option<String>,
    /// Transport encryption of every message ([`crate::seal::SCHEME`]), or none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<String>,
}

impl ConnectionInfo {
    /// The ZeroMQ address of `port` at this file's location.
    pub fn url(&self, port: u16) -> String {
        let host = if self.location.contains(':') && !self.location.starts_with('[') {
            format!("[{}]", self.location)
        } else {
            self.location.clone()
        };
        format!("{}://{}:{}", self.transport, host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_bracket_ipv6_hosts() {
        let mut info = ConnectionInfo {
            version: FORMAT_VERSION,
            kind: FileKind::Client,
            transport: "tcp".into(),
            location: "10.0.0.5".into(),
            key: "k".into(),
            signature_scheme: "hmac-sha256".into(),
            port: 5000,
            hb_ping: 5001,
            hb_pong: None,
            events: None,
            heartbeat: HeartbeatConfig::default(),
            max_message_bytes: 1,
            controller_pid: 1,
            ssh: None,
            encryption: None,
        };
        assert_eq!(info.url(5000), "tcp://10.0.0.5:5000");
        info.location = "::1".into();
        assert_eq!(info.url(7), "tcp://[::1]:7");
    }

    #[test]
    fn default_heartbeat_declares_death_within_ten_seconds() {
        assert!(HeartbeatConfig::default().deadline() < std::time::Duration::from_secs(10));
    }
}
