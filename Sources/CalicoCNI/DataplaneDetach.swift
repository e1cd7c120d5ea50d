import NetNS
import Netlink

extension WorkloadDataplane {
    /// Removes a workload's veth. Idempotent: whatever is already gone counts as done.
    ///
    /// Deletes the host veth (`ip link del caliX`), which removes its container end and
    /// every route through either. Returns once the kernel has unregistered both ends (see
    /// `NetlinkSocket.deleteLinkDetached`): the kernel's teardown after that, most of the
    /// deletion's time, finishes in a helper process. Only when the host end is missing and
    /// the container namespace is known (and still exists) is `interfaceName` deleted
    /// inside the container (`ip -n CTR link del eth0`), for an ADD that failed half-way.
    /// A missing namespace (Mesos leaves out `CNI_NETNS` after a reboot; the bind mount may
    /// be gone or left as a plain file) is not an error.
    public func detach(hostVethName: String, containerNamespacePath: String?, interfaceName: String)
        throws(DataplaneError)
    {
        let hostLink: Link?
        do {
            hostLink = try hostSocket.link(named: hostVethName)
        } catch let error where error.isNotFound {
            hostLink = nil  // Not there: maybe the container still has its end.
        } catch {
            throw .netlink(error)
        }
        if let hostLink {
            do throws(DataplaneError) {
                try deleteVeth(hostLink)
                return
            } catch .netlink(let error) where error.isNotFound {
                // Gone meanwhile (a concurrent DEL): as if it had not been there.
            }
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

    /// Deletes the host end of a veth and waits until both ends are unregistered: one
    /// listener in the host namespace hears both, the peer's through its namespace id.
    private func deleteVeth(_ hostLink: Link) throws(DataplaneError) {
        var watches = [LinkRemovalWatch(index: hostLink.index)]
        if let peer = hostLink.linkIndex, peer > 0 {
            watches.append(LinkRemovalWatch(namespaceID: hostLink.linkNamespaceID, index: peer))
        }
        try inHostNamespace {
            try NetlinkSocket.deleteLinkDetached(
                index: hostLink.index, awaiting: watches, on: try LinkEventListener(), helperName: "calico-veth-del")
        }
    }
}
