// DatastoreConformance: placeholder until its first file lands.
