//! Transport encryption (issue 14, point 6), seen on a real wire: a controller listening
//! on a veth address (so encryption is on by default), an engine in another network
//! namespace, and tcpdump capturing every packet between them while a payload goes to the
//! engine and back. The payload never appears in the capture; with `--encrypt off` the same
//! run shows it in clear (so the capture does see the traffic).
//!
//! Needs root, `ip netns` (iproute2) and tcpdump; skipped with a message otherwise.

mod common;
mod netns;

use common::{find_program, poll, TestEnv, DEADLINE};
use netns::Net;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// tcpdump on namespace `a`'s veth, writing every TCP packet to `file`; returns once it
/// listens.
fn capture(net: &Net, file: &std::path::Path) -> Child {
    let mut dump = std::process::Command::new("ip")
        .args([
            "netns", "exec", &net.a, "tcpdump", "-i", &net.dev_a, "-U", "-s", "0", "-w",
        ])
        .arg(file)
        .arg("tcp")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump");
    let mut lines = BufReader::new(dump.stderr.take().unwrap()).lines();
    let line = lines.next().and_then(|l| l.ok()).unwrap_or_default();
    assert!(line.contains("listening"), "tcpdump: {line}");
    // Keep reading its stderr, so that its last words never meet a closed pipe.
    std::thread::spawn(move || lines.for_each(drop));
    dump
}

/// Runs a cluster across the two namespaces with `encrypt` flags, sends `payload` to the
/// remote engine and back, and returns the packets captured between them and the result.
fn round_trip(net: &mut Net, encrypt: &[&str], payload: &str) -> (Vec<u8>, String) {
    let env = TestEnv::new();
    let pcap = env.root().join("wire.pcap");
    let mut dump = capture(net, &pcap);
    net.start_controller(&env, encrypt);
    // The engine on the other host, from a copy of the engine file.
    let other_host = env.root().join("host-b");
    std::fs::create_dir_all(&other_host).unwrap();
    let copy = other_host.join("controller-engine.json");
    std::fs::copy(env.engine_file("default"), &copy).unwrap();
    let engine = net
        .cluster(&net.b, &env, &["engine", "--file", copy.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    net.children.push(engine);
    poll(
        "the remote engine",
        DEADLINE,
        || (net.status(&env).len() == 1).then_some(()),
        || format!("{:?}", net.status(&env)),
    );
    let arg = serde_json::to_string(payload).unwrap();
    let (ok, out, err) = net.run(&net.a, &env, &["apply", "echo", &arg]);
    assert!(ok, "apply failed: {err}");
    // Stop everything, then tcpdump (which writes each packet as it comes: -U).
    for c in &mut net.children {
        let _ = c.kill();
        let _ = c.wait();
    }
    net.children.clear();
    // Every packet is written as it comes (--immediate-mode, -U): once the file stops
    // growing, the traffic so far is in it. Then SIGTERM, and tcpdump closes the file.
    let size = || std::fs::metadata(&pcap).map(|m| m.len()).unwrap_or(0);
    let mut last = size();
    poll(
        "the capture to settle",
        DEADLINE,
        || {
            std::thread::park_timeout(std::time::Duration::from_millis(300));
            let now = size();
            let settled = now == last && now > 24;
            last = now;
            settled.then_some(())
        },
        || format!("{} bytes", size()),
    );
    // SIGTERM: tcpdump flushes and closes the file.
    common::signal(dump.id(), libc::SIGTERM);
    let _ = dump.wait();
    (std::fs::read(&pcap).unwrap(), out)
}

#[test]
fn a_payload_between_two_hosts_never_crosses_the_wire_in_clear() {
    if find_program("tcpdump").is_none() {
        eprintln!("skipped: no tcpdump");
        return;
    }
    let Some(mut net) = Net::create() else {
        return;
    };
    let secret = "the-secret-payload-7f3a9c-never-in-clear";
    let contains =
        |wire: &[u8], needle: &str| wire.windows(needle.len()).any(|w| w == needle.as_bytes());

    // Default: the controller listens on a non-loopback address, so encryption is on.
    let (wire, out) = round_trip(&mut net, &[], secret);
    assert!(out.contains(secret), "the engine echoed it back: {out}");
    assert!(
        wire.len() > 2000,
        "the capture saw the traffic ({} bytes)",
        wire.len()
    );
    assert!(
        !contains(&wire, secret),
        "the payload crossed the wire in clear"
    );
    // Nor any message's structure: headers are sealed too.
    assert!(!contains(&wire, "msg_type"), "a header crossed in clear");
    assert!(
        !contains(&wire, "task_request"),
        "a message type crossed in clear"
    );

    // With `--encrypt off` the same capture shows it: the check above can fail.
    let (wire, out) = round_trip(&mut net, &["--encrypt", "off"], secret);
    assert!(out.contains(secret), "{out}");
    assert!(
        contains(&wire, secret),
        "the unencrypted run was not captured"
    );
}
