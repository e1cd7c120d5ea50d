// Policy: placeholder until its first file lands.
