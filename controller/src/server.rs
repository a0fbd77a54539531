//! The controller's sockets and its single event loop.
//!
//! Five sockets, all bound at start-up (port 0 picks a free port; the chosen ports go into
//! the connection files): a ROUTER for clients, a ROUTER for engines, a PUB that sends
//! heartbeat pings, a ROUTER where engines answer them (also each engine's control
//! channel), and an XPUB where `cluster events` subscribes to the controller's events.
//! Heartbeats have their own sockets so that a 100 MB transfer on the task socket never
//! delays them.
//!
//! The loop owns all state (no locks): it polls the sockets, decodes (size, signature,
//! replay), hands each message to the state's entry point for its socket, and sends what
//! the state asks for. What a message means and who may send it is the state's business.
//! The poll timeout is the heartbeat tick.
//!
//! Every message the decoder rejects (malformed, over the size limit, unsigned, badly
//! signed, replayed) is logged once, at warn level, as `rejected message: <reason>` with
//! the socket and peer; a peer whose signature failed is also told so.

use crate::comm::{Dest, Framer, Outlet};
use crate::events::{publisher, ChannelSink};
use crate::rejects::{recv_capped, Capped, Rejects};
use crate::scheduler::{Scheduler, Scheme};
use crate::state::{peer_name, Ident, State, StateConfig};
use protocol::auth::{generate_key, AuthError, Signer};
use protocol::connection::{ConnectionInfo, FileKind, FORMAT_VERSION};
use protocol::messages::{Heartbeat, Ping, PING_TOPIC};
use protocol::wire::{auth_error_frames, Decoder, Encoder, WireError};
use protocol::{HeartbeatConfig, Session};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Longest time between two checks for engines silent past the heartbeat deadline.
const HEARTBEAT_CHECK: Duration = Duration::from_millis(50);
/// Events held for the publisher thread before new ones are dropped (and counted).
const EVENT_BUFFER: usize = 65_536;
/// Messages queued inside the controller per connection before libzmq stops reading it.
const INBOUND_PER_PEER: i32 = 10_000;

/// How the controller is set up.
#[derive(Clone, Debug)]
pub struct ControllerConfig {
    /// Interface to bind: `127.0.0.1` (default), an address, or `*` for all.
    pub ip: String,
    /// Address written into the connection files; defaults to `ip` (or this host's address
    /// when binding to all interfaces).
    pub location: Option<String>,
    pub scheme: Scheme,
    pub heartbeat: HeartbeatConfig,
    /// Fixed most outstanding tasks per engine; `None` adapts it to task durations.
    pub hwm: Option<usize>,
    /// Largest message accepted on any socket.
    pub max_message_bytes: usize,
    /// Signing key; a fresh one is generated when absent.
    pub key: Option<String>,
    /// Ports to bind, in order client, engine, hb_ping, hb_pong; 0 picks a free one.
    pub ports: [u16; 4],
    /// Port of the events publisher; 0 picks a free one.
    pub events_port: u16,
    /// Bounds on shared objects (queues, variables, topics).
    pub shared: crate::shared::Limits,
    /// Encrypt every message; `None` decides by `ip`: on unless it is a loopback address.
    pub encrypt: Option<bool>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            ip: "127.0.0.1".into(),
            location: None,
            scheme: Scheme::default(),
            heartbeat: HeartbeatConfig::default(),
            hwm: None,
            max_message_bytes: protocol::wire::DEFAULT_MAX_MESSAGE_BYTES,
            key: None,
            ports: [0; 4],
            events_port: 0,
            shared: crate::shared::Limits::default(),
            encrypt: None,
        }
    }
}

/// Why the controller could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        endpoint: String,
        source: zmq::Error,
    },
    #[error("socket error: {0}")]
    Socket(#[from] zmq::Error),
    #[error("{endpoint} was bound, but ZeroMQ reported no usable port for it ({last:?})")]
    NoPort { endpoint: String, last: String },
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
}

