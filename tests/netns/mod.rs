//! Two network namespaces joined by a veth pair: a real second host for the tests that
//! need one (tests/multihost.rs, tests/encryption.rs). Needs root and `ip netns`
//! (iproute2); `Net::create` says why and returns `None` otherwise.

#![allow(dead_code)]

use crate::common::{TestEnv, BIN};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Two namespaces and a veth pair, removed on drop.
pub struct Net {
    pub a: String,
    pub b: String,
    pub addr_a: String,
    pub addr_b: String,
    /// The veth device in namespace `a`.
    pub dev_a: String,
    pub children: Vec<Child>,
}

impl Net {
    pub fn create() -> Option<Net> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: creating network namespaces needs root");
            return None;
        }
        let pid = std::process::id();
        let a = format!("cla{pid}");
        let b = format!("clb{pid}");
        if !ip(&["netns", "add", &a]) {
            eprintln!("skipped: `ip netns add` is not available here (no iproute2, or no permission for network namespaces)");
            return None;
        }
        let net = Net {
            addr_a: format!("10.77.{}.1", pid % 250),
            addr_b: format!("10.77.{}.2", pid % 250),
            dev_a: format!("va{pid}"),
            a,
            b,
            children: vec![],
        };
        let (va, vb) = (net.dev_a.clone(), format!("vb{pid}"));
        let ok = ip(&["netns", "add", &net.b])
            && ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])
            && ip(&["link", "set", &va, "netns", &net.a])
            && ip(&["link", "set", &vb, "netns", &net.b])
            && ip(&[
                "-n",
                &net.a,
                "addr",
                "add",
                &format!("{}/24", net.addr_a),
                "dev",
                &va,
            ])
            && ip(&[
                "-n",
                &net.b,
                "addr",
                "add",
                &format!("{}/24", net.addr_b),
                "dev",
                &vb,
            ])
            && ip(&["-n", &net.a, "link", "set", &va, "up"])
            && ip(&["-n", &net.b, "link", "set", &vb, "up"])
            && ip(&["-n", &net.a, "link", "set", "lo", "up"])
            && ip(&["-n", &net.b, "link", "set", "lo", "up"]);
        assert!(ok, "could not set up the veth pair between the namespaces");
        Some(net)
    }

    /// `cluster ARGS` inside namespace `ns`, with `CLUSTER_DIR`.
    pub fn cluster(&self, ns: &str, env: &TestEnv, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, BIN])
            .args(args)
            .env("CLUSTER_DIR", env.root())
            .env_remove("CLUSTER_PROFILE")
            .stdin(Stdio::null());
        cmd
    }

    /// `cluster controller --ip ADDR_A EXTRA...` in namespace `a`, once it says it is
    /// ready; killed with the other children on drop.
    pub fn start_controller(&mut self, env: &TestEnv, extra: &[&str]) {
        let mut args = vec!["controller", "--ip", &self.addr_a];
        args.extend_from_slice(extra);
        let mut controller = self
            .cluster(&self.a, env, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("controller");
        let mut line = String::new();
        BufReader::new(controller.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("controller ready"), "{line:?}");
        self.children.push(controller);
    }

    pub fn run(&self, ns: &str, env: &TestEnv, args: &[&str]) -> (bool, String, String) {
        let out = self
            .cluster(ns, env, args)
            .output()
            .expect("run cluster in a namespace");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn status(&self, env: &TestEnv) -> Vec<serde_json::Value> {
        let (ok, out, err) = self.run(&self.a, env, &["status", "--json"]);
        assert!(ok, "status failed: {err}");
        serde_json::from_str::<serde_json::Value>(&out)
            .expect("status --json")
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        ip(&["netns", "del", &self.a]);
        ip(&["netns", "del", &self.b]);
    }
}
