//! One-shot commands for shells and scripts: each connects, does one thing, prints JSON on
//! stdout, and exits non-zero with one line on stderr when it fails.

use crate::cli::{ApplyArgs, ConnArgs, MapArgs, QueueStatusArgs, StatusArgs};
use crate::util::{print_json, print_json_pretty, UsageError};
use anyhow::Context;
use client::{AsyncResult, Client, Targets, Value};
use std::process::ExitCode;
use std::time::Duration;

pub(crate) fn connect(profile: &str, conn: &ConnArgs) -> anyhow::Result<Client> {
    Ok(match &conn.file {
        Some(path) => Client::from_file(path)?,
        None => Client::connect(profile)?,
    })
}

fn parse_targets(s: &str) -> anyhow::Result<Targets> {
    s.parse::<Targets>().map_err(|e| UsageError(e).into())
}

/// Parses a command-line argument as a JSON value.
pub(crate) fn parse_value(text: &str) -> anyhow::Result<Value> {
    // Quote at most the start of a long argument in the message.
    let shown: String = match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    };
    Value::from_json_text(text).map_err(|e| match e {
        protocol::value::ValueError::Json(j) if j.to_string().contains("recursion limit") => {
            UsageError(format!(
                "argument {shown:?} nests lists or maps more than 127 levels deep, more than a task may carry"
            ))
            .into()
        }
        protocol::value::ValueError::Json(_) if text.len() > 60 => UsageError(format!(
            "argument {shown:?} is not JSON; write numbers as 10 or 2.5, strings in double quotes, lists as '[1,2]'"
        ))
        .into(),
        protocol::value::ValueError::Json(_) => UsageError(format!(
            "argument {text:?} is not JSON; write numbers as 10 or 2.5, strings as '\"{text}\"', lists as '[1,2]'"
        ))
        .into(),
        other => UsageError(format!("argument {text:?}: {other}")).into(),
    })
}

fn finish(ar: AsyncResult, timeout: Option<f64>) -> anyhow::Result<ExitCode> {
    let value = match timeout {
        Some(secs) => ar.get_timeout(Duration::from_secs_f64(secs.max(0.0)))?,
        None => ar.get()?,
    };
    print_json(&value.to_display_json());
    Ok(ExitCode::SUCCESS)
}

pub fn ids(profile: &str, conn: &ConnArgs) -> anyhow::Result<ExitCode> {
    let rc = connect(profile, conn)?;
    let ids: Vec<u32> = rc.ids()?.into_iter().map(|i| i.0).collect();
    print_json(&serde_json::json!(ids));
    Ok(ExitCode::SUCCESS)
}

pub fn apply(profile: &str, a: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let args = a
        .args
        .iter()
        .map(|t| parse_value(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let targets = parse_targets(&a.targets)?;
    let rc = connect(profile, &a.conn)?;
    let ar = if a.lb {
        rc.load_balanced_view()
            .retries(a.retries)
            .apply_async(&a.func, args)?
    } else {
        // A direct call always prints a list, one value per target, even for one target.
        let targets = match targets {
            Targets::One(id) => Targets::Many(vec![id]),
            t => t,
        };
        rc.direct_view(targets)?.apply_async(&a.func, args)?
    };
    finish(ar, a.timeout)
}

pub fn map(profile: &str, a: &MapArgs) -> anyhow::Result<ExitCode> {
    let items = match parse_value(&a.items)? {
        Value::List(items) => items,
        other => {
            return Err(UsageError(format!(
                "map needs a JSON array of items, got {} {}",
                other.type_name(),
                a.items
            ))
            .into())
        }
    };
    let targets = parse_targets(&a.targets)?;
    let rc = connect(profile, &a.conn)?;
    let ar = if a.lb {
        rc.load_balanced_view()
            .retries(a.retries)
            .map_async(&a.func, items)?
    } else {
        rc.direct_view(targets)?.map_async(&a.func, items)?
    };
    finish(ar, a.timeout)
}

pub fn status(profile: &str, a: &StatusArgs) -> anyhow::Result<ExitCode> {
    let rc = connect(profile, &a.conn)?;
    let engines = rc.engines()?;
    if a.json {
        print_json_pretty(&serde_json::to_value(&engines).context("engines")?);
        return Ok(ExitCode::SUCCESS);
    }
    let info = rc.connection_info();
    println!(
        "controller {} (pid {}), scheduler {}, {} engine{}",
        info.url(info.port),
        info.controller_pid,
        rc.scheme(),
        engines.len(),
        if engines.len() == 1 { "" } else { "s" }
    );
    println!("{}", client::engines_table(&engines));
    Ok(ExitCode::SUCCESS)
}

pub fn functions(profile: &str, conn: &ConnArgs) -> anyhow::Result<ExitCode> {
    let rc = connect(profile, conn)?;
    let fns = rc.functions()?;
    if fns.is_empty() {
        anyhow::bail!("no engines are registered, so no functions are known; start some with `cluster engines -n N`");
    }
    print_json_pretty(&serde_json::to_value(fns).context("functions")?);
    Ok(ExitCode::SUCCESS)
}

pub fn queue_status(profile: &str, a: &QueueStatusArgs) -> anyhow::Result<ExitCode> {
    let rc = connect(profile, &a.conn)?;
    let q = match parse_targets(&a.targets)? {
        Targets::All => rc.queue_status(None)?,
        // Through a view, so that unknown ids are refused the same way as for apply/map.
        targets => rc.direct_view(targets)?.queue_status()?,
    };
    print_json_pretty(&serde_json::to_value(q).context("queue status")?);
    Ok(ExitCode::SUCCESS)
}
