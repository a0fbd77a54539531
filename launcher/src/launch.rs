//! How `cluster start` starts its engines: local processes, `cluster engines` over ssh on
//! other hosts, `mpiexec`, or a Slurm batch job. Every launcher ends in the same place:
//! engines that read the profile's engine connection file and register with the controller.

use crate::error::{LaunchError, Result};
use crate::process::{detach, log_file, spawn_logged, Children};
use crate::settings::{EngineSettings, LaunchSettings, Launcher, ScriptSettings};
use profiles::Profile;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a launcher started.
pub struct Launched {
    /// Processes that run while the engines run (engines, ssh sessions, mpiexec), stopped
    /// if the start fails.
    pub children: Children,
    /// The log each child's output goes to, in the order of `children`.
    pub logs: Vec<PathBuf>,
    /// How many engines to wait for.
    pub expected: usize,
    /// A line for the user (where a batch script went, a job id).
    pub note: Option<String>,
}

/// Everything a launcher needs to know.
pub struct Plan<'a> {
    /// The `cluster` executable the engines run.
    pub exe: &'a Path,
    /// The profile whose engine connection file the engines read.
    pub profile: &'a Profile,
    /// Engines asked for with -n.
    pub n: usize,
    /// Whether the engines must outlive `cluster start`.
    pub daemon: bool,
    /// What user code on the engines may do.
    pub script: &'a ScriptSettings,
    /// The launchers' own options.
    pub launch: &'a LaunchSettings,
    /// The controller's advertised address (for a warning when remote hosts cannot reach it).
    pub location: &'a str,
}

/// Single-quotes a word for a POSIX shell (the remote side of ssh).
pub fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c))
    {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// Splits an option string on whitespace (options like `-i key -o Port=22`; no quoting).
fn words(s: &Option<String>) -> Vec<String> {
    s.as_deref()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `[user@]host[:count]` → (destination, count); a host without a count gets `default`.
pub fn parse_host(spec: &str, default: usize) -> Result<(String, usize)> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Err(LaunchError::EmptyHost);
    }
    if let Some((host, count)) = spec.rsplit_once(':') {
        if let Ok(n) = count.parse::<usize>() {
            if host.is_empty() || n == 0 {
                return Err(LaunchError::BadHost(spec.to_string()));
            }
            return Ok((host.to_string(), n));
        }
    }
    Ok((spec.to_string(), default))
}

fn is_local(host: &str) -> bool {
    let h = host.rsplit('@').next().unwrap_or(host);
    matches!(h, "localhost" | "127.0.0.1" | "::1")
}

/// Starts the engines as the plan's launcher says.
pub fn launch(kind: Launcher, plan: &Plan<'_>) -> Result<Launched> {
    match kind {
        Launcher::Local => local(plan),
        Launcher::Ssh => ssh(plan),
        Launcher::Mpi => mpi(plan),
        Launcher::Slurm => slurm(plan),
    }
}

/// The argument list of `cluster engine` reading the profile's engine file.
fn engine_args(plan: &Plan<'_>) -> Vec<String> {
    let mut v = vec![
        "--profile".to_string(),
        plan.profile.name().to_string(),
        "engine".into(),
    ];
    v.extend(EngineSettings::for_file(plan.profile.engine_file(), plan.script).to_args());
    v
}

fn local(plan: &Plan<'_>) -> Result<Launched> {
    let mut children = Children::new();
    let mut logs = Vec::with_capacity(plan.n);
    for i in 0..plan.n {
        let (err, log) = log_file(&plan.profile.log_dir(), &format!("engine-{i}.log"))?;
        let mut cmd = Command::new(plan.exe);
        cmd.args(engine_args(plan))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        detach(&mut cmd, plan.daemon);
        let child = cmd.spawn().map_err(|source| LaunchError::Spawn {
            what: "cannot start an engine process".into(),
            source,
        })?;
        children.push(child);
        logs.push(log);
    }
    Ok(Launched {
        children,
        logs,
        expected: plan.n,
        note: None,
    })
}

fn ssh(plan: &Plan<'_>) -> Result<Launched> {
    if plan.launch.hosts.is_empty() {
        return Err(LaunchError::NoHosts);
    }
    let opts = words(&plan.launch.ssh_opts);
    let remote_cluster = plan.launch.remote_cluster.as_deref().unwrap_or("cluster");
    // Named after the profile and the controller's port, so that clusters sharing a host
    // (and a home directory) never overwrite each other's file.
    let port =
        profiles::read_connection_file(&plan.profile.engine_file(), protocol::FileKind::Engine)
            .map(|i| i.port)
            .unwrap_or(0);
    let remote_file = format!(
        ".cluster-{}-{port}-controller-engine.json",
        plan.profile.name()
    );
    let mut children = Children::new();
    let mut logs = Vec::new();
    let mut expected = 0;
    for spec in &plan.launch.hosts {
        let (host, count) = parse_host(spec, plan.n.max(1))?;
        if !is_local(&host) && matches!(plan.location, "127.0.0.1" | "localhost" | "::1") {
            crate::tell!(
                "warning: the controller listens on {} only; engines on {host} cannot reach it (use --ip '*' or --ip ADDRESS, and --location)",
                plan.location
            );
        }
        // Copy the engine file; its key is what lets those engines in.
        let copy = Command::new("scp")
            .args(&opts)
            .args(["-q", "-o", "BatchMode=yes"])
            .arg(plan.profile.engine_file())
            .arg(format!("{host}:{remote_file}"))
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LaunchError::Spawn {
                what: "cannot run scp (is openssh-client installed?)".into(),
                source,
            })?;
        if !copy.status.success() {
            return Err(LaunchError::Copy {
                host,
                why: String::from_utf8_lossy(&copy.stderr).trim().to_string(),
            });
        }
        let settings = EngineSettings::for_file(PathBuf::from(&remote_file), plan.script);
        let mut remote = vec![
            shell_quote(remote_cluster),
            "engines".into(),
            "-n".into(),
            count.to_string(),
        ];
        remote.extend(settings.to_args().iter().map(|w| shell_quote(w)));
        let mut cmd = Command::new("ssh");
        cmd.args(&opts)
            .args(["-o", "BatchMode=yes", "-T"])
            .arg(&host)
            .arg(remote.join(" "));
        let safe: String = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let log = plan
            .profile
            .log_dir()
            .join(format!("engines-ssh-{safe}.log"));
        children.push(spawn_logged(cmd, &log, plan.daemon)?);
        logs.push(log);
        expected += count;
    }
    Ok(Launched {
        children,
        logs,
        expected,
        note: None,
    })
}