struct Sockets {
    client: zmq::Socket,
    engine: zmq::Socket,
    hb_pub: zmq::Socket,
    hb_pong: zmq::Socket,
}

/// A bound controller, ready to run.
pub struct Controller {
    // Sockets drop before the context (field order).
    sockets: Sockets,
    events: zmq::Socket,
    _ctx: zmq::Context,
    encoder: Encoder,
    decoder: Decoder,
    state: State,
    heartbeat: HeartbeatConfig,
    client_info: ConnectionInfo,
    engine_info: ConnectionInfo,
}

fn bind(
    ctx: &zmq::Context,
    kind: zmq::SocketType,
    name: &str,
    ip: &str,
    port: u16,
    max: usize,
) -> Result<(zmq::Socket, u16), ControllerError> {
    let s = ctx.socket(kind)?;
    s.set_linger(if matches!(kind, zmq::PUB | zmq::XPUB) {
        0
    } else {
        1000
    })?;
    if kind == zmq::ROUTER {
        // Never drop a message because a peer is slow to read: tasks must not vanish.
        s.set_sndhwm(0)?;
        // Inbound, a bounded pipe per connection: past it libzmq stops reading that
        // connection (TCP pushes back on the sender, nothing is dropped), so a peer sending
        // faster than the loop decodes queues in its own memory, not the controller's.
        s.set_rcvhwm(INBOUND_PER_PEER)?;
        // An identity belongs to the connection that has it: a second connection claiming
        // it (a peer without the key posing as an engine or a client) is refused, instead of
        // taking over its route. And a send to an identity with no connection fails
        // (EHOSTUNREACH) instead of vanishing, so a lost route is noticed (see `Sender`).
        s.set_router_handover(false)?;
        s.set_router_mandatory(true)?;
    }
    if kind == zmq::XPUB {
        // Every subscription is passed up, so each new subscriber is greeted.
        s.set_xpub_verbose(true)?;
    }
    s.set_maxmsgsize(max as i64)?;
    // No connection carries a message before its peer has proven the key (`crate::gate`).
    protocol::gate::require(&s, name)?;
    let host = if ip.contains(':') && ip != "*" {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let endpoint = format!(
        "tcp://{host}:{}",
        if port == 0 {
            "*".to_string()
        } else {
            port.to_string()
        }
    );
    s.bind(&endpoint).map_err(|source| ControllerError::Bind {
        endpoint: endpoint.clone(),
        source,
    })?;
    let last = s.get_last_endpoint()?.unwrap_or_default();
    let port = last
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or(ControllerError::NoPort { endpoint, last })?;
    Ok((s, port))
}

/// Whether `ip` reaches only this host (so that nobody else can see its traffic).
pub fn is_loopback(ip: &str) -> bool {
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    ip == "localhost"
        || ip
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback())
}

/// The address other hosts can reach this one at, for `--ip '*'` (or `::`) without
/// `--location`: the source address of the route to an outside address (nothing is sent).
pub fn default_location(ip: &str) -> String {
    let probe = match ip {
        "*" | "0.0.0.0" => "192.0.2.1",
        "::" | "[::]" => "2001:db8::1",
        other => return other.to_string(),
    };
    match protocol::host::local_address_to(probe) {
        Some(addr) => addr.to_string(),
        None => "127.0.0.1".to_string(),
    }
}

/// Sends on the controller's sockets.
struct Sender<'a> {
    sockets: &'a Sockets,
    /// Engines' task identities a send found without a connection, for the loop to act on.
    unreachable: Vec<Vec<u8>>,
}

