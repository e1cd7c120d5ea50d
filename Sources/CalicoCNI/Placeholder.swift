// CalicoCNI: placeholder until its first file lands.
