//! Magics about names and the cluster: `%who` (this session's names, or `--engines`), `%engines` (the
//! engine table) and `%abort` (cancel what this session started).

use super::Call;
use crate::cell::{CellError, Cells};
use client::ClusterError;
use std::collections::BTreeMap;

fn failed(e: ClusterError) -> CellError {
    CellError::Failed(e.to_string(), None)
}

/// `%who`: the names this session defined, with their types, as IPython lists the
/// interactive namespace; `%who --engines`: every name in the %px targets' namespaces.
pub fn who(cells: &mut Cells, call: &Call) -> Result<(), CellError> {
    match call.arg.trim() {
        "" => who_here(cells),
        "--engines" | "-e" => who_engines(cells),
        other => Err(CellError::Failed(
            format!("%who takes nothing (this session's names) or --engines, not {other:?}"),
            Some(2),
        )),
    }
}

/// The session's own global names.
fn who_here(cells: &mut Cells) -> Result<(), CellError> {
    let ctx = cells.ctx().clone();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in cells
        .lua()
        .globals()
        .pairs::<String, mlua::Value>()
        .filter_map(Result::ok)
    {
        if !ctx.is_predefined(&k) {
            names.insert(k, script::convert::wire_type_name(&v).to_string());
        }
    }
    if names.is_empty() {
        println!("Interactive namespace is empty.");
    } else {
        let parts: Vec<String> = names.iter().map(|(k, t)| format!("{k} ({t})")).collect();
        println!("{}", parts.join("   "));
    }
    Ok(())
}

/// Every name in the %px targets' namespaces.
fn who_engines(cells: &mut Cells) -> Result<(), CellError> {
    let ctx = cells.ctx();
    let view = ctx.client().direct_view(ctx.px_targets()).map_err(failed)?;
    let per_engine = view.names().map_err(failed)?;
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let maps = match per_engine {
        protocol::Value::List(l) => l,
        one => vec![one],
    };
    for m in maps {
        if let protocol::Value::Map(m) = m {
            for (k, v) in m {
                names.insert(k, v.as_str().unwrap_or("?").to_string());
            }
        }
    }
    if names.is_empty() {
        println!("The engines' namespaces are empty.");
    } else {
        let parts: Vec<String> = names.iter().map(|(k, t)| format!("{k} ({t})")).collect();
        println!("{}", parts.join("   "));
    }
    Ok(())
}

/// `%engines`: the table `cluster engines` prints.
pub fn engines(cells: &mut Cells, _: &Call) -> Result<(), CellError> {
    let engines = cells.ctx().client().engines().map_err(failed)?;
    println!("{}", client::engines_table(&engines));
    Ok(())
}

/// `%abort`: cancels every unfinished task.
pub fn abort(cells: &mut Cells, _: &Call) -> Result<(), CellError> {
    let r = cells.ctx().client().abort_all().map_err(failed)?;
    println!(
        "aborted: {} not yet started, {} sent to their engines",
        r.unassigned, r.forwarded
    );
    Ok(())
}
