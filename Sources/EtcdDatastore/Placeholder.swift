// EtcdDatastore: placeholder until its first file lands.
