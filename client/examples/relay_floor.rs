//! The floor for push and pull: raw ZeroMQ moving 50 MiB messages from this process
//! through a relay process to a sink process (and a small answer back), the same two TCP
//! hops over 127.0.0.1 a push takes through the controller, with no signing, no
//! scheduling and no values. Each process tunes its allocator as `cluster` does.
//! `cargo run --release -p client --example relay_floor -- [SINKS] [ROUNDS]`
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const MB: usize = 50 << 20;

fn relay(front_port: &str, back_port: &str) -> zmq::Result<()> {
    let ctx = zmq::Context::new();
    let front = ctx.socket(zmq::ROUTER)?;
    front.bind(&format!("tcp://127.0.0.1:{front_port}"))?;
    let back = ctx.socket(zmq::ROUTER)?;
    back.bind(&format!("tcp://127.0.0.1:{back_port}"))?;
    let mut sinks: Vec<Vec<u8>> = Vec::new();
    let mut client: Vec<u8> = Vec::new();
    loop {
        let mut items = [
            front.as_poll_item(zmq::POLLIN),
            back.as_poll_item(zmq::POLLIN),
        ];
        zmq::poll(&mut items, -1)?;
        if items[0].is_readable() {
            // [client id, sink index, payload]: forward the payload frames unchanged.
            let mut m = front.recv_multipart(0)?;
            client = m.remove(0);
            if m.len() == 1 {
                // A question: how many sinks have said hello?
                front.send_multipart([client.clone(), sinks.len().to_string().into_bytes()], 0)?;
                continue;
            }
            let k = m.remove(0)[0] as usize;
            let mut out = vec![sinks[k].clone()];
            out.extend(m);
            back.send_multipart(out, 0)?;
        }
        if items[1].is_readable() {
            let mut m = back.recv_multipart(0)?;
            let id = m.remove(0);
            if m.first().map(Vec::as_slice) == Some(b"hello") {
                sinks.push(id);
                continue;
            }
            let mut out = vec![client.clone()];
            out.extend(m);
            front.send_multipart(out, 0)?;
        }
    }
}

fn sink(back_port: &str) -> zmq::Result<()> {
    let ctx = zmq::Context::new();
    let s = ctx.socket(zmq::DEALER)?;
    s.connect(&format!("tcp://127.0.0.1:{back_port}"))?;
    s.send("hello", 0)?;
    loop {
        let m = s.recv_bytes(0)?;
        s.send(&m.len().to_string()[..], 0)?;
    }
}

fn spawn(args: &[&str]) -> Child {
    Command::new(std::env::current_exe().expect("this executable"))
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn a part")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    client::keep_large_buffers();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("relay") => return Ok(relay(&args[1], &args[2])?),
        Some("sink") => return Ok(sink(&args[1])?),
        _ => {}
    }
    let sinks: usize = args.first().map_or(Ok(2), |s| s.parse())?;
    let rounds: usize = args.get(1).map_or(Ok(8), |s| s.parse())?;
    let (front, back) = ("57131", "57132");
    let mut parts = vec![spawn(&["relay", front, back])];
    for _ in 0..sinks {
        parts.push(spawn(&["sink", back]));
    }
    let ctx = zmq::Context::new();
    let s = ctx.socket(zmq::DEALER)?;
    s.connect(&format!("tcp://127.0.0.1:{front}"))?;
    // Wait until every sink has said hello to the relay.
    loop {
        s.send("?", 0)?;
        if s.recv_string(0)?.ok() == Some(sinks.to_string()) {
            break;
        }
    }
    let data = vec![0x5au8; MB];
    for _ in 0..rounds {
        let t = Instant::now();
        // As a push: the payload is copied into each message (one per sink), all sent,
        // then every answer awaited.
        for k in 0..sinks {
            s.send_multipart([vec![k as u8], data.clone()], 0)?;
        }
        for _ in 0..sinks {
            s.recv_bytes(0)?;
        }
        let rate = (sinks * MB) as f64 / 1e6 / t.elapsed().as_secs_f64();
        println!("{rate:.0} MB/s through the relay to {sinks} sinks");
    }
    for mut p in parts {
        let _ = p.kill();
        let _ = p.wait();
    }
    Ok(())
}
