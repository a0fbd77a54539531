//! Serving for as long as asked: register, run, and (with `reconnect`) wait for a
//! controller to come back and register again.

use super::{Engine, EngineError, EngineExit, EngineOptions};
use protocol::auth::Signer;
use protocol::messages::{Heartbeat, PING_TOPIC};
use protocol::wire::{recv_frames, Decoder};
use protocol::{ConnectionInfo, EngineId};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// How [`serve`] runs an engine.
pub struct ServeOptions {
    /// When the controller is lost (or forgets this engine, or is replaced), wait for a
    /// controller to answer on the connection file's ports again and register anew, instead
    /// of returning. The first registration also waits as long as it takes.
    pub reconnect: bool,
    /// How often to look for a controller again while waiting.
    pub retry_every: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            reconnect: false,
            retry_every: Duration::from_secs(1),
        }
    }
}

/// Registers and serves until stopped, shut down, or (without `reconnect`) the controller
/// is lost. `reload` gives the connection information for each (re-)registration: a
/// controller restarted with `--reuse` has the same ports and key, one restarted without it
/// has written new files, and re-reading them finds it either way. `options` makes a fresh
/// [`EngineOptions`] for each registration (each gets a new namespace), and `registered`
/// is told each id the engine gets.
pub fn serve(
    mut reload: impl FnMut() -> Result<ConnectionInfo, String>,
    mut options: impl FnMut() -> EngineOptions,
    serve: &ServeOptions,
    stop: &AtomicBool,
    mut registered: impl FnMut(EngineId),
) -> Result<EngineExit, EngineError> {
    let mut waiting = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(EngineExit::Stopped);
        }
        let info = match reload() {
            Ok(info) => info,
            Err(e) if serve.reconnect => {
                debug!("cannot read the connection information yet: {e}");
                pause(stop, serve.retry_every);
                continue;
            }
            Err(e) => return Err(EngineError::Refused(e)),
        };
        // While waiting, register only once a controller with this key is heard on these
        // ports, so that no registration request is left queued for a controller that is
        // not there (it would register a phantom engine when one comes back).
        if waiting && !controller_heard(&info, stop, serve.retry_every) {
            continue;
        }
        let mut opts = options();
        if serve.reconnect {
            opts.register_timeout = opts.register_timeout.min(serve.retry_every * 10);
        }
        match Engine::connect(&info, opts) {
            Ok(engine) => {
                let id = engine.id();
                registered(id);
                let exit = engine.run(stop)?;
                if !(serve.reconnect && exit.lost_controller()) {
                    return Ok(exit);
                }
                warn!(engine = %id, controller = %info.url(info.port), "{exit}; waiting for a controller to register with again (--reconnect)");
                waiting = true;
            }
            Err(e @ (EngineError::RegisterTimeout { .. } | EngineError::Connect { .. }))
                if serve.reconnect =>
            {
                if !waiting {
                    warn!("{e}; waiting for the controller (--reconnect)");
                }
                waiting = true;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Waits up to `within` for a signed heartbeat ping from the controller in `info`.
fn controller_heard(info: &ConnectionInfo, stop: &AtomicBool, within: Duration) -> bool {
    let ctx = zmq::Context::new();
    let heard = (|| -> Result<bool, zmq::Error> {
        let sub = ctx.socket(zmq::SUB)?;
        sub.set_linger(0)?;
        sub.set_maxmsgsize(info.max_message_bytes as i64)?;
        sub.set_subscribe(PING_TOPIC)?;
        protocol::gate::present(&sub, &info.key)?;
        sub.connect(&info.url(info.hb_ping))?;
        let mut decoder = Decoder::new(Signer::for_connection(info), info.max_message_bytes);
        let deadline = Instant::now() + within;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            match sub.poll(zmq::POLLIN, 100) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            while let Ok(frames) = recv_frames(&sub, zmq::DONTWAIT) {
                if let Ok(Heartbeat::Ping(_)) =
                    decoder.decode(frames).and_then(|m| m.tagged::<Heartbeat>())
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    })();
    heard.unwrap_or(false)
}

/// Waits `d`, or less if `stop` is set.
fn pause(stop: &AtomicBool, d: Duration) {
    let deadline = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::park_timeout(left.min(Duration::from_millis(100)));
    }
}
