// CalicoAPI: placeholder until its first file lands.
