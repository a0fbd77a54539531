//! A private sshd on 127.0.0.1 for the tests that use ssh for real (the ssh launcher, the
//! `--ssh` tunnels): its own host key, one authorized key for the current user, a free port,
//! killed on drop.

use super::find_program;
use std::process::{Child, Command, Stdio};

fn run_ok(cmd: &mut Command) {
    let out = cmd.output().expect("run");
    assert!(out.status.success(), "{cmd:?}: {out:?}");
}

pub struct Sshd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    user: String,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sshd {
    /// Starts one, or says why it cannot here (a program missing: the caller skips). An
    /// sshd that is here but does not come up fails the test.
    pub fn start() -> Result<Sshd, String> {
        let sshd = find_program("sshd").ok_or("no sshd (apt-get install openssh-server)")?;
        for client in ["ssh", "scp"] {
            find_program(client)
                .ok_or_else(|| format!("no {client} (apt-get install openssh-client)"))?;
        }
        let keygen = find_program("ssh-keygen").ok_or("no ssh-keygen")?;
        let dir = tempfile::Builder::new()
            .prefix("cluster-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for key in ["host_key", "user_key"] {
            run_ok(
                Command::new(&keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                    .arg(d.join(key)),
            );
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // Forwarding for the tunnels, sftp for scp (which speaks it by default now).
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {hk}\nAuthorizedKeysFile {ak}\n\
             PidFile {pid}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nPubkeyAuthentication yes\nAllowTcpForwarding yes\n\
             PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nLogLevel VERBOSE\n",
            hk = d.join("host_key").display(),
            ak = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        // sshd wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", sshd.display()));
        let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string();
        let mut s = Sshd {
            child,
            port,
            dir,
            user,
        };
        let log_path = s.dir.path().join("sshd.log");
        let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
        super::poll(
            "sshd to listen",
            super::DEADLINE,
            || {
                let exited = s.child.try_wait().ok().flatten();
                assert!(exited.is_none(), "sshd exited: {}", log());
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .is_ok()
                    .then_some(())
            },
            log,
        );
        Ok(s)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `user@127.0.0.1:port`, as `--ssh` takes it.
    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// ssh options that log in with the authorized key and trust the host key unseen.
    pub fn opts(&self) -> String {
        format!(
            "-i {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.dir.path().join("user_key").display()
        )
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}