/// Whether `mpiexec` is Open MPI's (which needs flags to run as root and to oversubscribe).
fn is_open_mpi(mpiexec: &str) -> bool {
    Command::new(mpiexec)
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout) + String::from_utf8_lossy(&o.stderr);
            text.contains("Open MPI") || text.contains("OpenRTE")
        })
        .unwrap_or(false)
}

fn mpi(plan: &Plan<'_>) -> Result<Launched> {
    let mpiexec = &plan.launch.mpiexec;
    let mut cmd = Command::new(mpiexec);
    if is_open_mpi(mpiexec) {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-run-as-root");
        }
        // More engines than cores is normal here (engines often wait on I/O).
        cmd.arg("--oversubscribe");
    }
    cmd.args(words(&plan.launch.mpi_args))
        .args(["-n", &plan.n.to_string()]);
    match &plan.launch.remote_cluster {
        Some(c) => cmd.arg(c),
        None => cmd.arg(plan.exe),
    };
    cmd.args(engine_args(plan));
    let (_, log) = log_file(&plan.profile.log_dir(), "engines-mpi.log")?;
    let child = spawn_logged(cmd, &log, plan.daemon).map_err(|e| match e {
        LaunchError::Spawn { source, .. } => LaunchError::Spawn {
            what: format!("cannot run {mpiexec} (is MPI installed?)"),
            source,
        },
        other => other,
    })?;
    let mut children = Children::new();
    children.push(child);
    Ok(Launched {
        children,
        logs: vec![log],
        expected: plan.n,
        note: None,
    })
}

/// The batch script that runs `n` engines as the tasks of one Slurm job.
pub fn slurm_script(plan: &Plan<'_>) -> String {
    let exe = plan
        .launch
        .remote_cluster
        .clone()
        .unwrap_or_else(|| plan.exe.display().to_string());
    let mut s = String::from("#!/bin/sh\n");
    s.push_str(&format!(
        "#SBATCH --job-name=cluster-{}\n",
        plan.profile.name()
    ));
    s.push_str(&format!("#SBATCH --ntasks={}\n", plan.n));
    s.push_str(&format!(
        "#SBATCH --output={}\n",
        plan.profile.log_dir().join("slurm-%j.log").display()
    ));
    for opt in words(&plan.launch.sbatch_args) {
        s.push_str(&format!("#SBATCH {opt}\n"));
    }
    s.push_str("# Each task is one engine; they read the engine connection file, which must be\n");
    s.push_str("# on a file system the compute nodes share.\n");
    let args: Vec<String> = std::iter::once(exe)
        .chain(engine_args(plan))
        .map(|w| shell_quote(&w))
        .collect();
    s.push_str(&format!("srun {}\n", args.join(" ")));
    s
}

fn slurm(plan: &Plan<'_>) -> Result<Launched> {
    let script = slurm_script(plan);
    let dir = plan.profile.log_dir();
    std::fs::create_dir_all(&dir).map_err(|source| LaunchError::LogDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join("engines.sbatch");
    std::fs::write(&path, &script).map_err(|source| LaunchError::Write {
        path: path.clone(),
        source,
    })?;
    if plan.launch.dry_run {
        print!("{script}");
        return Ok(Launched {
            children: Children::new(),
            logs: vec![],
            expected: 0,
            note: Some(format!(
                "batch script written to {} (not submitted: --dry-run); submit it with `sbatch {}`",
                path.display(),
                path.display()
            )),
        });
    }
    let out = Command::new("sbatch")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| LaunchError::Spawn {
            what: "cannot run sbatch (is Slurm installed? --dry-run writes the script only)".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(LaunchError::SbatchRefused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(Launched {
        children: Children::new(),
        logs: vec![],
        expected: plan.n,
        note: Some(String::from_utf8_lossy(&out.stdout).trim().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_specs_parse() {
        assert_eq!(parse_host("node1:4", 2).unwrap(), ("node1".into(), 4));
        assert_eq!(parse_host("me@node2", 3).unwrap(), ("me@node2".into(), 3));
        assert!(parse_host("node:0", 1).is_err());
        assert!(parse_host("", 1).is_err());
    }

    #[test]
    fn words_are_quoted_for_the_remote_shell() {
        assert_eq!(shell_quote("cluster"), "cluster");
        assert_eq!(shell_quote("/opt/my dir/cluster"), "'/opt/my dir/cluster'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }
}
