//! The floor every latency is read against: raw ZeroMQ REQ/REP round trips between this
//! process and a child of the same binary (`cluster bench --zmq-echo`).

use anyhow::Context;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

pub(super) fn zmq_echo(endpoint: &str) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let rep = ctx.socket(zmq::REP)?;
    rep.set_linger(0)?;
    rep.set_rcvtimeo(30_000)?;
    rep.connect(endpoint)?;
    loop {
        let msg = match rep.recv_bytes(0) {
            Ok(m) => m,
            Err(zmq::Error::EAGAIN) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        rep.send(&msg, 0)?;
        if msg == b"stop" {
            return Ok(());
        }
    }
}

/// A REQ socket bound on 127.0.0.1 and a child process of this binary answering on REP:
/// round trips of a small message between two processes over TCP, the floor.
pub(super) struct ZmqFloor {
    pub(super) _ctx: zmq::Context,
    pub(super) req: zmq::Socket,
    pub(super) child: Child,
}

impl ZmqFloor {
    pub(super) fn start(exe: &Path) -> anyhow::Result<ZmqFloor> {
        let ctx = zmq::Context::new();
        let req = ctx.socket(zmq::REQ)?;
        req.set_linger(0)?;
        req.set_rcvtimeo(10_000)?;
        req.bind("tcp://127.0.0.1:*")?;
        let endpoint = req
            .get_last_endpoint()?
            .map_err(|_| anyhow::anyhow!("the ZeroMQ endpoint is not text"))?;
        let child = Command::new(exe)
            .args(["bench", "--zmq-echo", &endpoint])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start the echo process")?;
        let floor = ZmqFloor {
            _ctx: ctx,
            req,
            child,
        };
        floor.sample(200)?;
        Ok(floor)
    }

    /// Microseconds per round trip, over `n` of them.
    pub(super) fn sample(&self, n: usize) -> anyhow::Result<f64> {
        let msg = [7u8; 64];
        let t = Instant::now();
        for _ in 0..n {
            self.req.send(&msg[..], 0)?;
            self.req
                .recv_bytes(0)
                .context("no answer from the echo process")?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    }
}

impl Drop for ZmqFloor {
    fn drop(&mut self) {
        let stopped = self.req.send("stop", 0).is_ok() && self.req.recv_bytes(0).is_ok();
        if !stopped {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}
