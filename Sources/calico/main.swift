import CNI
import CalicoCNI

cniMain(CalicoPlugin())
