// CNIHarness: placeholder until its first file lands.
