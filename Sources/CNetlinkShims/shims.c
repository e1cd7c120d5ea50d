#define _GNU_SOURCE
#include "CNetlinkShims.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/prctl.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>

// Closes every descriptor from `from` to `to` (inclusive), close_range(2) or one by one.
static void close_span(unsigned int from, unsigned int to) {
    if (from > to) return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, from, to, 0) == 0) return;
#endif
    long limit = sysconf(_SC_OPEN_MAX);
    if (limit < 0 || limit > 65536) limit = 65536;
    for (unsigned long fd = from; fd <= to && fd < (unsigned long)limit; fd++) close((int)fd);
}

// The helper: standard streams on /dev/null, no descriptor but the socket and the report
// pipe, the request sent, the kernel's answer to it read, its error number reported.
// Only system calls from here on: the process is a fork of a possibly multi-threaded one.
__attribute__((noreturn)) static void run_helper(int sock, const void *message, size_t length, int report,
                                                 const char *name) {
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd <= 2; fd++) {
        if (fd == sock || fd == report) continue;
        if (null >= 0) dup2(null, fd); else close(fd);  // never the runtime's pipes
    }
    int keep[2] = {sock < report ? sock : report, sock < report ? report : sock};
    unsigned int next = 3;
    for (int i = 0; i < 2; i++) {
        if (keep[i] < (int)next) continue;
        close_span(next, (unsigned int)keep[i] - 1);
        next = (unsigned int)keep[i] + 1;
    }
    close_span(next, UINT_MAX);
    if (name) prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);

    const struct nlmsghdr *request = message;
    int code = 0;
    ssize_t sent;
    do sent = send(sock, message, length, 0); while (sent < 0 && errno == EINTR);
    if (sent < 0) {
        code = errno;
    } else {
        // Aligned for nlmsghdr; an error reply (capped ACK) is small, a full one at most
        // the request plus the header.
        unsigned int buffer[4096];
        for (int answered = 0; !answered;) {
            ssize_t got = recv(sock, buffer, sizeof buffer, 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                code = errno;
                break;
            }
            int left = (int)got;
            for (struct nlmsghdr *h = (struct nlmsghdr *)buffer; NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
                if (h->nlmsg_seq != request->nlmsg_seq || h->nlmsg_type != NLMSG_ERROR) continue;
                code = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
                answered = 1;
                break;
            }
        }
    }
    ssize_t w;
    do w = write(report, &code, sizeof code); while (w < 0 && errno == EINTR);
    _exit(0);
}

int cnl_detached_request(int sock, const void *message, size_t length, const char *name) {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) return -1;
    int report = ends[1];
    pid_t middle = fork();
    if (middle < 0) {
        int saved = errno;
        close(ends[0]);
        close(ends[1]);
        errno = saved;
        return -1;
    }
    if (middle == 0) {
        // The middle process only forks the helper and ends, so the helper is nobody's
        // child here: when it ends, init (or the nearest subreaper) reaps it.
        pid_t helper = fork();
        if (helper == 0) run_helper(sock, message, length, report, name);
        _exit(helper < 0 ? 1 : 0);
    }
    close(report);
    int status = 0;
    while (waitpid(middle, &status, 0) < 0) {
        if (errno != EINTR) {
            int saved = errno;
            close(ends[0]);
            errno = saved;
            return -1;
        }
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        close(ends[0]);
        errno = EAGAIN;
        return -1;
    }
    return ends[0];
}

ssize_t cnl_recv_with_nsid(int fd, void *buffer, size_t length, int *nsid) {
    struct iovec io = {.iov_base = buffer, .iov_len = length};
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr message = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    *nsid = -1;
    ssize_t got = recvmsg(fd, &message, 0);
    if (got < 0) return got;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&message); c; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_NETLINK && c->cmsg_type == NETLINK_LISTEN_ALL_NSID)
            memcpy(nsid, CMSG_DATA(c), sizeof(int));
    }
    return got;
}
