// Felix: placeholder until its first file lands.
