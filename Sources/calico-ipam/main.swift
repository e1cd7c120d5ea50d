import CNI
import CalicoCNI

// calico-ipam: Calico IPAM as a CNI IPAM plugin. All logic lives in CalicoCNI.IPAMPlugin.
cniMain(IPAMPlugin())
