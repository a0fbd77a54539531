//! `cluster start --engines ssh|mpi|slurm`, each for real where its tool runs here: ssh
//! against a private sshd on loopback (Debian's openssh-server), mpi with the local
//! mpiexec (Debian's OpenMPI), slurm by the batch script it writes (and for real if
//! `sbatch` exists). A test whose tool is missing says so and passes.

mod common;

use common::sshd::Sshd;
use common::{find_program, wait_gone, TestEnv, BIN, FAST_HB};

fn have(program: &str) -> bool {
    find_program(program).is_some()
}

#[test]
fn ssh_copies_the_engine_file_and_starts_engines_on_the_host() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the ssh launcher test logs in as root, so it needs root");
        return;
    }
    let sshd = match Sshd::start() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let env = TestEnv::new();
    let opts = format!("{} -o Port={}", sshd.opts(), sshd.port());
    let mut args = vec![
        "start",
        "-n",
        "1",
        "--daemon",
        "--engines",
        "ssh",
        "--hosts",
        "root@127.0.0.1:3",
        "--ssh-opts",
        &opts,
        "--remote-cluster",
        BIN,
    ];
    args.extend_from_slice(&FAST_HB);
    let out = env.run(&args);
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    out.ok();
    assert_eq!(
        env.ids("default"),
        vec![0, 1, 2],
        "the host's count (3) wins over -n"
    );
    let pids: Vec<u32> =
        serde_json::from_value(env.run(&["apply", "getpid"]).json()).expect("pids");
    env.track(&pids);
    let answer = env.run(&["map", "--lb", "is_odd", "[1, 2, 3]"]);
    assert_eq!(answer.ok().trim(), "[true,false,true]");
    // Stopping the cluster stops the engines the ssh session started.
    env.run(&["stop"]).ok();
    for pid in pids {
        wait_gone("an engine started over ssh", pid);
    }
}

#[test]
fn ssh_to_a_host_that_refuses_fails_clearly_and_stops_the_controller() {
    let env = TestEnv::new();
    if !have("ssh") || !have("scp") {
        eprintln!("skipped: no ssh client");
        return;
    }
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = format!("-o Port={port} -o ConnectTimeout=5");
    let out = env.run(&[
        "start",
        "--daemon",
        "--engines",
        "ssh",
        "--hosts",
        "127.0.0.1:2",
        "--ssh-opts",
        &opts,
    ]);
    let err = out.fails(1);
    assert!(
        err.contains("cannot copy the engine connection file to 127.0.0.1"),
        "{err}"
    );
    // Nothing is left running for the profile.
    let pid = env.controller_pid("default");
    if let Some(pid) = pid {
        wait_gone("the controller of a failed start", pid);
    }
    env.run(&["ids"]).fails(3);
}

#[test]
fn mpi_starts_engines_with_mpiexec() {
    if !have("mpiexec") {
        eprintln!("skipped: no mpiexec here (apt-get install openmpi-bin)");
        return;
    }
    let env = TestEnv::new();
    let started = env.start("default", 3, &["--engines", "mpi"]);
    assert_eq!(started.ids, vec![0, 1, 2]);
    let out = env.run(&["map", "--lb", "multiply", "[1]"]);
    // multiply takes two arguments: a clear error from an engine started by mpiexec.
    assert!(out
        .fails(1)
        .contains("TypeError: multiply takes 2 arguments"));
    assert_eq!(
        env.run(&["apply", "--lb", "sum_range", "10"]).ok().trim(),
        "45"
    );
}

#[test]
fn slurm_writes_a_batch_script_and_submits_it_when_slurm_is_here() {
    let env = TestEnv::new();
    let mut args = vec![
        "start",
        "-n",
        "6",
        "--daemon",
        "--engines",
        "slurm",
        "--dry-run",
        "--sbatch-args",
        "--partition=short --time=00:10:00",
    ];
    args.extend_from_slice(&FAST_HB);
    let out = env.run(&args);
    if let Some(pid) = env.controller_pid("default") {
        env.track(&[pid]);
    }
    let text = out.ok().to_string();
    let script_path = env.profile_dir("default").join("log/engines.sbatch");
    let script = std::fs::read_to_string(&script_path).expect("the batch script");
    assert!(text.contains(&script), "the dry run prints the script");
    assert!(script.starts_with("#!/bin/sh\n"));
    assert!(script.contains("#SBATCH --ntasks=6\n"), "{script}");
    assert!(
        script.contains("#SBATCH --job-name=cluster-default\n"),
        "{script}"
    );
    assert!(
        script.contains("#SBATCH --partition=short\n#SBATCH --time=00:10:00\n"),
        "{script}"
    );
    let engine_file = env.engine_file("default");
    let srun = script
        .lines()
        .find(|l| l.starts_with("srun "))
        .expect("an srun line");
    assert!(
        srun.contains(&format!("engine --file {}", engine_file.display())),
        "{srun}"
    );
    assert!(srun.contains(BIN), "{srun}");
    assert!(text.contains("not submitted: --dry-run"), "{text}");
    // The controller runs, waiting for the job's engines.
    assert_eq!(env.ids("default"), Vec::<u32>::new());
    env.run(&["stop"]).ok();
    if have("sbatch") && have("srun") {
        let started = env.start("slurm", 2, &["--engines", "slurm"]);
        assert_eq!(started.ids, vec![0, 1]);
    } else {
        eprintln!("note: no sbatch/srun here; the Slurm job itself was not run");
    }
}