impl Outlet for Sender<'_> {
    fn send(&mut self, dest: Dest, frames: Vec<zmq::Message>) {
        let (socket, what) = match dest {
            Dest::Client => (&self.sockets.client, "client message"),
            Dest::Engine => (&self.sockets.engine, "engine message"),
            Dest::Control => (&self.sockets.hb_pong, "control message"),
        };
        // Only an engine's lost task route is acted on (see the loop): keep its identity.
        let ident = (dest == Dest::Engine).then(|| frames.first().map(|f| f.to_vec()));
        match socket.send_multipart(frames, 0) {
            Ok(()) => {}
            Err(zmq::Error::EHOSTUNREACH) => {
                if let Some(Some(ident)) = ident {
                    self.unreachable.push(ident);
                }
            }
            Err(e) => warn!("cannot send {what}: {e}"),
        }
    }
}

impl Controller {
    /// Binds every socket and prepares the connection-file contents.
    pub fn bind(cfg: ControllerConfig) -> Result<Controller, ControllerError> {
        let ctx = zmq::Context::new();
        let max = cfg.max_message_bytes;
        let key = cfg.key.clone().unwrap_or_else(generate_key);
        // The gate first: a socket bound before it would let connections in unchecked.
        crate::gate::start(&ctx, &key)?;
        let ip = &cfg.ip;
        let (client, client_port) = bind(&ctx, zmq::ROUTER, "client", ip, cfg.ports[0], max)?;
        let (engine, engine_port) = bind(&ctx, zmq::ROUTER, "engine", ip, cfg.ports[1], max)?;
        let (hb_pub, ping_port) = bind(&ctx, zmq::PUB, "heartbeat", ip, cfg.ports[2], max)?;
        let (hb_pong, pong_port) = bind(&ctx, zmq::ROUTER, "control", ip, cfg.ports[3], max)?;
        let (events, events_port) = bind(&ctx, zmq::XPUB, "events", ip, cfg.events_port, max)?;
        let location = cfg
            .location
            .clone()
            .unwrap_or_else(|| default_location(&cfg.ip));
        let client_info = ConnectionInfo {
            version: FORMAT_VERSION,
            kind: FileKind::Client,
            transport: "tcp".into(),
            location,
            key: key.clone(),
            signature_scheme: "hmac-sha256".into(),
            port: client_port,
            hb_ping: ping_port,
            hb_pong: None,
            events: Some(events_port),
            heartbeat: cfg.heartbeat,
            max_message_bytes: max,
            controller_pid: std::process::id(),
            ssh: None,
            encryption: cfg
                .encrypt
                .unwrap_or_else(|| !is_loopback(&cfg.ip))
                .then(|| protocol::seal::SCHEME.to_string()),
        };
        let engine_info = ConnectionInfo {
            kind: FileKind::Engine,
            port: engine_port,
            hb_pong: Some(pong_port),
            events: None,
            ..client_info.clone()
        };
        // A relay: buffers pass through sealed by their senders (`protocol::seal`).
        let signer = Signer::for_connection(&client_info).relaying();
        let scheduler = Scheduler::new(cfg.scheme);
        info!(
            client = client_port,
            engine = engine_port,
            hb_ping = ping_port,
            hb_pong = pong_port,
            events = events_port,
            ip = %cfg.ip,
            scheme = %cfg.scheme,
            encryption = client_info.encryption.as_deref().unwrap_or("off"),
            "controller bound"
        );
        Ok(Controller {
            sockets: Sockets {
                client,
                engine,
                hb_pub,
                hb_pong,
            },
            events,
            _ctx: ctx,
            encoder: Encoder::new(signer.clone(), Arc::new(Session::new())),
            decoder: Decoder::new(signer, max),
            state: State::new(
                StateConfig {
                    heartbeat: cfg.heartbeat,
                    hwm: cfg.hwm,
                    shared: cfg.shared,
                },
                scheduler,
            ),
            heartbeat: cfg.heartbeat,
            client_info,
            engine_info,
        })
    }

    /// What clients need to connect (the contents of `controller-client.json`).
    pub fn client_info(&self) -> &ConnectionInfo {
        &self.client_info
    }

    /// What engines need to connect (the contents of `controller-engine.json`).
    pub fn engine_info(&self) -> &ConnectionInfo {
        &self.engine_info
    }

