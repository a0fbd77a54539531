//! A native extension: an engine that offers one more Rust function than the built-ins.
//!
//! Any crate can do this: build a [`Registry`] (start from `engine::builtins::registry()`,
//! register your own [`Function`]s with a signature and one line of help), then connect and
//! run an [`Engine`]. The new function is called by name like any built-in (`cluster apply
//! collatz_steps 27`, `lview.apply_sync("collatz_steps", ...)`) and from Lua on the engine
//! (`dview:execute("n = collatz_steps(27)")`); arguments are checked against the signature
//! before it runs.
//!
//! ```sh
//! cargo run -p custom_engine -- --file ~/.cluster/profile_default/security/controller-engine.json
//! ```

use engine::{Engine, EngineOptions, FnError, Function, Param, ParamType, Registry};
use protocol::{FileKind, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Steps of the Collatz sequence from `n` down to 1.
fn collatz_steps() -> Function {
    Function::new(
        "collatz_steps",
        vec![Param::new("n", ParamType::Int)],
        "int",
        "steps of the Collatz sequence from n (>= 1) down to 1",
        |ctx, args| {
            let mut n = args[0].as_i64().unwrap_or(0);
            if n < 1 {
                return Err(FnError::Value(format!(
                    "collatz_steps: n must be at least 1, got {n}"
                )));
            }
            let mut steps = 0i64;
            while n != 1 {
                n = if n % 2 == 0 {
                    n / 2
                } else {
                    n.checked_mul(3)
                        .and_then(|m| m.checked_add(1))
                        .ok_or_else(|| {
                            FnError::Overflow("collatz_steps: the sequence left 64 bits".into())
                        })?
                };
                steps += 1;
                // Long loops check the cancellation flag, so `abort` stops them.
                if steps % 4096 == 0 {
                    ctx.cancel.check()?;
                }
            }
            Ok(Value::Int(steps))
        },
    )
}

/// The built-ins plus this crate's own functions.
fn registry() -> Registry {
    let mut r = engine::builtins::registry();
    r.register(collatz_steps());
    r
}

fn usage() -> ExitCode {
    eprintln!("usage: custom_engine --file PATH/TO/controller-engine.json");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut file: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--file" => file = args.next().map(PathBuf::from),
            _ => return usage(),
        }
    }
    let Some(file) = file else {
        return usage();
    };
    let info = match profiles::read_connection_file(&file, FileKind::Engine) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("error: cannot handle signals: {e}");
            return ExitCode::from(1);
        }
    }
    let opts = EngineOptions {
        registry: registry(),
        ..EngineOptions::default()
    };
    let e = match Engine::connect(&info, opts) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(3);
        }
    };
    println!("registered as engine {}", e.id());
    match e.run(&stop) {
        Ok(exit) => {
            eprintln!("custom engine stopping: {exit}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{CallCtx, CancelToken};

    #[test]
    fn collatz_steps_counts_and_checks_its_argument() {
        let r = registry();
        let tok = CancelToken::new();
        let ctx = CallCtx::new(&tok);
        assert_eq!(
            r.call("collatz_steps", &[Value::Int(27)], &ctx),
            Ok(Value::Int(111))
        );
        assert_eq!(
            r.call("collatz_steps", &[Value::Int(1)], &ctx),
            Ok(Value::Int(0))
        );
        let err = r.call("collatz_steps", &[Value::Int(0)], &ctx).unwrap_err();
        assert_eq!(err.ename(), "ValueError");
        assert!(
            r.get("calculate_pi").is_some(),
            "the built-ins are still there"
        );
    }
}
