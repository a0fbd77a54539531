//! Re-attaching a session to its cluster after the cluster was stopped and started again
//! (same profile): `rc:reconnect()` by hand, or on its own before a cell when the
//! connection file now describes another controller. The session's Lua state, its names
//! and its history stay; `rc`, `dview` and `lview` are bound to the new connection.

use crate::api;
use crate::context::{self, Context};
use client::{Client, ClusterError};
use protocol::connection::FileKind;
use std::path::PathBuf;

/// Connects again through the session's connection file and rebinds `rc`, `dview` and
/// `lview`; returns the line to show.
pub fn reconnect(lua: &mlua::Lua) -> Result<String, ClusterError> {
    let ctx = context::of(lua).map_err(|e| ClusterError::Usage(e.to_string()))?;
    let path = file_of(&ctx)?;
    let client = Client::from_file(&path)?;
    api::install_client(lua, &client).map_err(|e| ClusterError::Usage(e.to_string()))?;
    ctx.set_client(client.clone());
    ctx.set_file_stamp(stamp(&path));
    ctx.refresh_functions();
    let n = client.ids().map(|ids| ids.len()).unwrap_or(0);
    Ok(format!(
        "reconnected through {} ({n} engine{}): rc, dview and lview use the new connection; views made before (v = rc[0]) must be made again",
        path.display(),
        if n == 1 { "" } else { "s" }
    ))
}

/// Before a cell: when the connection file was rewritten by another controller (the
/// cluster was restarted), reconnects and returns what to tell the user. `None` when
/// nothing changed, or the new cluster cannot be reached (the cell then fails as it would).
pub fn if_restarted(lua: &mlua::Lua) -> Option<Result<String, ClusterError>> {
    let ctx = context::of(lua).ok()?;
    let path = file_of(&ctx).ok()?;
    let now = stamp(&path)?;
    if ctx.file_stamp() == Some(now) {
        return None;
    }
    ctx.set_file_stamp(Some(now));
    let info = profiles::read_connection_file(&path, FileKind::Client).ok()?;
    let ours = ctx.client();
    let ours = ours.connection_info();
    if info.controller_pid == ours.controller_pid && info.key == ours.key {
        return None;
    }
    Some(reconnect(lua))
}

/// The connection file the session was made from.
fn file_of(ctx: &Context) -> Result<PathBuf, ClusterError> {
    ctx.client()
        .connection_file()
        .map(|p| p.to_path_buf())
        .ok_or_else(|| {
            ClusterError::Usage(
                "this session was not made from a connection file, so there is nothing to reconnect through".into(),
            )
        })
}

/// When the file was last written, to notice a restart without reading it every cell.
pub fn stamp(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
