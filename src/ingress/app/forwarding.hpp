// The ingress's per-frame decisions, without the I/O: a client frame (from eth0) is checked,
// given a service and a replica, NAT'ed and addressed to the replica's MAC on the overlay; a
// replica's frame (from ovl0) is matched to its flow and translated back to the client. Frames
// are rewritten in place; the data path moves them between the AF_XDP sockets.
#pragma once

#include "conformity.hpp"
#include "domain_table.hpp"
#include "nat.hpp"
#include "neighbour_cache.hpp"
#include "service_balancer.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

namespace xdpfwd::ingress {

// Hold: NAT'ed and ready for the overlay but the replica's MAC is not known yet; the data path
// keeps the frame (bounded) until replica_mac(held_for()) has one, like the kernel's queue of
// packets waiting for ARP.
enum class Action { ToOverlay, ToClient, Drop, Hold };

// Drops decided here; the conformity check and the balancers count their own.
enum class ForwardDrop : std::uint8_t {
  NotServiceIp,      // "not_service_ip": the host redirected something not ours
  NoNeighbour,       // "no_neighbour": the replica's MAC was not resolved in time (or too many waited)
  TooBig,            // "too_big": larger than the overlay MTU and not answerable with ICMP
  UnknownReply,      // "unknown_reply": from the overlay, but no flow (expired, or never ours)
  BadOverlayFrame,   // "bad_overlay_frame": from the overlay, unparsable
  IcmpUntranslatable, // "icmp_untranslatable": an ICMP error whose quoted packet we cannot map
  BadDns,            // "bad_dns": to a dns_ports port of a multi-service ingress, not a readable query
  NoDomainPort,      // "no_domain_port": multi-service ingress, a port without a domain, unknown_domain reject
  Count
};
std::string_view to_string(ForwardDrop drop) noexcept;

struct ForwardCounters {
  std::uint64_t to_overlay = 0;
  std::uint64_t to_client = 0;
  std::uint64_t too_big_answered = 0; // ICMP frag-needed / packet-too-big sent to clients
  std::uint64_t checksums_completed = 0; // frames whose sender left the checksum to offload
  std::uint64_t dns_refused = 0;      // DNS queries for a name no service takes, answered REFUSED
  std::array<std::uint64_t, static_cast<size_t>(ForwardDrop::Count)> drops{};
};

// A replica that held frames wait for.
struct HoldTicket {
  std::uint32_t service = 0; // index into the services, valid until the next configure()
  std::uint32_t slot = 0;    // the replica's slot in that service's balancer
};

// The interfaces of the ingress netns that frames leave through.
struct IngressLinks {
  packet::nat::Mac client_mac{};  // eth0 (service side)
  packet::nat::Mac overlay_mac{}; // ovl0
  std::uint32_t overlay_mtu = 1450;
};

class Forwarding {
public:
  using Timestamp = balance::Timestamp;

  Forwarding(const config::Ingress& ingress, IngressLinks links, NeighbourCache& neighbours);
  ~Forwarding();

  // Applies a new config of the same ingress: replicas are synced (flows stay where they can),
  // a service whose rule changed is rebuilt, the inspect policy replaced.
  void configure(const config::Ingress& ingress);

  // `length` is the frame's length in `buffer` (the UMEM frame); the result may change it.
  Action client_frame(std::span<std::uint8_t> buffer, std::uint32_t& length, Timestamp now) noexcept;
  Action overlay_frame(std::span<std::uint8_t> buffer, std::uint32_t& length, Timestamp now) noexcept;

  // After client_frame() returned Hold: the replica the frame waits for.
  const HoldTicket& held_for() const noexcept { return held_for_; }
  // The MAC a held frame can now be sent to, if resolved.
  std::optional<packet::nat::Mac> replica_mac(const HoldTicket& ticket) const noexcept;
  // Count what the data path decided about held frames: given up, or sent after all.
  void count_drop(ForwardDrop reason) noexcept { ++counters_.drops[static_cast<size_t>(reason)]; }
  void count_sent_held() noexcept { ++counters_.to_overlay; }

  // A replica's health (from the health checks): unhealthy ones take no new flows and their
  // flows move on their next packet. false when the service has no such replica.
  bool set_replica_health(const std::string& service, const config::IpAddress& replica, bool healthy);

  // Re-reads the replicas' MACs from the neighbour cache (after its events, after configure).
  void refresh_neighbours();
  // Expires idle flows, a bounded amount of work per call.
  void expire(Timestamp now);

  nlohmann::json status() const;
  const ForwardCounters& counters() const { return counters_; }

private:
  struct Service;
  Action drop(ForwardDrop reason) noexcept;
  void finish_partial_checksum(const packet::PacketView& view, bool partial) noexcept;
  Action overlay_icmp_error(packet::PacketView& view, Timestamp now) noexcept;
  Action client_icmp_error(packet::PacketView& view, Timestamp now) noexcept;
  Action too_big(std::span<std::uint8_t> buffer, std::uint32_t& length, const packet::PacketView& view) noexcept;
  // The service of a client packet of a multi-service ingress, or nullopt when the packet was
  // answered (action says how) or dropped.
  std::optional<std::uint32_t> choose_service(std::span<std::uint8_t> buffer, std::uint32_t& length,
                                              packet::PacketView& view, Action& action) noexcept;
  Action refuse_dns(std::span<std::uint8_t> buffer, std::uint32_t& length, const packet::PacketView& view) noexcept;
  std::unique_ptr<Service> make_service(const config::Service& service, std::uint32_t max_flows) const;
  // Each service's flow table: an equal share of the ingress's max_flows, at least kMinFlowsPerService.
  static std::uint32_t flows_per_service(const config::Ingress& ingress);

  std::string name_;
  IngressLinks links_;
  NeighbourCache& neighbours_;
  std::optional<packet::IpAddr> overlay_v4_, overlay_v6_;
  std::vector<packet::IpAddr> service_ips_;
  std::unique_ptr<packet::Conformity> conformity_;
  packet::DropCounters conformity_before_{}; // what earlier configurations' checks counted
  std::uint64_t rate_limit_evicted_before_ = 0; // ... and their rate limiters' evicted_active
  std::vector<std::unique_ptr<Service>> services_;
  // A reply is looked up in the flow tables of the services that have its sender as a replica
  // (one, commonly), not in every service's: the cost of a reply does not grow with the services.
  struct AddressHash {
    std::size_t operator()(const balance::Address& address) const noexcept;
  };
  std::unordered_map<balance::Address, std::vector<std::uint32_t>, AddressHash> services_by_replica_;
  // Several services: the domain names and the UDP ports whose DNS query name picks the service.
  std::optional<domain::DomainTable> domains_;
  std::vector<std::uint16_t> dns_ports_;
  packet::nat::Mac gateway_mac_{}; // the host's end of eth0, learnt from the client frames
  HoldTicket held_for_;
  ForwardCounters counters_;
};

} // namespace xdpfwd::ingress
