//! `cluster repl` and `cluster run`: the REPL crate's session, through an SSH tunnel when
//! `--ssh` is given.

use crate::cli::ConnArgs;
use launcher::settings::SshSettings;
use profiles::Profile;
use protocol::connection::FileKind;
use std::path::PathBuf;
use std::process::ExitCode;

/// Runs a REPL session (or a script, without prompts) and returns its exit code.
pub fn run(
    profile: &str,
    conn: &ConnArgs,
    ssh: &SshSettings,
    script: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let mut file = conn.file.clone();
    let _tunnel = match ssh.ssh {
        Some(_) => {
            let path = match &file {
                Some(f) => f.clone(),
                None => Profile::at(profile)?.client_file(),
            };
            let t = launcher::tunnel::open(profile, &path, FileKind::Client, ssh)?;
            file = Some(t.file.clone());
            Some(t)
        }
        None => None,
    };
    let code = repl::run(repl::Options {
        profile: profile.to_string(),
        file,
        script,
    });
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
