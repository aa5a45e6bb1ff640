//! Who is on the other end of a Runtime API connection. The runtime
//! interface client knows only `host:port`, so no secret can ride in the
//! URL; instead each connection is attributed to a process: the kernel's
//! socket diagnostics (or /proc/net/tcp and tcp6) name the socket whose
//! local address is the peer's and whose remote address is ours, with its
//! inode and owner uid; the connection is admitted only when a
//! process of the runtime's tree holds that inode among its descriptors
//! (/proc/<pid>/fd links to `socket:[inode]`). Reading another user's
//! descriptors takes CAP_SYS_PTRACE (root in a container usually lacks it)
//! or, rootless, is not possible for a container's processes: where a
//! process of the tree cannot be read, a socket owned by the uid of the
//! tree's first process (the sandbox user) is admitted instead.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;

use crate::contain::reaper;
use crate::python::container::Engine;

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
/// remote address `remote`: asked of the kernel by that exact address pair
/// (sock_diag), else looked up in /proc/net/tcp and tcp6, which the kernel
/// makes by walking every socket of the host (milliseconds on each
/// connection, where the exact question takes microseconds).
fn socket_of(local: SocketAddr, remote: SocketAddr) -> Option<(u32, u64)> {
    diag::socket_of(local, remote).or_else(|| in_proc_net(local, remote))
}

fn in_proc_net(local: SocketAddr, remote: SocketAddr) -> Option<(u32, u64)> {
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

/// One question to the kernel's socket diagnostics (NETLINK_SOCK_DIAG, as
/// `ss` asks): the TCP socket with exactly this address pair, its owner and
/// inode. Layouts from linux/inet_diag.h and linux/netlink.h.
mod diag {
    use std::net::{IpAddr, SocketAddr};

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLM_F_REQUEST: u16 = 1;
    const NO_COOKIE: u32 = !0;

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct SockId {
        sport: [u8; 2],
        dport: [u8; 2],
        src: [u8; 16],
        dst: [u8; 16],
        interface: u32,
        cookie: [u32; 2],
    }

    #[repr(C)]
    struct Request {
        length: u32,
        kind: u16,
        flags: u16,
        sequence: u32,
        port_id: u32,
        family: u8,
        protocol: u8,
        extensions: u8,
        pad: u8,
        states: u32,
        id: SockId,
    }

    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Reply {
        length: u32,
        kind: u16,
        flags: u16,
        sequence: u32,
        port_id: u32,
        family: u8,
        state: u8,
        timer: u8,
        retransmits: u8,
        id: SockId,
        expires: u32,
        read_queue: u32,
        write_queue: u32,
        uid: u32,
        inode: u32,
    }

    /// The address in the kernel's layout: IPv4 in the first four bytes.
    fn ip_bytes(ip: IpAddr) -> (u8, [u8; 16]) {
        let mut bytes = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => {
                bytes[..4].copy_from_slice(&v4.octets());
                (libc::AF_INET as u8, bytes)
            }
            IpAddr::V6(v6) => (libc::AF_INET6 as u8, v6.octets()),
        }
    }

    pub fn socket_of(local: SocketAddr, remote: SocketAddr) -> Option<(u32, u64)> {
        let (family, src) = ip_bytes(local.ip());
        let (other, dst) = ip_bytes(remote.ip());
        if family != other {
            return None;
        }
        let request = Request {
            length: std::mem::size_of::<Request>() as u32,
            kind: SOCK_DIAG_BY_FAMILY,
            flags: NLM_F_REQUEST,
            sequence: 1,
            port_id: 0,
            family,
            protocol: libc::IPPROTO_TCP as u8,
            extensions: 0,
            pad: 0,
            states: !0,
            id: SockId {
                sport: local.port().to_be_bytes(),
                dport: remote.port().to_be_bytes(),
                src,
                dst,
                interface: 0,
                cookie: [NO_COOKIE, NO_COOKIE],
            },
        };
        // SAFETY: a netlink socket of our own, closed below; the request and
        // the reply are plain `repr(C)` values of the sizes given, and the
        // reply is read only as far as the kernel wrote it.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            );
            if fd < 0 {
                return None;
            }
            let timeout = libc::timeval {
                tv_sec: 1,
                tv_usec: 0,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
            let sent = libc::send(
                fd,
                (&request as *const Request).cast(),
                std::mem::size_of::<Request>(),
                0,
            );
            let mut reply: Reply = std::mem::zeroed();
            let received = if sent == std::mem::size_of::<Request>() as isize {
                libc::recv(
                    fd,
                    (&mut reply as *mut Reply).cast(),
                    std::mem::size_of::<Reply>(),
                    0,
                )
            } else {
                -1
            };
            libc::close(fd);
            let whole = received >= std::mem::size_of::<Reply>() as isize;
            // An error (no such socket) is a shorter message of another kind.
            (whole && reply.kind == SOCK_DIAG_BY_FAMILY).then(|| (reply.uid, u64::from(reply.inode)))
        }
    }
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

    #[test]
    fn the_kernels_answer_is_the_socket_proc_net_lists() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(ours).unwrap();
        let peer = client.local_addr().unwrap();
        let asked = diag::socket_of(peer, ours).expect("sock_diag answers for a live socket");
        assert_eq!(Some(asked), in_proc_net(peer, ours));
        // A pair that is no connection is nobody's.
        let nobody: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(diag::socket_of(nobody, ours), None);
    }
}
