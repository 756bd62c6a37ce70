// Least privilege for the inspector: it starts as root (the daemon's child, or a container's
// entrypoint) and runs as an unprivileged user, with only the capabilities it still needs, once
// it has built its data path.
#pragma once

#include <sys/capability.h>
#include <sys/types.h>

#include <array>
#include <span>
#include <string>

namespace xdpfwd::ingress {

// nobody/nogroup, by number: the ingress image has no user database.
inline constexpr uid_t kUnprivilegedUid = 65534;
inline constexpr gid_t kUnprivilegedGid = 65534;

// What the inspector still does once its data path is built (the BPF programs loaded and
// attached, the AF_XDP sockets and the UMEM made: maps and sockets are used through their fds):
inline constexpr std::array<cap_value_t, 2> kRuntimeCapabilities = {
    CAP_NET_ADMIN,        // attach its XDP programs again when someone removed them, detach them at
                          // the end; netlink requests that start neighbour resolution (NTF_USE)
    CAP_NET_BIND_SERVICE, // the domain proxy's listeners on ports below 1024 (80, 443) that a
                          // later configure adds
};

// Switches this process, which must have one thread (credentials are per thread), to uid and
// gid without supplementary groups; keeps exactly `keep` as its permitted and effective
// capabilities and as its bounding set, none inheritable or ambient, and sets no_new_privs so
// that no exec gives any back. Needs CAP_SETUID, CAP_SETGID, CAP_SETPCAP and every capability
// of `keep`. Throws std::system_error naming the step that failed.
void drop_privileges(uid_t uid, gid_t gid, std::span<const cap_value_t> keep);

// "cap_net_admin,cap_net_raw", for the log.
std::string capability_names(std::span<const cap_value_t> capabilities);

} // namespace xdpfwd::ingress
