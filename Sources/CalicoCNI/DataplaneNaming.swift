/// Names and fixed addresses of Calico's workload dataplane.
extension WorkloadDataplane {
    /// The host-side veth name for a workload interface: `cali` + 11 lowercase hex digits
    /// (15 bytes, the kernel's limit).
    ///
    /// Upstream Calico uses the first 11 characters of the container id, which collides for
    /// Mesos nested containers (`<parent>.<child>` share the parent's prefix) and for a
    /// container's second interface. Here the digits are a hash of the container id *and*
    /// the interface name: 64-bit FNV-1a over `containerID`, a NUL byte, `interfaceName`
    /// (the NUL keeps `("ab", "c")` and `("a", "bc")` apart; neither can contain one), then
    /// the MurmurHash3 finaliser so that every input bit moves the leading digits, of which
    /// we keep 44 bits. The result must never change: DEL and felix recompute it.
    public static func hostVethName(containerID: String, interfaceName: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a offset basis
        func mix(_ byte: UInt8) {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3  // FNV-1a 64-bit prime
        }
        for byte in containerID.utf8 { mix(byte) }
        mix(0)
        for byte in interfaceName.utf8 { mix(byte) }
        // fmix64
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash = hash &* 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        let hex = String(hash, radix: 16)
        let padded = String(repeating: "0", count: 16 - hex.count) + hex
        return "cali" + padded.prefix(11)
    }
}
