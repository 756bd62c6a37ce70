#include "static_runtime.hpp"

#include "service_veth.hpp"

#include "ingress_pass_bpf.skel.h"
#include "xdpfwd/system_error.hpp"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>

namespace xdpfwd {


StaticRuntime::StaticRuntime(std::optional<config::IpAddress> underlay_local)
    : underlay_local_(std::move(underlay_local)), host_(Netlink::open()) {}

// The ingress's own overlay, inside its netns:
//   ovl0 (veth: the overlay addresses, the inspector's XDP) <-> ovl0p -- bridge ovlbr -- vx0 (VXLAN)
// Why the inspector is not on the VXLAN device itself: that has generic XDP only, which takes
// what the stack hands it, including a replica's TSO segment or a GRO'd burst of up to 64 KiB;
// no AF_XDP buffer holds that, and it was lost. With native XDP on a veth, the kernel segments
// such frames on the peer before they cross (Docker's overlay endpoints are veths likewise).
// vx0 is made from here so that its UDP socket stays on the host's underlay, and placed straight
// into the ingress netns. With the underlay's link given, the kernel sets its MTU to the
// underlay's minus the encapsulation (50 bytes over IPv4, 70 over IPv6), so that encapsulated
// frames are never fragmented on the underlay; the veth pair takes the same MTU.
void StaticRuntime::create_overlay(const config::Ingress& ingress, int netns_fd, Netlink& inside) {
  VxlanSpec spec{.name = kVxlanInterface, .vni = ingress.overlay.vni, .local = underlay_local_};
  if (underlay_local_) {
    const auto underlay = host_.find_link_with_address(*underlay_local_);
    if (!underlay)
      throw std::runtime_error("ingress " + ingress.name + ": underlay.local " + underlay_local_->to_string() +
                               " is not an address of this host");
    spec.underlay_ifindex = underlay->ifindex;
  }
  host_.create_vxlan(spec, netns_fd);
  const LinkInfo vxlan = inside.link(kVxlanInterface);
  for (const auto& vtep : ingress.overlay.remote_vteps) inside.add_vxlan_remote(vxlan, vtep);

  inside.create_veth(kOverlayInterface, kOverlayPort, netns_fd);
  inside.create_bridge(kOverlayBridge);
  const LinkInfo overlay = inside.link(kOverlayInterface);
  const LinkInfo port = inside.link(kOverlayPort);
  const LinkInfo bridge = inside.link(kOverlayBridge);
  inside.set_mtu(overlay, vxlan.mtu);
  inside.set_mtu(port, vxlan.mtu);
  inside.set_master(vxlan, bridge);
  inside.set_master(port, bridge);

  if (const auto& v4 = ingress.overlay.address) inside.add_address(overlay, v4->address(), v4->prefix_length());
  if (const auto& v6 = ingress.overlay.address6) inside.add_address(overlay, v6->address(), v6->prefix_length());
  run_in_netns(netns_fd, [] {
    // The overlay is this ingress's own segment: no duplicate address detection, so that its
    // link-local address, and with it neighbour discovery of the replicas, works at once.
    write_sysctl(std::string("net/ipv6/conf/") + kOverlayInterface + "/accept_dad", "0");
    // The plumbing behind ovl0 has no addresses, and sends no IPv6 of its own onto the overlay.
    for (const char* device : {kOverlayPort, kOverlayBridge, kVxlanInterface})
      write_sysctl(std::string("net/ipv6/conf/") + device + "/disable_ipv6", "1");
    // Where br_netfilter is loaded (Docker loads it), its default sends bridged frames through
    // the firewall hooks in every netns; this bridge needs none of it (br_nf_* and nf_hook_slow
    // were 3 % of the samples of bench/run's end-to-end profile, half of it this bridge's).
    for (const char* table : {"iptables", "ip6tables", "arptables"}) {
      const std::string key = std::string("net/bridge/bridge-nf-call-") + table;
      if (std::filesystem::exists("/proc/sys/" + key)) write_sysctl(key, "0");
    }
    // The kernel's own connections (health checks, terminated TCP) take source ports above the
    // inspector's NAT range, so the two never pick the same port.
    write_sysctl("net/ipv4/ip_local_port_range", kKernelPortRange);
  });
  for (const LinkInfo& link : {vxlan, bridge, port, overlay}) inside.set_up(link);
  spdlog::info("ingress {}: overlay {} (veth, bridged to {} vni {}) mtu {}, {} remote VTEPs", ingress.name,
               kOverlayInterface, kVxlanInterface, ingress.overlay.vni, vxlan.mtu, ingress.overlay.remote_vteps.size());
}

StaticRuntime::~StaticRuntime() {
  while (!running_.empty()) {
    const std::string name = running_.begin()->first;
    try {
      stop(name);
    } catch (const std::exception& error) {
      spdlog::error("ingress {}: removing it failed: {}", name, error.what());
      running_.erase(name);
    }
  }
}

void StaticRuntime::remove_leftover(const std::string& ingress_name) {
  const std::string netns = netns_name(ingress_name);
  const bool had_veth = host_.delete_link(host_veth_name(ingress_name));
  const bool had_netns = NamedNetns::remove(netns);
  if (had_veth || had_netns)
    spdlog::warn("ingress {}: removed what a previous run left behind (netns {}, veth {})", ingress_name, netns,
                 host_veth_name(ingress_name));
}

IngressEndpoint StaticRuntime::start(const config::Ingress& ingress) {
  const std::string veth = host_veth_name(ingress.name);
  const std::string where = "ingress " + ingress.name;
  remove_leftover(ingress.name);

  NamedNetns netns = NamedNetns::create(netns_name(ingress.name));
  host_.create_veth(veth, kIngressInterface, netns.fd());
  try {
    Netlink inside = Netlink::open_in(netns.fd());
    inside.set_up(inside.link("lo"));
    const auto [host_end, ingress_end] = plumb_service_veth(host_, inside, netns.fd(), veth, kIngressInterface, ingress);
    create_overlay(ingress, netns.fd(), inside);

    spdlog::info("ingress {}: netns {} up, veth {} ({}) <-> eth0 ({})", ingress.name, netns.name(), veth,
                 to_string(host_end.mac), to_string(ingress_end.mac));
    running_.insert_or_assign(ingress.name, std::move(netns));
    return IngressEndpoint{host_end.ifindex, host_end.mac, ingress_end.mac};
  } catch (...) {
    host_.delete_link(veth); // the netns goes with the NamedNetns handle
    throw;
  }
}

std::optional<IngressEndpoint> StaticRuntime::adopt(const config::Ingress& ingress) {
  const std::string netns = netns_name(ingress.name);
  if (!NamedNetns::exists(netns)) return std::nullopt;
  const auto host_end = host_.find_link(host_veth_name(ingress.name));
  if (!host_end) return std::nullopt;
  NamedNetns adopted = NamedNetns::adopt(netns);
  Netlink inside = Netlink::open_in(adopted.fd());
  const auto ingress_end = inside.find_link(kIngressInterface);
  if (!ingress_end || !inside.find_link(kOverlayInterface)) return std::nullopt; // adopted goes: start() makes it anew
  spdlog::info("ingress {}: adopted netns {} and veth {} from the previous run", ingress.name, netns, host_end->name);
  running_.insert_or_assign(ingress.name, std::move(adopted));
  return IngressEndpoint{host_end->ifindex, host_end->mac, ingress_end->mac};
}

void StaticRuntime::release_all() {
  for (auto& [name, netns] : running_) netns.release();
  running_.clear();
}

void StaticRuntime::stop(const std::string& ingress_name) {
  auto found = running_.find(ingress_name);
  if (found == running_.end()) return;
  host_.delete_link(host_veth_name(ingress_name)); // takes eth0 inside and the routes along
  running_.erase(found);                            // removes the netns name
  spdlog::info("ingress {}: removed", ingress_name);
}

} // namespace xdpfwd
