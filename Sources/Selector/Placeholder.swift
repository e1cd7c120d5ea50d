// Selector: placeholder until its first file lands.
