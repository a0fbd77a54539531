//! The connection gate (issue 14, points 1 and 2): a peer without the key never completes
//! the ZeroMQ handshake with any of the controller's sockets, so whatever it sends is never
//! buffered by the controller, however large; a flood of such attempts keeps the
//! controller's memory and log bounded; and real clients are served all along.

mod common;
mod reliability_common;

use client::Value;
use common::TestEnv;
use reliability_common::{client, memory_kib, start};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The 64-byte ZMTP 3.0 greeting of a client choosing `mechanism`.
fn greeting(mechanism: &str) -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0];
    let mut m = mechanism.as_bytes().to_vec();
    m.resize(20, 0);
    g.extend(m);
    g.push(0); // as-server: no
    g.resize(64, 0);
    g
}

/// A PLAIN HELLO command with these credentials.
fn hello(user: &[u8], password: &[u8]) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"HELLO");
    body.push(user.len() as u8);
    body.extend_from_slice(user);
    body.push(password.len() as u8);
    body.extend_from_slice(password);
    let mut cmd = vec![0x04, body.len() as u8];
    cmd.extend(body);
    cmd
}

/// Streams up to `total` bytes of ZMTP message frames (`more` set, 1 MiB each) after
/// `preamble`; returns how many bytes the controller let through before closing.
fn push_frames(port: u64, preamble: &[u8], total: usize) -> usize {
    let mut tcp = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    tcp.write_all(preamble).unwrap();
    let frame = 1usize << 20;
    let mut chunk = vec![0x03u8]; // MORE | LONG
    chunk.extend_from_slice(&(frame as u64).to_be_bytes());
    chunk.resize(9 + frame, b'z');
    let mut sent = 0;
    while sent < total {
        match tcp.write_all(&chunk) {
            Ok(()) => sent += chunk.len(),
            Err(_) => break,
        }
    }
    sent
}

#[test]
fn a_keyless_peer_is_never_connected_so_nothing_it_sends_is_buffered() {
    let env = TestEnv::new();
    let c = start(&env, "default", 1, &[]);
    let info = env.engine_info("default");
    let port = info["port"].as_u64().unwrap();
    let rc = client(&env, "default");
    let view = rc.direct_view(0u32).unwrap();
    let (peak_before, _) = memory_kib(c.controller_pid);

    // 1. A ZeroMQ peer with no credentials (the NULL mechanism, as any plain zmq socket),
    //    posing as the engine, sends a message of 16 frames of 4 MiB: it is never
    //    connected, so whatever it queued stays in the attacker's own memory.
    let ctx = zmq::Context::new();
    let keyless = ctx.socket(zmq::DEALER).unwrap();
    keyless.set_linger(0).unwrap();
    keyless.set_sndhwm(0).unwrap();
    keyless
        .monitor("inproc://keyless-events", zmq::SocketEvent::ALL as i32)
        .unwrap();
    let events = ctx.socket(zmq::PAIR).unwrap();
    events.connect("inproc://keyless-events").unwrap();
    keyless.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    let big = vec![b'q'; 4 << 20];
    for i in 0..16 {
        let flag = if i < 15 { zmq::SNDMORE } else { 0 };
        // Without waiting: once its handshake has failed the socket has no pipe to queue
        // into, and a blocking send would wait for a connection that never comes.
        let _ = keyless.send(&big[..], flag | zmq::DONTWAIT);
    }
    // 2. The same with the wrong password, over raw TCP: a PLAIN greeting and HELLO, then
    //    256 MiB of frames. The controller refuses the handshake and closes the connection.
    let mut preamble = greeting("PLAIN");
    preamble.extend(hello(b"cluster", &[b'0'; 64]));
    let through = push_frames(port, &preamble, 256 << 20);
    assert!(
        through < 256 << 20,
        "the controller kept reading {through} bytes from a refused peer"
    );
    // 3. A NULL-mechanism greeting followed by frames: refused as well.
    let through_null = push_frames(port, &greeting("NULL"), 256 << 20);
    assert!(through_null < 256 << 20, "{through_null} bytes read");

    // The real client is served, and the engine's routes are intact.
    for n in 0..5 {
        assert_eq!(
            view.apply_sync("echo", vec![Value::Int(n)]).unwrap(),
            Value::Int(n)
        );
    }
    // The keyless socket's handshake failed (libzmq reports it on the peer's side: the
    // controller only speaks PLAIN), never succeeded, and it received nothing.
    let mut seen = Vec::new();
    common::wait_until(
        "the keyless peer's handshake to fail",
        || {
            while let Ok(frames) = events.recv_multipart(zmq::DONTWAIT) {
                seen.push(u16::from_le_bytes([frames[0][0], frames[0][1]]));
            }
            seen.contains(&(zmq::SocketEvent::HANDSHAKE_FAILED_PROTOCOL as u16))
        },
        || "no handshake failure event".into(),
    );
    assert!(
        !seen.contains(&(zmq::SocketEvent::HANDSHAKE_SUCCEEDED as u16)),
        "a keyless handshake succeeded: {seen:?}"
    );
    assert_eq!(keyless.poll(zmq::POLLIN, 0).unwrap(), 0);
    let (peak_after, _) = memory_kib(c.controller_pid);
    eprintln!(
        "controller peak RSS {} -> {} KiB; {} and {} bytes accepted by TCP before the close",
        peak_before, peak_after, through, through_null
    );
    assert!(
        peak_after < peak_before + 32 * 1024,
        "the controller grew from {peak_before} to {peak_after} KiB"
    );
    let log = std::fs::read_to_string(env.controller_log("default")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("refused connection: wrong key")),
        "{log}"
    );
}

