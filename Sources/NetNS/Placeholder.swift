// NetNS: placeholder until its first file lands.
