//! Shared objects from the command line, for scripts and other tools: `cluster queue`,
//! `var`, `counter`, `event`, `publish`, `subscribe` and `shared`. Values are JSON on the
//! command line and on stdout (one value a line); a wait stops at Ctrl-C, cancelled on the
//! controller so that nothing is taken for nobody.

use super::oneshot::{connect, parse_value};
use crate::cli::{
    ConnArgs, CounterArgs, EventCommand, PublishArgs, QueueCommand, SharedArgs, SubscribeArgs,
    VarCommand,
};
use crate::util::{print_json, print_json_pretty, stop_flag, UsageError};
use anyhow::Context;
use client::shared::check_result;
use client::{Client, ClusterError, SharedOp, SharedResult, Value};
use protocol::shared::MAX_NAME_BYTES;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often `cluster subscribe` looks at Ctrl-C between messages.
const TICK: Duration = Duration::from_millis(200);

/// Refuses a name the controller would refuse, before connecting.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        return Err(UsageError(format!("a {what} needs a name; give a non-empty NAME")).into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(UsageError(format!(
            "the {what} name is {} bytes; names are at most {MAX_NAME_BYTES} bytes",
            name.len()
        ))
        .into());
    }
    Ok(())
}

/// `--timeout SECS` as milliseconds.
fn timeout_ms(secs: Option<f64>) -> anyhow::Result<Option<u64>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some((s * 1000.0).round() as u64)),
        Some(s) => Err(UsageError(format!(
            "--timeout {s} is not a number of seconds; give 0 or more, e.g. --timeout 2.5"
        ))
        .into()),
    }
}

fn open(profile: &str, conn: &ConnArgs, what: &str, name: &str) -> anyhow::Result<Client> {
    check_name(what, name)?;
    connect(profile, conn)
}

/// Runs one operation, waiting until it is answered or Ctrl-C (then cancelled); errors and
/// timeouts of the controller as errors.
fn run(
    rc: &Client,
    op: SharedOp,
    values: Vec<Value>,
) -> anyhow::Result<(SharedResult, Vec<Value>)> {
    let stop = stop_flag()?;
    let (result, values) = rc.shared_call(op.clone(), values, &|| stop.load(Ordering::Relaxed))?;
    Ok((check_result(&op, result)?, values))
}

fn unexpected(result: SharedResult) -> anyhow::Error {
    ClusterError::Protocol(format!("unexpected answer {result:?}")).into()
}

fn print_int(result: SharedResult) -> anyhow::Result<ExitCode> {
    match result {
        SharedResult::Int { value } => {
            print_json(&serde_json::json!(value));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(other)),
    }
}

fn print_first(values: Vec<Value>) -> anyhow::Result<ExitCode> {
    let v = values
        .into_iter()
        .next()
        .ok_or_else(|| ClusterError::Protocol("an answer without its value".into()))?;
    print_json(&v.to_display_json());
    Ok(ExitCode::SUCCESS)
}

pub fn queue(profile: &str, c: &QueueCommand) -> anyhow::Result<ExitCode> {
    match c {
        QueueCommand::Put { name, values, conn } => {
            let values = values
                .iter()
                .map(|t| parse_value(t))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let rc = open(profile, conn, "queue", name)?;
            let op = SharedOp::Put {
                name: name.clone(),
                front: false,
            };
            print_int(run(&rc, op, values)?.0)
        }
        QueueCommand::Get {
            name,
            timeout,
            conn,
        } => {
            let timeout_ms = timeout_ms(*timeout)?;
            let rc = open(profile, conn, "queue", name)?;
            let op = SharedOp::Get {
                name: name.clone(),
                max: 1,
                timeout_ms,
            };
            print_first(run(&rc, op, vec![])?.1)
        }
        QueueCommand::Size { name, conn } => {
            let rc = open(profile, conn, "queue", name)?;
            print_int(run(&rc, SharedOp::Qsize { name: name.clone() }, vec![])?.0)
        }
    }
}

