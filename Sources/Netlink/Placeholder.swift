// Netlink: placeholder until its first file lands.
