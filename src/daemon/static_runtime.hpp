// The static runtime: each ingress is a network namespace `xdpfwd-<name>` made by the daemon,
// reached through a veth `xf-<name>` (host) <-> `eth0` (ingress), with its overlay on a veth
// `ovl0` <-> `ovl0p`, bridged (`ovlbr`) to the VXLAN device `vx0` (see create_overlay).
#pragma once

#include "ingress_runtime.hpp"
#include "xdpfwd/netns.hpp"

#include <map>

namespace xdpfwd {

class StaticRuntime final : public IngressRuntime {
public:
  static std::string netns_name(const std::string& ingress) { return "xdpfwd-" + ingress; }
  static std::string host_veth_name(const std::string& ingress) { return "xf-" + ingress; }
  static constexpr const char* kIngressInterface = "eth0";
  static constexpr const char* kOverlayInterface = "ovl0";
  static constexpr const char* kOverlayPort = "ovl0p";
  static constexpr const char* kOverlayBridge = "ovlbr";
  static constexpr const char* kVxlanInterface = "vx0";
  // Source ports of the ingress netns's own sockets; the inspector's NAT uses ports below.
  static constexpr const char* kKernelPortRange = "60000 65535";

  explicit StaticRuntime(std::optional<config::IpAddress> underlay_local);
  ~StaticRuntime() override; // stops every ingress still running

  IngressEndpoint start(const config::Ingress& ingress) override;
  std::optional<IngressEndpoint> adopt(const config::Ingress& ingress) override;
  void stop(const std::string& ingress_name) override;
  void release_all() override;

private:
  void remove_leftover(const std::string& ingress_name);
  void create_overlay(const config::Ingress& ingress, int netns_fd, Netlink& inside);

  std::optional<config::IpAddress> underlay_local_;
  Netlink host_;
  std::map<std::string, NamedNetns> running_;
};

} // namespace xdpfwd