pub fn var(profile: &str, c: &VarCommand) -> anyhow::Result<ExitCode> {
    match c {
        VarCommand::Set { name, value, conn } => {
            let value = parse_value(value)?;
            let rc = open(profile, conn, "variable", name)?;
            run(&rc, SharedOp::SetVar { name: name.clone() }, vec![value])?;
            Ok(ExitCode::SUCCESS)
        }
        VarCommand::Get {
            name,
            timeout,
            conn,
        } => {
            let timeout_ms = timeout_ms(*timeout)?;
            let rc = open(profile, conn, "variable", name)?;
            let op = SharedOp::GetVar {
                name: name.clone(),
                timeout_ms,
            };
            print_first(run(&rc, op, vec![])?.1)
        }
        VarCommand::Delete { name, conn } => {
            let rc = open(profile, conn, "variable", name)?;
            run(&rc, SharedOp::DeleteVar { name: name.clone() }, vec![])?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn counter(profile: &str, a: &CounterArgs) -> anyhow::Result<ExitCode> {
    let rc = open(profile, &a.conn, "counter", &a.name)?;
    let name = a.name.clone();
    let op = match a.add {
        Some(n) => SharedOp::Add { name, n },
        None => SharedOp::Count { name },
    };
    print_int(run(&rc, op, vec![])?.0)
}

pub fn event(profile: &str, c: &EventCommand) -> anyhow::Result<ExitCode> {
    let (name, conn) = match c {
        EventCommand::Set { name, conn }
        | EventCommand::Clear { name, conn }
        | EventCommand::Wait { name, conn, .. }
        | EventCommand::IsSet { name, conn } => (name.clone(), conn),
    };
    let op = match c {
        EventCommand::Set { .. } => SharedOp::SetEvent { name: name.clone() },
        EventCommand::Clear { .. } => SharedOp::ClearEvent { name: name.clone() },
        EventCommand::IsSet { .. } => SharedOp::IsSet { name: name.clone() },
        EventCommand::Wait { timeout, .. } => SharedOp::WaitEvent {
            name: name.clone(),
            timeout_ms: timeout_ms(*timeout)?,
        },
    };
    let rc = open(profile, conn, "event", &name)?;
    let waits = matches!(op, SharedOp::WaitEvent { .. });
    let within = op.timeout_ms();
    match run(&rc, op, vec![])?.0 {
        SharedResult::Done {} => Ok(ExitCode::SUCCESS),
        SharedResult::Bool { value: false } if waits => {
            // A failing command prints nothing on stdout: the exit code and one line say it.
            let secs = within.unwrap_or(0) as f64 / 1000.0;
            Err(ClusterError::Shared {
                ename: "TimeoutError".into(),
                message: format!("event {name} was not set within {secs:.1} s"),
            }
            .into())
        }
        SharedResult::Bool { value } => {
            print_json(&serde_json::json!(value));
            Ok(ExitCode::SUCCESS)
        }
        other => Err(unexpected(other)),
    }
}

pub fn publish(profile: &str, a: &PublishArgs) -> anyhow::Result<ExitCode> {
    let value = parse_value(&a.value)?;
    let rc = open(profile, &a.conn, "topic", &a.topic)?;
    let op = SharedOp::Publish {
        topic: a.topic.clone(),
    };
    print_int(run(&rc, op, vec![value])?.0)
}

pub fn subscribe(profile: &str, a: &SubscribeArgs) -> anyhow::Result<ExitCode> {
    let rc = open(profile, &a.conn, "topic", &a.topic)?;
    let stop = stop_flag()?;
    let sub = rc.subscribe(&a.topic)?;
    let mut seen: u64 = 0;
    let mut reported_dropped = 0;
    let stdout = std::io::stdout();
    while !stop.load(Ordering::Relaxed) && a.count.is_none_or(|n| seen < n) {
        let want = a.count.map_or(1000, |n| (n - seen).min(1000)) as u32;
        let messages = match sub.get_many(want, Some(TICK)) {
            Ok(m) => m,
            Err(e) if e.ename() == "TimeoutError" => continue,
            Err(e) => return Err(e.into()),
        };
        let mut out = stdout.lock();
        for m in &messages {
            serde_json::to_writer(&mut out, &m.to_display_json())?;
            writeln!(out)?;
        }
        out.flush()?;
        seen += messages.len() as u64;
        if sub.dropped() > reported_dropped {
            eprintln!(
                "warning: the controller dropped {} messages for this subscriber because it did not keep up",
                sub.dropped() - reported_dropped
            );
            reported_dropped = sub.dropped();
        }
    }
    sub.close()?;
    Ok(ExitCode::SUCCESS)
}

pub fn list(profile: &str, a: &SharedArgs) -> anyhow::Result<ExitCode> {
    let rc = connect(profile, &a.conn)?;
    let objects = rc.shared_objects()?;
    if a.json {
        print_json_pretty(&serde_json::to_value(&objects).context("shared objects")?);
        return Ok(ExitCode::SUCCESS);
    }
    if objects.is_empty() {
        println!("no shared objects");
        return Ok(ExitCode::SUCCESS);
    }
    let name_width = objects
        .iter()
        .map(|o| o.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    println!(
        "{:<8}  {:<name_width$}  {:>10}  {:>12}  {:>7}  {:>5}  {:>7}",
        "KIND", "NAME", "SIZE", "BYTES", "WAITERS", "LIMIT", "DROPPED"
    );
    for o in &objects {
        println!(
            "{:<8}  {:<name_width$}  {:>10}  {:>12}  {:>7}  {:>5}  {:>7}",
            o.kind, o.name, o.size, o.bytes, o.waiters, o.limit, o.dropped
        );
    }
    Ok(ExitCode::SUCCESS)
}
