// CalicoCtl: placeholder until its first file lands.
