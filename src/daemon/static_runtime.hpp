// The static runtime: each ingress is a network namespace `xdpfwd-<name>` made by the daemon,
// reached through a veth `xf-<name>` (host) <-> `eth0` (ingress).
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

  StaticRuntime();
  ~StaticRuntime() override; // stops every ingress still running

  IngressEndpoint start(const config::Ingress& ingress) override;
  void stop(const std::string& ingress_name) override;

private:
  void remove_leftover(const std::string& ingress_name);
  Netlink host_;
  std::map<std::string, NamedNetns> running_;
};

} // namespace xdpfwd
