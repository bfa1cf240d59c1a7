//! Free TCP ports on the loopback interface.

use std::net::{Ipv4Addr, TcpListener, TcpStream};

use crate::error::{HarnessError, Result};

/// A TCP port on 127.0.0.1 that was free a moment ago: the kernel picks it when we bind port 0,
/// and we release it for the service to bind.
///
/// Another process can take the port in between; the services here retry with fresh ports when
/// their bind fails.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(HarnessError::io("127.0.0.1:0"))?;
    let port = listener
        .local_addr()
        .map_err(HarnessError::io("127.0.0.1:0"))?
        .port();
    Ok(port)
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub(crate) fn accepts_connections(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}
