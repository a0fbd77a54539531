//! `cluster start`, `cluster stop`, `cluster list`: what the user reads about a whole local
//! cluster. The processes themselves are supervised by `launcher::cluster`.

use crate::util::print_json_pretty;
use client::ExitStatus;
use launcher::cluster::{Ended, Stopped};
use launcher::settings::StartSettings;
use std::process::ExitCode;

pub fn start(profile: &str, s: &StartSettings) -> anyhow::Result<ExitCode> {
    let mut running = launcher::cluster::start(profile, s)?;
    if let Some(note) = &running.note {
        launcher::say!("{note}");
    }
    let n = running.engines;
    let took = running.took.as_secs_f64();
    let engines_word = if n == 1 { "engine" } else { "engines" };
    launcher::say!(
        "cluster '{profile}' started: controller pid {}, {n} {engines_word} registered in {took:.2} s",
        running.controller_pid
    );
    launcher::say!(
        "connection files: {}",
        running.profile().security_dir().display()
    );
    launcher::say!("logs: {}", running.profile().log_dir().display());
    if s.daemon {
        launcher::say!(
            "running in the background; stop it with `cluster stop --profile {profile}`"
        );
        running.detach();
        return Ok(ExitCode::SUCCESS);
    }
    launcher::say!("press Ctrl-C to stop");

    // Foreground: wait for Ctrl-C / SIGTERM, or for the controller to die on its own.
    let stop = launcher::process::stop_flag()?;
    match running.wait(&stop)? {
        Ended::ControllerExited { status, .. } if status.success() => {
            // Stopped from elsewhere (`cluster stop`, or a client's shutdown).
            launcher::say!("cluster '{profile}' stopped");
            Ok(ExitCode::SUCCESS)
        }
        Ended::ControllerExited { status, log } => {
            launcher::tell!(
                "error: the controller exited ({status}); see {}",
                log.display()
            );
            Ok(ExitStatus::Failed.into())
        }
        Ended::Signalled => {
            launcher::tell!("stopping the cluster...");
            running.shutdown();
            launcher::say!("cluster '{profile}' stopped");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn stop(profile: &str) -> anyhow::Result<ExitCode> {
    match launcher::cluster::stop(profile)? {
        Stopped::NotRunning => {
            launcher::tell!("error: no cluster is running for profile '{profile}'");
            Ok(ExitStatus::NoCluster.into())
        }
        Stopped::Stopped { pid } => {
            launcher::say!("stopped cluster '{profile}' (controller pid {pid})");
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn list(json: bool) -> anyhow::Result<ExitCode> {
    let rows = launcher::cluster::list()?;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                let engines = r.engines.map(|n| n as i64).unwrap_or(-1);
                serde_json::json!({"profile": r.profile, "controller_pid": r.controller_pid, "engines": engines, "url": r.url})
            })
            .collect();
        print_json_pretty(&serde_json::Value::Array(v));
    } else if rows.is_empty() {
        launcher::say!("no clusters are running");
    } else {
        launcher::say!("{:<16} {:>8} {:>8}  URL", "PROFILE", "PID", "ENGINES");
        for r in rows {
            let engines = r
                .engines
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".to_string());
            launcher::say!(
                "{:<16} {:>8} {engines:>8}  {}",
                r.profile,
                r.controller_pid,
                r.url
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
