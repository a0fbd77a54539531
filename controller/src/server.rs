//! The controller's sockets and its single event loop.
//!
//! Four sockets, all bound at start-up (port 0 picks a free port; the chosen ports go into
//! the connection files): a ROUTER for clients, a ROUTER for engines, a PUB that sends
//! heartbeat pings and a ROUTER where engines answer them. Heartbeats have their own
//! sockets so that a 100 MB transfer on the task socket never delays them.
//!
//! The loop owns all state (no locks): it polls the sockets, decodes, hands each message to
//! `state`, and sends what `state` asks for. The poll timeout is the heartbeat tick.
//!
//! Every message it rejects (malformed, over the size limit, unsigned, badly signed,
//! replayed, of the wrong shape, of an unknown type, or from a peer that may not send it) is
//! logged once, at warn level, as `rejected message: <reason>` with the socket and peer; a
//! peer whose signature failed is also told so.

use crate::scheduler::{Scheduler, Scheme};
use crate::state::{Comm, Ident, PongCheck, State, StateConfig};
use protocol::auth::{generate_key, Signer};
use protocol::connection::{ConnectionInfo, FileKind, FORMAT_VERSION};
use protocol::messages::{
    ClientRequest, ControllerReply, ControllerToEngine, EngineMessage, Heartbeat, Ping, ReplyMeta,
    TaskError, TaskReply, PING_TOPIC, TASK_REPLY, TASK_REQUEST,
};
use protocol::wire::{auth_error_frames, Decoder, Encoder, RawParts, WireError};
use protocol::{Header, HeartbeatConfig, Session};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// Longest time between two checks for engines silent past the heartbeat deadline.
const HEARTBEAT_CHECK: Duration = Duration::from_millis(50);

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
    ip: &str,
    port: u16,
    max: usize,
) -> Result<(zmq::Socket, u16), ControllerError> {
    let s = ctx.socket(kind)?;
    s.set_linger(if kind == zmq::PUB { 0 } else { 1000 })?;
    if kind == zmq::ROUTER {
        // Never drop a message because a peer is slow to read: tasks must not vanish.
        s.set_sndhwm(0)?;
        s.set_rcvhwm(0)?;
        s.set_router_handover(true)?;
    }
    s.set_maxmsgsize(max as i64)?;
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
    let last = s
        .get_last_endpoint()?
        .map_err(|_| ControllerError::Socket(zmq::Error::EINVAL))?;
    let port = last
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .ok_or(ControllerError::Socket(zmq::Error::EINVAL))?;
    Ok((s, port))
}

/// The address other hosts can reach this one at, for `--ip '*'` without `--location`.
pub fn default_location(ip: &str) -> String {
    if ip != "*" && ip != "0.0.0.0" {
        return ip.to_string();
    }
    // Asking the routing table which source address reaches an outside host sends nothing.
    let routed = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| {
        s.connect("192.0.2.1:9")?;
        s.local_addr()
    });
    match routed {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip().to_string(),
        _ => "127.0.0.1".to_string(),
    }
}