#[test]
fn a_flood_of_keyless_connections_keeps_memory_and_log_bounded() {
    let env = TestEnv::new();
    let c = start(&env, "default", 1, &[]);
    let info = env.engine_info("default");
    let ports: Vec<u64> = ["port", "hb_ping", "hb_pong"]
        .iter()
        .map(|k| info[*k].as_u64().unwrap())
        .collect();
    let log = env.controller_log("default");
    let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let (peak_before, _) = memory_kib(c.controller_pid);
    let rc = client(&env, "default");
    let view = rc.direct_view(0u32).unwrap();

    // 3,000 handshakes with the wrong password, on every socket, one connection each.
    let attempts = 3000;
    let mut preamble = greeting("PLAIN");
    preamble.extend(hello(b"cluster", &[b'f'; 64]));
    for i in 0..attempts {
        let port = ports[i % ports.len()];
        let mut tcp = TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
        tcp.write_all(&preamble).unwrap();
        // Wait for the controller's answer (its greeting, then an ERROR command with the
        // ZAP status 400), so that every attempt has reached the gate before the next.
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        // (libzmq 4.3.4 garbles the first letter of the command name; the status is intact.)
        while !got.windows(8).any(|w| w == b"RROR\x03400") {
            match tcp.read(&mut buf) {
                Ok(0) | Err(_) => panic!("no ERROR from the gate: {got:?}"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        if i % 500 == 0 {
            assert_eq!(
                view.apply_sync("echo", vec![Value::Int(i as i64)]).unwrap(),
                Value::Int(i as i64)
            );
        }
    }
    // Every refusal counted: one by one, then in the rate limiter's summary lines.
    let counted = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let one_by_one = text
            .lines()
            .filter(|l| l.contains("refused connection: wrong key"))
            .count();
        let summed: usize = text
            .lines()
            .filter_map(|l| l.split("refused connections: ").nth(1))
            .filter_map(|r| r.split_whitespace().next()?.parse::<usize>().ok())
            .sum();
        one_by_one + summed
    };
    common::poll(
        &format!("{attempts} refusals counted in the log"),
        Duration::from_secs(60),
        || (counted() >= attempts).then_some(()),
        || format!("{} counted", counted()),
    );
    let grown = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0) - log_before;
    let (peak_after, _) = memory_kib(c.controller_pid);
    eprintln!(
        "{attempts} refused handshakes: log +{grown} bytes, peak RSS {peak_before} -> {peak_after} KiB"
    );
    assert!(grown < 200_000, "the log grew by {grown} bytes");
    assert!(
        peak_after < peak_before + 32 * 1024,
        "the controller grew from {peak_before} to {peak_after} KiB"
    );
    assert_eq!(
        view.apply_sync("echo", vec![Value::Int(-1)]).unwrap(),
        Value::Int(-1)
    );
}
