import NetNS
import Netlink

extension WorkloadDataplane {
    /// Removes a workload's veth. Idempotent: whatever is already gone counts as done.
    ///
    /// Deletes the host veth by name (`ip link del caliX`), which removes its container end
    /// and every route through it. Only when the host end is missing and the container
    /// namespace is known (and still exists) is `interfaceName` deleted inside the container
    /// (`ip -n CTR link del eth0`), for an ADD that failed half-way. A missing namespace
    /// (Mesos leaves out `CNI_NETNS` after a reboot; the bind mount may be gone or left
    /// as a plain file) is not an error.
    public func detach(hostVethName: String, containerNamespacePath: String?, interfaceName: String)
        throws(DataplaneError)
    {
        do {
            try hostSocket.perform(.deleteLink(named: hostVethName))
            return
        } catch let error where error.isNotFound {
            // Not there: maybe the container still has its end.
        } catch {
            throw .netlink(error)
        }
        guard let containerNamespacePath else { return }
        let container: NetworkNamespace
        do {
            container = try NetworkNamespace(path: containerNamespacePath)
        } catch .notFound, .notANamespace {
            return
        } catch {
            throw .namespace(error)
        }
        let socket = try Self.containerSocket(container)
        do {
            try socket.perform(.deleteLink(named: interfaceName))
        } catch let error where error.isNotFound {
            return
        } catch {
            throw .netlink(error)
        }
    }
}
