// How ingress containers come to be: the static runtime makes network namespaces itself; a
// Docker runtime will run containers. Either way the daemon gets back the veth that leads in.
#pragma once

#include "xdpfwd/config.hpp"
#include "xdpfwd/netlink.hpp"

#include <optional>
#include <string>

namespace xdpfwd {

// The host end of an ingress: where the XDP program sends the ingress's frames.
struct IngressEndpoint {
  int host_ifindex = 0;   // host side of the veth, in the daemon's network namespace
  MacAddress host_mac{};  // its MAC: the source of redirected frames
  MacAddress ingress_mac{}; // MAC of eth0 inside the ingress: their destination
};

class IngressRuntime {
public:
  virtual ~IngressRuntime() = default;
  // Creates the ingress's container and its veth, with the service IPs inside; replaces a
  // leftover of the same name that a run which died left behind.
  virtual IngressEndpoint start(const config::Ingress& ingress) = 0;
  // Takes over what a previous run left running for this ingress (on a restart that kept it),
  // or nullopt when there is nothing usable: then start() it.
  virtual std::optional<IngressEndpoint> adopt(const config::Ingress& ingress) = 0;
  // Removes everything start() created for that ingress.
  virtual void stop(const std::string& ingress_name) = 0;
  // Forgets every ingress without removing anything: they outlive this run (a restart).
  virtual void release_all() = 0;
};

} // namespace xdpfwd
