// IPAM: placeholder until its first file lands.
