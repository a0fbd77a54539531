//! A real second host: two network namespaces joined by a veth pair. The controller runs
//! in one, listening on its veth address; the engine connection file is copied to another
//! directory and `cluster engines --file` runs in the other namespace. The client sees
//! engines at both addresses, a load-balanced map uses both, and killing the remote
//! engines is noticed by heartbeat.
//!
//! Needs root and `ip netns` (iproute2); skipped with a message otherwise.

mod common;
mod netns;

use common::{poll, signal, TestEnv, DEADLINE};
use netns::Net;
use std::process::Stdio;

#[test]
fn engines_on_a_second_host_join_share_work_and_are_noticed_when_killed() {
    let Some(mut net) = Net::create() else {
        return;
    };
    let env = TestEnv::new();
    // The controller, on host A's veth address.
    net.start_controller(&env, &["--hb-period", "100", "--hb-misses", "10"]);
    let engine_file = env.engine_file("default");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&engine_file).unwrap()).unwrap();
    assert_eq!(
        info["location"],
        net.addr_a.as_str(),
        "the file advertises the veth address"
    );

    // Two engines on host A, two on host B from a copy of the engine file.
    let local = net
        .cluster(&net.a, &env, &["engines", "-n", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    net.children.push(local);
    let other_host = env.root().join("host-b");
    std::fs::create_dir_all(&other_host).unwrap();
    let copy = other_host.join("controller-engine.json");
    std::fs::copy(&engine_file, &copy).unwrap();
    let remote = net
        .cluster(
            &net.b,
            &env,
            &["engines", "-n", "2", "--file", copy.to_str().unwrap()],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let remote_launcher = remote.id();
    net.children.push(remote);

    let engines = poll(
        "4 engines from 2 hosts",
        DEADLINE,
        || {
            let e = net.status(&env);
            (e.len() == 4).then_some(e)
        },
        || format!("{:?}", net.status(&env)),
    );
    let at = |addr: &str| -> Vec<u64> {
        engines
            .iter()
            .filter(|e| e["address"] == addr)
            .map(|e| e["pid"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(at(&net.addr_a).len(), 2, "{engines:?}");
    let remote_pids = at(&net.addr_b);
    assert_eq!(remote_pids.len(), 2, "{engines:?}");

    // A load-balanced map runs across both hosts.
    let (ok, out, err) = net.run(
        &net.a,
        &env,
        &[
            "map",
            "--lb",
            "sleep",
            "[0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "[null,null,null,null,null,null,null,null]");
    let after = net.status(&env);
    let done_on = |addr: &str| -> u64 {
        after
            .iter()
            .filter(|e| e["address"] == addr)
            .map(|e| e["completed"].as_u64().unwrap())
            .sum()
    };
    assert!(
        done_on(&net.addr_a) > 0 && done_on(&net.addr_b) > 0,
        "{after:?}"
    );

    // Host B's engines die (kill -9): the heartbeat notices, they leave the cluster.
    signal(remote_launcher, libc::SIGKILL);
    for pid in remote_pids {
        signal(pid as u32, libc::SIGKILL);
    }
    let left = poll(
        "the remote engines to be declared dead",
        DEADLINE,
        || {
            let e = net.status(&env);
            (e.len() == 2).then_some(e)
        },
        || format!("{:?}", net.status(&env)),
    );
    assert!(
        left.iter().all(|e| e["address"] == net.addr_a.as_str()),
        "{left:?}"
    );
}
