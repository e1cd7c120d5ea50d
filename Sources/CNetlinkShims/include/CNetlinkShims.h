#ifndef CNETLINK_SHIMS_H
#define CNETLINK_SHIMS_H

// What Glibc's Swift overlay does not give us: the netlink/rtnetlink headers, their
// function-like macros as inline functions, and namespace syscalls.

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_link.h>
#include <linux/if_addr.h>
#include <linux/neighbour.h>
#include <linux/veth.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/sched.h>
#include <linux/magic.h>
#include <sys/vfs.h>

/// setns(2): join the namespace referred to by fd. The corresponding C function is `setns`.
static inline int cnl_setns(int fd, int nstype) { return (int)syscall(SYS_setns, fd, nstype); }

/// unshare(2).
static inline int cnl_unshare(int flags) { return (int)syscall(SYS_unshare, flags); }

/// gettid(2): the calling thread's id (for /proc/self/task/<tid>/ns/net).
static inline pid_t cnl_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static inline int cnl_clone_newnet(void) { return CLONE_NEWNET; }
static inline int cnl_clone_newns(void) { return CLONE_NEWNS; }

// Netlink message alignment (NLMSG_ALIGN / RTA_ALIGN / NLA_ALIGN are macros).
static inline unsigned int cnl_nlmsg_align(unsigned int len) { return NLMSG_ALIGN(len); }
static inline unsigned int cnl_rta_align(unsigned int len) { return RTA_ALIGN(len); }
static inline unsigned int cnl_nlmsg_hdrlen(void) { return NLMSG_HDRLEN; }

// Socket options of SOL_NETLINK (some libcs lack SOL_NETLINK itself).
static inline int cnl_sol_netlink(void) { return 270; }

/// The f_type of a file on nsfs (a namespace handle: /proc/<pid>/ns/net, /var/run/netns/x,
/// a bind mount of either). Older kernels report procfs for /proc/<pid>/ns/*.
static inline long cnl_nsfs_magic(void) { return NSFS_MAGIC; }
static inline long cnl_procfs_magic(void) { return PROC_SUPER_MAGIC; }

/// recv(2) of one netlink datagram on a socket with NETLINK_LISTEN_ALL_NSID: `*nsid` is
/// the id (in the socket's namespace) of the namespace the datagram comes from, or -1 for
/// the socket's own. Returns what recv returns.
ssize_t cnl_recv_with_nsid(int fd, void *buffer, size_t length, int *nsid);

/// Sends one netlink request from a helper process and returns without waiting for it.
///
/// Forks a helper (through a middle process that ends at once, so the helper is not the
/// caller's child and nobody has to reap it but init). The helper puts its standard streams
/// on /dev/null and closes every descriptor but `sock` and its report pipe, so a runtime reading
/// the caller's output sees its end when the caller exits, not when the helper does; names
/// itself `name` (at most 15 bytes shown); sends the `length` bytes of `message` (one
/// request with NLM_F_ACK) on `sock`; reads the kernel's answer with the same sequence
/// number; writes its error number as an int to the report pipe (0 for the ACK, a positive
/// errno otherwise) and exits. Returns the report pipe's read end (close-on-exec; it reads
/// end-of-file if the helper dies without reporting) once the helper exists, or -1 with
/// errno set.
int cnl_detached_request(int sock, const void *message, size_t length, const char *name);

#endif
