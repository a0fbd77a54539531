//! `cluster profile create|list|locate`.

use crate::cli::ProfileCommand;
use profiles::Profile;
use std::process::ExitCode;

pub fn run(cmd: &ProfileCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ProfileCommand::Create { name } => {
            let p = Profile::create(name)?;
            println!("{}", p.dir().display());
        }
        ProfileCommand::List(flags) => {
            let all = profiles::list()?;
            if flags.json {
                let v: Vec<serde_json::Value> = all
                    .iter()
                    .map(|p| serde_json::json!({"name": p.name(), "dir": p.dir()}))
                    .collect();
                crate::util::print_json_pretty(&serde_json::Value::Array(v));
            } else {
                for p in all {
                    println!("{}\t{}", p.name(), p.dir().display());
                }
            }
        }
        ProfileCommand::Locate { name } => {
            println!("{}", Profile::locate(name)?.dir().display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
