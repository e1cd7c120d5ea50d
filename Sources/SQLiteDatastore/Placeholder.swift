// SQLiteDatastore: placeholder until its first file lands.
