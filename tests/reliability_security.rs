//! Security defaults, checked on a real cluster, and the SSH tunnel
//! (`cluster engines --ssh`, `cluster repl --ssh`) through a real sshd on 127.0.0.1.
//!
//! The SSH test starts its own sshd (own host key, own authorized key, a free port) when
//! `sshd` and `ssh` are installed, and skips with a message saying so when they are not
//! (`apt-get install openssh-server openssh-client`).

mod common;
mod reliability_common;

use common::sshd::Sshd;
use common::{mode_of, read_json_file, write_with_mode, TestEnv};
use reliability_common::{client, start};
use serde_json::Value as Json;
use std::path::PathBuf;

/// Local addresses of the listening TCP sockets on `port` (from /proc/net/tcp and tcp6).
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A is LISTEN.
            if f.len() > 3 && f[3] == "0A" {
                if let Some((ip, p)) = f[1].split_once(':') {
                    if u16::from_str_radix(p, 16).ok() == Some(port) {
                        out.push(ip.to_string());
                    }
                }
            }
        }
    }
    out
}

#[test]
fn security_defaults_hold_on_a_real_cluster() {
    let env = TestEnv::new();
    let a = start(&env, "a", 1, &[]);
    start(&env, "b", 1, &[]);
    let security = env.profile_dir("a").join("security");
    for (file, kind) in [
        (env.client_file("a"), "client"),
        (env.engine_file("a"), "engine"),
    ] {
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
        let info = read_json_file(&file);
        assert_eq!(info["kind"], kind);
        assert_eq!(
            info["location"], "127.0.0.1",
            "default bind: this host only"
        );
        assert_eq!(info["signature_scheme"], "hmac-sha256");
        let key = info["key"].as_str().unwrap();
        assert_eq!(key.len(), 64, "256 bits as hex");
        assert!(key.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert!(
        mode_of(&security) & 0o077 == 0,
        "security dir {:o}",
        mode_of(&security)
    );
    // Fresh random keys per cluster.
    let key = |p: &str| {
        read_json_file(&env.client_file(p))["key"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_ne!(key("a"), key("b"));
    // Every port listens on 127.0.0.1 only (7F000001, little-endian in /proc).
    let e = read_json_file(&env.engine_file("a"));
    let c = read_json_file(&env.client_file("a"));
    for port in [&c["port"], &e["port"], &e["hb_ping"], &e["hb_pong"]] {
        let port = port.as_u64().unwrap() as u16;
        assert_eq!(listeners(port), vec!["0100007F".to_string()], "port {port}");
    }
    // A group- or world-writable file is refused (the same contents at 0600 work).
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("controller-client.json");
    let text = std::fs::read_to_string(env.client_file("a")).unwrap();
    write_with_mode(&copy, &text, 0o666);
    let out = env.run(&["ids", "--file", &copy.display().to_string()]);
    assert!(out.fails_one_line(3).contains("group- or world-writable"));
    write_with_mode(&copy, &text, 0o600);
    assert_eq!(
        env.run(&["ids", "--file", &copy.display().to_string()])
            .json(),
        serde_json::json!([0])
    );
    assert!(common::alive(a.controller_pid));

    // Listening on all interfaces warns, in the foreground and through `cluster start`.
    let out = env.run(&[
        "--profile",
        "open",
        "start",
        "-n",
        "0",
        "--daemon",
        "--ip",
        "*",
    ]);
    out.ok();
    assert!(
        out.stderr.contains("warning: listening on all interfaces"),
        "{}",
        out.stderr
    );
    // Listening beyond loopback turns encryption on, and the warning says so.
    assert!(
        out.stderr.contains("every message is encrypted"),
        "{}",
        out.stderr
    );
    assert_eq!(
        read_json_file(&env.client_file("open"))["encryption"],
        "xchacha20poly1305"
    );
    let log = std::fs::read_to_string(env.controller_log("open")).unwrap();
    assert!(log.contains("listening on all interfaces"), "{log}");
    let port = read_json_file(&env.client_file("open"))["port"]
        .as_u64()
        .unwrap() as u16;
    assert_eq!(listeners(port), vec!["00000000".to_string()], "bound to *");
}

// ---------------------------------------------------------------- SSH

/// ssh processes (our children's) whose command line forwards to `port`.
fn ssh_forwarding(env: &TestEnv, port: u16) -> Vec<u32> {
    env.our_processes()
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    let args: Vec<String> = c
                        .split(|&b| b == 0)
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect();
                    args.first().is_some_and(|a| a.ends_with("ssh"))
                        && args.iter().any(|a| a.ends_with(&format!(":{port}")))
                })
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn engines_and_the_repl_connect_through_an_ssh_tunnel() {
    let sshd = match Sshd::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("SKIPPED engines_and_the_repl_connect_through_an_ssh_tunnel: {why}");
            return;
        }
    };
    let env = TestEnv::new();
    start(&env, "default", 0, &[]);
    let engine_file = env.engine_file("default").display().to_string();
    let client_file = env.client_file("default").display().to_string();
    let engine_port = read_json_file(&env.engine_file("default"))["port"]
        .as_u64()
        .unwrap() as u16;
    let dest = sshd.destination();
    let opts = sshd.opts();

    let mut engines = env.spawn(&[
        "engines",
        "-n",
        "2",
        "--file",
        &engine_file,
        "--ssh",
        &dest,
        "--ssh-opts",
        &opts,
    ]);
    common::poll(
        "two engines through the tunnel",
        common::DEADLINE,
        || (engines.stdout().matches("registered as engine").count() == 2).then_some(()),
        || {
            format!(
                "{}\n{}\nsshd: {}",
                engines.stdout(),
                engines.stderr(),
                sshd.log()
            )
        },
    );
    assert_eq!(env.ids("default"), vec![0, 1]);
    // The engines were given a rewritten file: 127.0.0.1 and ssh's local ports.
    let security = env.profile_dir("default").join("security");
    let rewritten: Vec<PathBuf> = std::fs::read_dir(&security)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ssh-"))
        .collect();
    assert_eq!(rewritten.len(), 1, "{rewritten:?}");
    let info = read_json_file(&rewritten[0]);
    assert_eq!(mode_of(&rewritten[0]), 0o600);
    assert_eq!(info["ssh"], Json::String(dest.clone()));
    let local = info["port"].as_u64().unwrap() as u16;
    assert_ne!(
        local, engine_port,
        "engines connect to the tunnel, not the controller"
    );
    assert_eq!(ssh_forwarding(&env, engine_port).len(), 1, "one ssh -L");
    assert!(sshd.log().contains("Accepted publickey"), "{}", sshd.log());
    let rc = client(&env, "default");
    assert_eq!(
        rc.load_balanced_view()
            .apply_sync(
                "multiply",
                vec![client::Value::Int(6), client::Value::Int(7)]
            )
            .unwrap(),
        client::Value::Int(42)
    );

    // The REPL through its own tunnel, running a script from stdin.
    let script = env.root().join("cells.lua");
    std::fs::write(&script, "#rc.ids\ndview:apply_sync(\"echo\", 5)\n").unwrap();
    let out = env
        .command(&[
            "repl",
            "--file",
            &client_file,
            "--ssh",
            &dest,
            "--ssh-opts",
            &opts,
        ])
        .stdin(std::fs::File::open(&script).unwrap())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains('2'), "{stdout}");
    assert!(stdout.contains("{5, 5}"), "{stdout}");
    let client_port = read_json_file(&env.client_file("default"))["port"]
        .as_u64()
        .unwrap() as u16;
    assert!(
        ssh_forwarding(&env, client_port).is_empty(),
        "the REPL's tunnel ends with it"
    );

    // A bad destination is one clear error.
    let out = env.run(&[
        "engines",
        "-n",
        "1",
        "--file",
        &engine_file,
        "--ssh",
        "nobody@127.0.0.1:1",
    ]);
    let msg = out.fails_one_line(1);
    assert!(msg.contains("ssh to nobody@127.0.0.1:1 failed"), "{msg}");

    env.run(&["stop"]).ok();
    engines.wait_exit();
    assert!(
        ssh_forwarding(&env, engine_port).is_empty(),
        "the engines' tunnel ends with them"
    );
    eprintln!(
        "engines and the REPL reached the controller through ssh -L on 127.0.0.1:{}",
        sshd.port()
    );
}