    /// Serves until `stop` is set (then stops engines and returns) or a client asks the hub to
    /// shut down.
    pub fn run(self, stop: &AtomicBool) -> Result<(), ControllerError> {
        let Controller {
            sockets,
            events,
            _ctx,
            encoder,
            mut decoder,
            mut state,
            heartbeat,
            ..
        } = self;
        let (sink, rx, stats) = ChannelSink::new(EVENT_BUFFER);
        state.events().subscribe(Box::new(sink));
        let publisher = publisher(events, encoder.clone(), rx, stats).map_err(|source| {
            ControllerError::Thread {
                what: "events",
                source,
            }
        })?;
        let result = serve(
            &sockets,
            &encoder,
            &mut decoder,
            &mut state,
            heartbeat,
            stop,
        );
        // Dropping the state drops the sink, which ends the publisher.
        drop(state);
        let _ = publisher.join();
        result
    }
}

/// The event loop.
fn serve(
    sockets: &Sockets,
    encoder: &Encoder,
    decoder: &mut Decoder,
    state: &mut State,
    heartbeat: HeartbeatConfig,
    stop: &AtomicBool,
) -> Result<(), ControllerError> {
    let mut comm = Framer {
        enc: encoder.clone(),
        out: Sender {
            sockets,
            unreachable: Vec::new(),
        },
    };
    let period = Duration::from_millis(heartbeat.period_ms.max(1));
    let mut next_ping = Instant::now();
    let mut seq: u64 = 0;
    // Deaths are checked this often, not only once per ping period, so that `ids` lists a
    // dead engine for at most the heartbeat deadline plus this.
    let check_every = HEARTBEAT_CHECK.min(period);
    let mut next_check = Instant::now() + check_every;
    let mut rejects = Rejects::new(Instant::now());
    // Started now: nothing dated before this run is accepted (the epoch of `--reuse`).
    let mut fresh = crate::freshness::Freshness::new(std::time::SystemTime::now());
    loop {
        let now = Instant::now();
        if stop.load(Ordering::Relaxed) {
            state.begin_shutdown(now, &mut comm);
        }
        if state.shutdown_complete(now, &mut comm) {
            info!("controller stopped");
            return Ok(());
        }
        state.greet_new_subscribers(now);
        if now >= next_ping {
            seq += 1;
            let ping = encoder.tagged(
                vec![zmq::Message::from(PING_TOPIC)],
                None,
                &serde_json::json!({}),
                &Heartbeat::Ping(Ping { seq }),
                vec![],
            );
            if let Err(e) = sockets.hb_pub.send_multipart(ping.frames, zmq::DONTWAIT) {
                warn!("cannot publish heartbeat: {e}");
            }
            next_ping = now + period;
        }
        let mut wake = next_ping.min(next_check);
        if let Some(t) = state.next_shared_deadline() {
            wake = wake.min(t);
        }
        let timeout = wake
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        let mut items = [
            sockets.client.as_poll_item(zmq::POLLIN),
            sockets.engine.as_poll_item(zmq::POLLIN),
            sockets.hb_pong.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, timeout.as_millis() as i64 + 1) {
            Ok(_) => {}
            Err(zmq::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = [
            items[0].is_readable(),
            items[1].is_readable(),
            items[2].is_readable(),
        ];
        // Drain in batches so that one busy socket cannot starve the others.
        for _ in 0..256 {
            let mut any = false;
            if ready[2] {
                any |= drain_one(
                    &sockets.hb_pong,
                    "heartbeat",
                    decoder,
                    &mut fresh,
                    &mut rejects,
                    |msg, ident| state.heartbeat_message(ident, msg, Instant::now(), &mut comm),
                )?;
            }
            if ready[1] {
                any |= drain_one(
                    &sockets.engine,
                    "engine",
                    decoder,
                    &mut fresh,
                    &mut rejects,
                    |msg, ident| state.engine_message(ident, msg, Instant::now(), &mut comm),
                )?;
            }
            if ready[0] {
                any |= drain_one(
                    &sockets.client,
                    "client",
                    decoder,
                    &mut fresh,
                    &mut rejects,
                    |msg, ident| state.client_message(ident, msg, Instant::now(), &mut comm),
                )?;
            }
            if state.needs_scheduling {
                state.schedule(Instant::now(), &mut comm);
            }
            if !any {
                break;
            }
        }
        if state.needs_scheduling {
            state.schedule(Instant::now(), &mut comm);
        }
        // Routes found gone while sending: their engines are lost now, not at the
        // heartbeat deadline, and nothing waits on them.
        while !comm.out.unreachable.is_empty() {
            // The control connection may still be connecting right after registration: only
            // the task connection, which the engine registered through, counts.
            for ident in std::mem::take(&mut comm.out.unreachable) {
                state.route_lost(&ident, &mut comm);
            }
        }
        let now = Instant::now();
        if state.next_shared_deadline().is_some_and(|t| t <= now) {
            state.expire_shared(now, &mut comm);
        }
        // After the pongs that arrived are counted, so that a controller that was itself
        // held up (a busy machine, a debugger) does not declare live engines dead.
        let now = Instant::now();
        rejects.roll(now);
        if now >= next_check {
            state.check_heartbeats(now, &mut comm);
            next_check = now + check_every;
        }
    }
}

/// Receives at most one message from `socket` without blocking and hands it, decoded and
/// found new ([`crate::freshness`]), to `handle` with the sender's routing identity. Rejected messages are logged (rate-limited,
/// see [`crate::rejects`]), and a peer whose signature failed is told so (at most once per
/// interval). Returns whether a message was read.
fn drain_one(
    socket: &zmq::Socket,
    name: &'static str,
    decoder: &mut Decoder,
    fresh: &mut crate::freshness::Freshness,
    rejects: &mut Rejects,
    mut handle: impl FnMut(protocol::Received, Ident),
) -> Result<bool, ControllerError> {
    let frames = match recv_capped(socket, decoder.max_bytes()) {
        Ok(Capped::Empty) => return Ok(false),
        Ok(Capped::Frames(f)) => f,
        Ok(Capped::Over {
            ident,
            size,
            frames,
        }) => {
            let now = Instant::now();
            if rejects.note("oversize", now) {
                warn!(socket = name, peer = %peer_name(&ident), "rejected message: {size} bytes in {frames} frames, over the limit of {} bytes or {} frames; dropped unread", decoder.max_bytes(), crate::rejects::MAX_FRAMES);
            }
            return Ok(true);
        }
        Err(zmq::Error::EINTR) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let ident: Ident = frames.first().map(|f| f.to_vec()).unwrap_or_default();
    let decoded = decoder.decode(frames).and_then(|msg| {
        fresh.check(name, &msg.header, std::time::SystemTime::now())?;
        Ok(msg)
    });
    match decoded {
        Ok(msg) => handle(msg, ident),
        Err(e) => {
            let now = Instant::now();
            if rejects.note(crate::rejects::reason(&e), now) {
                warn!(socket = name, peer = %peer_name(&ident), "rejected message: {e}");
            }
            // A notice makes the peer give up: only for what it cannot get past by itself (a
            // wrong key, or its clock), never for a replay or a message from before this
            // controller started (which a client queued while it was away, and which says
            // nothing about its next ones).
            if matches!(
                e,
                WireError::Auth(
                    AuthError::Unsigned
                        | AuthError::Malformed
                        | AuthError::BadSignature
                        | AuthError::Undecryptable
                        | AuthError::Stale(_)
                )
            ) && rejects.may_notify(&ident, now)
            {
                let notice = auth_error_frames(
                    vec![zmq::Message::from(&ident[..])],
                    &format!("the controller rejected the message: {e}; check that your connection file matches the running controller's"),
                );
                let _ = socket.send_multipart(notice, zmq::DONTWAIT);
            }
        }
    }
    Ok(true)
}