impl Controller {
    /// Binds every socket and prepares the connection-file contents.
    pub fn bind(cfg: ControllerConfig) -> Result<Controller, ControllerError> {
        let ctx = zmq::Context::new();
        let max = cfg.max_message_bytes;
        let (client, client_port) = bind(&ctx, zmq::ROUTER, &cfg.ip, cfg.ports[0], max)?;
        let (engine, engine_port) = bind(&ctx, zmq::ROUTER, &cfg.ip, cfg.ports[1], max)?;
        let (hb_pub, ping_port) = bind(&ctx, zmq::PUB, &cfg.ip, cfg.ports[2], max)?;
        let (hb_pong, pong_port) = bind(&ctx, zmq::ROUTER, &cfg.ip, cfg.ports[3], max)?;
        let key = cfg.key.clone().unwrap_or_else(generate_key);
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
            heartbeat: cfg.heartbeat,
            max_message_bytes: max,
            controller_pid: std::process::id(),
            ssh: None,
        };
        let engine_info = ConnectionInfo {
            kind: FileKind::Engine,
            port: engine_port,
            hb_pong: Some(pong_port),
            ..client_info.clone()
        };
        let signer = Signer::new(&key);
        let scheduler = Scheduler::new(cfg.scheme);
        info!(
            client = client_port,
            engine = engine_port,
            hb_ping = ping_port,
            hb_pong = pong_port,
            ip = %cfg.ip,
            scheme = %cfg.scheme,
            "controller bound"
        );
        Ok(Controller {
            sockets: Sockets {
                client,
                engine,
                hb_pub,
                hb_pong,
            },
            _ctx: ctx,
            encoder: Encoder::new(signer.clone(), Arc::new(Session::new())),
            decoder: Decoder::new(signer, max),
            state: State::new(
                StateConfig {
                    heartbeat: cfg.heartbeat,
                    hwm: cfg.hwm,
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
            _ctx,
            encoder,
            mut decoder,
            mut state,
            heartbeat,
            ..
        } = self;
        let mut comm = Out {
            s: &sockets,
            enc: &encoder,
        };
        let period = Duration::from_millis(heartbeat.period_ms.max(1));
        let mut next_ping = Instant::now();
        let mut seq: u64 = 0;
        // Deaths are checked this often, not only once per ping period, so that `ids` lists a
        // dead engine for at most the heartbeat deadline plus this.
        let check_every = HEARTBEAT_CHECK.min(period);
        let mut next_check = Instant::now() + check_every;
        loop {
            let now = Instant::now();
            if stop.load(Ordering::Relaxed) {
                state.begin_shutdown(now, &mut comm);
            }
            if state.shutdown_complete(now, &mut comm) {
                info!("controller stopped");
                return Ok(());
            }
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
            let timeout = next_ping
                .min(next_check)
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
                    any |= drain_one(&sockets.hb_pong, "heartbeat", &mut decoder, |msg, ident| {
                        match msg.tagged::<Heartbeat>() {
                            Ok(Heartbeat::Pong(p)) => {
                                match state.pong_from(&ident, p.engine_id, Instant::now()) {
                                    PongCheck::Alive => {}
                                    PongCheck::NotRegistered => {
                                        // Declared dead (or from before a restart): say so, so
                                        // that it stops instead of running unregistered.
                                        warn!(socket = "heartbeat", peer = %hex_ident(&ident), "rejected message: pong from engine {}, which is not registered; telling it to stop", p.engine_id);
                                        let out = encoder.tagged(
                                            vec![zmq::Message::from(ident)],
                                            None,
                                            &serde_json::json!({}),
                                            &ControllerToEngine::NotRegistered(Default::default()),
                                            vec![],
                                        );
                                        send(&sockets.hb_pong, out.frames, "not-registered notice");
                                    }
                                    PongCheck::WrongPeer => {
                                        warn!(socket = "heartbeat", peer = %hex_ident(&ident), "rejected message: pong for engine {} from another peer's connection", p.engine_id)
                                    }
                                }
                            }
                            Ok(_) => {
                                warn!(socket = "heartbeat", peer = %hex_ident(&ident), "rejected message: {} is not a heartbeat answer", msg.msg_type().escape_debug())
                            }
                            Err(e) => {
                                warn!(socket = "heartbeat", peer = %hex_ident(&ident), "rejected message: {e}")
                            }
                        }
                    })?;
                }
                if ready[1] {
                    any |= drain_one(&sockets.engine, "engine", &mut decoder, |mut msg, ident| {
                        let now = Instant::now();
                        if msg.msg_type() == TASK_REPLY {
                            msg.idents.clear();
                            state.task_reply(&ident, msg, now, &mut comm);
                            return;
                        }
                        match msg.tagged::<EngineMessage>() {
                            Ok(m @ EngineMessage::RegisterRequest(_)) => {
                                state.engine_message(ident, &msg.header, m, now, &mut comm)
                            }
                            Ok(m) => {
                                if state.is_registered_ident(&ident) {
                                    state.engine_message(ident, &msg.header, m, now, &mut comm)
                                } else {
                                    warn!(socket = "engine", peer = %hex_ident(&ident), "rejected message: {} from an engine that is not registered", msg.msg_type().escape_debug());
                                    comm.to_engine(
                                        &ident,
                                        Some(&msg.header),
                                        ControllerToEngine::NotRegistered(Default::default()),
                                    );
                                }
                            }
                            Err(e) => {
                                warn!(socket = "engine", peer = %hex_ident(&ident), "rejected message: {e}")
                            }
                        }
                    })?;
                }
                if ready[0] {
                    any |= drain_one(&sockets.client, "client", &mut decoder, |mut msg, ident| {
                        let now = Instant::now();
                        if msg.msg_type() == TASK_REQUEST {
                            msg.idents.clear();
                            state.submit(ident, msg, now, &mut comm);
                            return;
                        }
                        match msg.tagged::<ClientRequest>() {
                            Ok(req) => {
                                state.client_request(&ident, &msg.header, req, now, &mut comm)
                            }
                            Err(e) => {
                                warn!(socket = "client", peer = %hex_ident(&ident), "rejected message: {e}");
                                let reply =
                                    ControllerReply::ErrorReply(protocol::messages::ErrorReply {
                                        message: e.to_string(),
                                    });
                                comm.reply(&ident, &msg.header, reply);
                            }
                        }
                    })?;
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
            // After the pongs that arrived are counted, so that a controller that was itself
            // held up (a busy machine, a debugger) does not declare live engines dead.
            let now = Instant::now();
            if now >= next_check {
                state.check_heartbeats(now, &mut comm);
                next_check = now + check_every;
            }
        }
    }
}

/// Receives at most one message from `socket` without blocking and hands it, decoded, to
/// `handle` with the sender's routing identity. Rejected messages are logged once, and a
/// peer whose signature failed is told so. Returns whether a message was read.
fn drain_one(
    socket: &zmq::Socket,
    name: &str,
    decoder: &mut Decoder,
    mut handle: impl FnMut(protocol::Received, Ident),
) -> Result<bool, ControllerError> {
    let frames = match protocol::wire::recv_frames(socket, zmq::DONTWAIT) {
        Ok(f) => f,
        Err(zmq::Error::EAGAIN) => return Ok(false),
        Err(zmq::Error::EINTR) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let ident: Ident = frames.first().map(|f| f.to_vec()).unwrap_or_default();
    match decoder.decode(frames) {
        Ok(msg) => handle(msg, ident),
        Err(e) => {
            warn!(socket = name, peer = %hex_ident(&ident), "rejected message: {e}");
            if let WireError::Auth(_) = e {
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

fn hex_ident(ident: &[u8]) -> String {
    if ident.iter().all(|b| b.is_ascii_graphic()) {
        String::from_utf8_lossy(ident).into_owned()
    } else {
        ident.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Sends what the state asks for.
struct Out<'a> {
    s: &'a Sockets,
    enc: &'a Encoder,
}

fn send(socket: &zmq::Socket, frames: Vec<zmq::Message>, what: &str) {
    if let Err(e) = socket.send_multipart(frames, 0) {
        warn!("cannot send {what}: {e}");
    }
}

impl Comm for Out<'_> {
    fn forward_task(&mut self, engine: &[u8], task: RawParts) {
        send(
            &self.s.engine,
            task.into_frames(vec![zmq::Message::from(engine)]),
            "task",
        );
    }

    fn to_engine(&mut self, engine: &[u8], parent: Option<&Header>, msg: ControllerToEngine) {
        // Answers to an engine's own requests go back on the engine socket; everything
        // else (abort, shutdown, not-registered) on its control channel, which its control
        // thread reads even while a task runs.
        let (socket, ident) = if parent.is_some() {
            (&self.s.engine, engine.to_vec())
        } else {
            (&self.s.hb_pong, protocol::wire::control_ident(engine))
        };
        let out = self.enc.tagged(
            vec![zmq::Message::from(ident)],
            parent,
            &serde_json::json!({}),
            &msg,
            vec![],
        );
        send(socket, out.frames, "engine message");
    }

    fn forward_reply(&mut self, client: &[u8], reply: RawParts) {
        send(
            &self.s.client,
            reply.into_frames(vec![zmq::Message::from(client)]),
            "task reply",
        );
    }

    fn task_failed(&mut self, client: &[u8], task: &Header, error: TaskError) {
        let meta = ReplyMeta {
            engine_id: error.engine_id,
            ..Default::default()
        };
        let out = self.enc.raw(
            vec![zmq::Message::from(client)],
            TASK_REPLY,
            Some(task),
            &meta,
            &TaskReply::Error(error),
            vec![],
        );
        send(&self.s.client, out.frames, "task failure");
    }

    fn reply(&mut self, client: &[u8], parent: &Header, msg: ControllerReply) {
        let out = self.enc.tagged(
            vec![zmq::Message::from(client)],
            Some(parent),
            &serde_json::json!({}),
            &msg,
            vec![],
        );
        send(&self.s.client, out.frames, "reply");
    }
}
