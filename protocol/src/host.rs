//! What this host looks like from here: its name, and which of its addresses a peer at a
//! given place would see it come from.
//!
//! Both are read from the operating system without sending anything: the name from
//! `gethostname` (or the kernel's file), the address by asking the routing table, which a
//! connected UDP socket does without a packet. IPv4 and IPv6 are handled alike.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};

/// The host name of this machine, trimmed; `None` if it cannot be read.
pub fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes into it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast::<libc::c_char>(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
        if !name.is_empty() {
            return Some(name);
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// The local address this host uses to reach `host`: an IPv4 or IPv6 address (brackets
/// allowed, as in `[::1]`) or a name to resolve. Asking the routing table sends no packet.
/// `None` if `host` cannot be resolved or no route leads there.
pub fn local_address_to(host: &str) -> Option<IpAddr> {
    let bare = host.trim();
    let bare = bare
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(bare);
    // Any port will do: nothing is sent.
    let targets: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, 9)],
        Err(_) => (bare, 9).to_socket_addrs().ok()?.collect(),
    };
    targets.into_iter().find_map(route_from)
}

/// The source address the routing table picks for `target`.
fn route_from(target: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    socket.connect(target).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_has_a_trimmed_name() {
        let name = hostname().expect("a host name");
        assert!(!name.is_empty() && name.trim() == name, "{name:?}");
    }

    #[test]
    fn loopback_is_reached_from_loopback() {
        assert_eq!(
            local_address_to("127.0.0.1"),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            local_address_to(" 127.0.0.1 "),
            Some(IpAddr::from([127, 0, 0, 1]))
        );
        assert!(local_address_to("localhost").is_some_and(|ip| ip.is_loopback()));
    }

    #[test]
    fn ipv6_is_handled_with_and_without_brackets() {
        // Hosts without IPv6 (some containers) cannot bind an IPv6 socket at all.
        if UdpSocket::bind("[::1]:0").is_err() {
            return;
        }
        let want = Some(IpAddr::from(Ipv6Addr::LOCALHOST));
        assert_eq!(local_address_to("::1"), want);
        assert_eq!(local_address_to("[::1]"), want);
    }

    #[test]
    fn unknown_hosts_have_no_address() {
        assert_eq!(local_address_to("no-such-host.invalid"), None);
        assert_eq!(local_address_to(""), None);
    }
}
