//! NG transports (plain threads, std sockets).
