//! The executor's loop: receive a task, run it against the namespace, send its signed
//! reply, in arrival order; on stop, answer what already arrived as aborted and say goodbye.

use super::control::Shared;
use super::port::TaskLink;
use super::{EngineError, EngineExit};
use crate::executor::{execute, Failure, Namespace};
use crate::registry::Registry;
use protocol::events::ErrorBrief;
use protocol::messages::{
    EngineMessage, ErrorKind, ReplyMeta, TaskError, TaskReply, TaskRequest, TASK_REPLY,
    TASK_REQUEST,
};
use protocol::wire::Encoder;
use protocol::{EngineId, Header, Received};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tracing::debug;

/// Error name of a task that a SIGINT interrupted, as in Python.
const KEYBOARD_INTERRUPT: &str = "KeyboardInterrupt";

/// Receives tasks, runs them one at a time in arrival order, sends each reply. Returns when
/// `stop` is set or the control thread decides the engine must stop.
pub(super) fn executor_loop(
    link: &TaskLink,
    shared: &Shared,
    registry: &Registry,
    ns: &mut Namespace,
    id: EngineId,
    stop: &AtomicBool,
) -> Result<EngineExit, EngineError> {
    let task = &link.socket;
    let encoder = &link.encoder;
    let exit = loop {
        if stop.load(Ordering::Relaxed) {
            shared.stop(EngineExit::Stopped);
        }
        if let Some(exit) = shared.exit() {
            break exit;
        }
        // Tasks that arrived while a shared call waited go first, without polling.
        if !link.has_backlog() {
            // A signal (Ctrl-C, SIGTERM) interrupts the poll: go round and see the stop flag.
            match task.poll(zmq::POLLIN, 100) {
                Ok(0) | Err(zmq::Error::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        while let Some(msg) = link.next() {
            if msg.msg_type() != TASK_REQUEST {
                // A shared_reply here answers a call that stopped waiting (aborted).
                debug!("ignored a {} on the task socket", msg.msg_type());
                continue;
            }
            let frames = run_one(msg, ns, shared, registry, encoder, id);
            task.send_multipart(frames, 0)?;
            if shared.exit().is_some() || stop.load(Ordering::Relaxed) {
                break;
            }
        }
    };
    // Stopping: tasks that already arrived are answered as aborted, then goodbye.
    while let Some(msg) = link.next() {
        if msg.msg_type() == TASK_REQUEST {
            let failure = Failure::new(
                "TaskAborted",
                format!("engine {id} stopped before running the task: {exit}"),
            );
            let frames = reply_frames(encoder, &msg.header, id, Err(failure), 0, String::new());
            task.send_multipart(frames, 0)?;
        }
    }
    if exit.lost_controller() {
        // Nobody will read what is still queued: do not hold the exit for it.
        let _ = task.set_linger(0);
    } else {
        let bye = encoder.tagged(
            vec![],
            None,
            &serde_json::json!({}),
            &EngineMessage::Unregister(Default::default()),
            vec![],
        );
        task.send_multipart(bye.frames, 0)?;
    }
    Ok(exit)
}

/// Runs one task and returns its signed reply.
fn run_one(
    mut msg: Received,
    ns: &mut Namespace,
    shared: &Shared,
    registry: &Registry,
    encoder: &Encoder,
    id: EngineId,
) -> Vec<zmq::Message> {
    let msg_id = msg.header.msg_id.clone();
    {
        let mut cur = shared.current.lock().unwrap_or_else(|e| e.into_inner());
        let was_aborted = shared
            .aborted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(&msg_id);
        if was_aborted {
            let failure = Failure::new("TaskAborted", "task was aborted before it started");
            return reply_frames(encoder, &msg.header, id, Err(failure), 0, String::new());
        }
        *cur = Some(msg_id);
        shared.cancel.reset();
        shared.interrupted.store(false, Ordering::SeqCst);
    }
    let started = Instant::now();
    let buffers = msg.take_buffers();
    let binary: usize = buffers.iter().map(|b| b.len()).sum();
    let outcome = match msg.content::<TaskRequest>() {
        Ok(req) => ns
            .admit_binary(binary)
            .and_then(|()| execute(req, &buffers, ns, registry, &shared.cancel)),
        Err(e) if e.to_string().contains("recursion limit exceeded") => Err(Failure::new(
            "ValueError",
            "the task's arguments nest lists or maps too deeply (a message is read at most 128 levels deep)",
        )),
        Err(e) => Err(Failure::new("ProtocolError", e.to_string())),
    };
    let outcome = match outcome {
        Err(f) if f.is_abort() && shared.interrupted.load(Ordering::SeqCst) => Err(Failure::new(
            KEYBOARD_INTERRUPT,
            format!("engine {id} was interrupted (SIGINT) while running the task"),
        )),
        other => other,
    };
    drop(buffers);
    ns.tidy();
    let stdout = ns.take_output();
    *shared.current.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let duration_us = started.elapsed().as_micros() as u64;
    let frames = reply_frames(
        encoder,
        &msg.header,
        id,
        outcome,
        duration_us,
        stdout.clone(),
    );
    let size: usize = frames.iter().map(|f| f.len()).sum();
    if size > shared.max_bytes {
        // The controller would drop it (and the connection): say so instead.
        let failure = Failure::new(
            "ValueError",
            format!(
                "the result is {size} bytes, over the cluster's message limit of {} bytes (--max-message-bytes)",
                shared.max_bytes
            ),
        );
        return reply_frames(encoder, &msg.header, id, Err(failure), duration_us, stdout);
    }
    frames
}

/// The signed `task_reply` for a finished task.
fn reply_frames(
    encoder: &Encoder,
    parent: &Header,
    id: EngineId,
    outcome: Result<protocol::Value, Failure>,
    duration_us: u64,
    stdout: String,
) -> Vec<zmq::Message> {
    match outcome {
        Ok(v) => {
            let meta = ReplyMeta {
                engine_id: Some(id),
                duration_us,
                stdout,
                error: None,
            };
            let mut buffers = Vec::new();
            let reply = TaskReply::Ok {
                value: v.to_wire(&mut buffers),
            };
            encoder
                .raw(vec![], TASK_REPLY, Some(parent), &meta, &reply, buffers)
                .frames
        }
        Err(f) => {
            // An interrupted task was stopped on purpose, like an aborted one: never retried.
            let kind = if f.is_abort() || f.ename == KEYBOARD_INTERRUPT {
                ErrorKind::Aborted
            } else {
                ErrorKind::Remote
            };
            failure_frames(encoder, parent, Some(id), kind, f, duration_us, stdout)
        }
    }
}

/// The signed `task_reply` for a task that failed as `kind`.
pub(super) fn failure_frames(
    encoder: &Encoder,
    parent: &Header,
    id: Option<EngineId>,
    kind: ErrorKind,
    f: Failure,
    duration_us: u64,
    stdout: String,
) -> Vec<zmq::Message> {
    // The controller reads this brief (never the content) to report the outcome.
    let meta = ReplyMeta {
        engine_id: id,
        duration_us,
        stdout,
        error: Some(ErrorBrief::new(kind, &f.ename, &f.evalue)),
    };
    let reply = TaskReply::Error(TaskError {
        kind,
        ename: f.ename,
        evalue: f.evalue,
        traceback: f.traceback,
        engine_id: id,
    });
    encoder
        .raw(vec![], TASK_REPLY, Some(parent), &meta, &reply, vec![])
        .frames
}
