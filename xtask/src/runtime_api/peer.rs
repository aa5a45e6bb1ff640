//! Who is on the other end of a Runtime API connection. The runtime
//! interface client knows only `host:port`, so no secret can ride in the
//! URL; instead each connection is attributed to a process through Linux's
//! /proc: the client's socket is the line of /proc/net/tcp (or tcp6) whose
//! local address is the peer's and whose remote address is ours, which
//! gives its inode and owner uid; the connection is admitted only when a
//! process of the runtime's tree holds that inode among its descriptors
//! (/proc/<pid>/fd links to `socket:[inode]`). Reading another user's
//! descriptors takes CAP_SYS_PTRACE (root in a container usually lacks it)
//! or, rootless, is not possible for a container's processes: where a
//! process of the tree cannot be read, a socket owned by the uid of the
//! tree's first process (the sandbox user) is admitted instead.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

use crate::container::Engine;
use crate::reaper;

/// Which processes may take and answer invocations.
pub enum Peers {
    /// The runtime started on the host, in its own process group led by
    /// this pid: a socket held by a process of that group or a descendant.
    Tree(u32),
    /// The runtime in a container (host network): a socket held by the
    /// container's first process (as the engine reports its host pid) or a
    /// descendant.
    Container {
        engine: Engine,
        name: String,
        /// The container's first process, once the engine has named it.
        pid: Mutex<Option<u32>>,
    },
}

impl Peers {
    pub fn container(engine: Engine, name: String) -> Peers {
        Peers::Container {
            engine,
            name,
            pid: Mutex::new(None),
        }
    }

    /// Whether the connection from `peer` to our `ours` belongs to the
    /// runtime; `Err` says why not.
    pub fn admit(&self, peer: SocketAddr, ours: SocketAddr) -> Result<(), String> {
        let (uid, inode) =
            socket_of(peer, ours).ok_or_else(|| format!("no socket from {peer} in /proc/net"))?;
        let root = match self {
            Peers::Tree(root) => *root,
            Peers::Container { engine, name, pid } => {
                let mut known = pid.lock().map_err(|_| "poisoned".to_string())?;
                if known.is_none() {
                    *known = engine.host_pid(name);
                }
                known.ok_or_else(|| format!("container {name} has no process"))?
            }
        };
        let wanted = format!("socket:[{inode}]");
        let mut unreadable = false;
        // The runtime itself holds its connection, as a rule: the tree is
        // listed (all of /proc) only when it does not.
        let tree = || reaper::tree(root).into_iter().filter(move |&pid| pid != root);
        for pid in std::iter::once(root).chain(std::iter::once(()).flat_map(|()| tree())) {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                unreadable = true;
                continue;
            };
            // Without the right to read them, the links are listed but
            // cannot be read.
            for fd in fds.flatten() {
                match fs::read_link(fd.path()) {
                    Ok(link) if link.as_os_str() == wanted.as_str() => return Ok(()),
                    Ok(_) => {}
                    // Closed since it was listed.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => unreadable = true,
                }
            }
        }
        if unreadable && process_uid(root) == Some(uid) {
            return Ok(());
        }
        Err(format!(
            "the socket from {peer} (uid {uid}) is held by no process of the runtime's tree"
        ))
    }
}

/// (owner uid, inode) of the TCP socket whose local address is `local` and
/// remote address `remote`, from /proc/net/tcp and /proc/net/tcp6.
fn socket_of(local: SocketAddr, remote: SocketAddr) -> Option<(u32, u64)> {
    ["/proc/net/tcp", "/proc/net/tcp6"].iter().find_map(|table| {
        let text = fs::read_to_string(table).ok()?;
        text.lines().skip(1).find_map(|line| {
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (here, there) = (address(fields.get(1)?)?, address(fields.get(2)?)?);
            if same(here, local) && same(there, remote) {
                Some((fields.get(7)?.parse().ok()?, fields.get(9)?.parse().ok()?))
            } else {
                None
            }
        })
    })
}

/// Equal, counting an IPv4-mapped IPv6 address as its IPv4 address.
fn same(a: SocketAddr, b: SocketAddr) -> bool {
    let plain = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    a.port() == b.port() && plain(a.ip()) == plain(b.ip())
}

/// `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of
/// the address as a number in the host's byte order, the port in hex.
fn address(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(ip)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for (index, chunk) in bytes.chunks_mut(4).enumerate() {
                chunk.copy_from_slice(&word(ip.get(index * 8..index * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// The real uid of a process.
fn process_uid(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_the_kernel_prints_them() {
        let v4 = address("0100007F:1F90").unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(v4, "127.0.0.1:8080".parse().unwrap());
            let mapped = address("0000000000000000FFFF00000100007F:0050").unwrap();
            assert!(same(mapped, "127.0.0.1:80".parse().unwrap()), "{mapped}");
        }
        assert_eq!(address("zz:1"), None);
        assert_eq!(address("0100007F"), None);
    }
}
