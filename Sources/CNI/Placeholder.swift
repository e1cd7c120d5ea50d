// CNI: placeholder until its first file lands.
