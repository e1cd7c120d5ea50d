// Datastores: placeholder until its first file lands.
