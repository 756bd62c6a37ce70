// The service side of an ingress, the same in every runtime: a veth whose host end routes the
// service IPs in (and forwards the ingress's replies out), and whose ingress end holds the
// service IPs, reaches the host through link-local next hops pinned to the host end's MAC, and
// runs an XDP program, because a veth delivers XDP-redirected frames only to an end that has one.
#pragma once

#include "xdpfwd/config.hpp"
#include "xdpfwd/netlink.hpp"

#include <string>

namespace xdpfwd {

struct ServiceVeth {
  LinkInfo host_end;
  LinkInfo ingress_end;
};

// veth: the host end, already created (with its peer `inner` inside netns_fd); host and inside
// are netlink sockets of the host's and the ingress's namespaces.
ServiceVeth plumb_service_veth(Netlink& host, Netlink& inside, int netns_fd, const std::string& veth,
                               const std::string& inner, const config::Ingress& ingress);

} // namespace xdpfwd
