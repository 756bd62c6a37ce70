// One service's balancing state as the data path uses it: the rule (Balancer), the flows
// (FlowTable) and, for client_ip nat, the source ports (PortAllocator), kept consistent with
// each other. Per packet: one flow-table lookup; per new flow: one pick and one port.
//
// The reply key it registers assumes the data path's rewrite:
//   client -> replica: dst := replica address (port kept);
//                      nat: src := ingress overlay address, src port := nat_port
//   replica -> client: arrives as {replica, svc port} -> {overlay address, nat_port} (nat)
//                      or {replica, svc port} -> {client, client port} (preserve),
//   i.e. FlowEntry::reverse; rewriting it back uses FlowEntry::forward.
//
// Families: an IPv4 flow is balanced over the service's IPv4 replicas only, an IPv6 flow over
// its IPv6 replicas only (the Balancer keeps the rule's state per family); a flow of a family
// the service has no replica of is dropped as family_mismatch. Replica slots are shared by
// both families, so FlowEntry::replica.slot names one replica whatever its family.
//
// Replica changes: adding replicas never moves a flow (each flow keeps its entry); a flow
// whose replica was removed or went down is moved to a fresh pick on its next client packet
// (for TCP the new replica will answer with a reset, which ends the connection promptly
// instead of leaving it to time out); a drained replica (weight 0) keeps its flows.
#pragma once

#include "balancer.hpp"
#include "flow_key.hpp"
#include "flow_table.hpp"
#include "port_allocator.hpp"

#include <xdpfwd/config.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>

namespace xdpfwd::ingress::balance {

// Why a client packet got no replica; the data path counts drops by these names.
enum class DropReason : std::uint8_t {
  NoReplica,         // "no_replica": no active replica
  NatPortsExhausted, // "nat_ports_exhausted"
  NoOverlayAddress,  // "no_overlay_address": nat, but the ingress has no address of the family
  FamilyMismatch,    // "family_mismatch": no replica of the flow's IP family (no NAT46/64)
  UnsupportedProtocol, // "nat_unsupported_protocol": nat for a protocol without ports
  KeyConflict,       // "reply_key_conflict": the replies could not be told from another flow's
};
inline constexpr std::size_t kDropReasons = 6;
const char* to_string(DropReason reason) noexcept;

struct ServiceBalancerOptions {
  config::LbRule lb = config::LbRule::Maglev;
  config::ClientIp client_ip = config::ClientIp::Nat;
  std::optional<Address> overlay_v4; // the ingress's overlay addresses (nat source)
  std::optional<Address> overlay_v6;
  FlowTable::Options flows{};
  PortRange nat_ports{};
  // Maglev::kAutoTableSize: per family, sized by its replica count (Maglev::auto_table_size).
  std::uint32_t maglev_table_size = Maglev::kAutoTableSize;
};

struct ServiceCounters {
  std::uint64_t flows_created = 0;
  std::uint64_t flows_moved = 0;
  std::uint64_t drops[kDropReasons] = {};
};

class ServiceBalancer {
public:
  struct Decision {
    FlowEntry* flow = nullptr;          // set when the packet is to be forwarded
    std::optional<DropReason> drop;     // set otherwise
    bool created = false;               // first packet of the flow
    bool moved = false;                 // the flow changed replica with this packet
  };

  // Throws std::invalid_argument for bad sizes or ranges (start-up boundary).
  explicit ServiceBalancer(ServiceBalancerOptions options);

  // A packet from a client. key and hash = balance::hash(key) come from the parser.
  Decision client_packet(const FlowKey& key, std::uint64_t hash, std::uint8_t tcp_flags,
                         Timestamp now);
  // A packet from a replica: its flow, or nullptr (unknown or expired: drop).
  FlowEntry* reply_packet(const FlowKey& key, std::uint64_t hash, std::uint8_t tcp_flags,
                          Timestamp now);
  // The flow a key belongs to, without counting a packet for it (an ICMP error quoting one of
  // the flow's packets must neither refresh nor advance it); nullptr when unknown, expired or
  // its replica has left.
  const FlowEntry* lookup(const FlowKey& forward, std::uint64_t hash, Timestamp now);
  const FlowEntry* lookup_reply(const FlowKey& reverse, std::uint64_t hash, Timestamp now);
  // Bounded expiry sweep; see FlowTable::expire.
  std::size_t expire(Timestamp now, std::size_t budget) { return flows_.expire(now, budget); }

  // Control path.
  void sync(std::span<const config::Replica> replicas);
  Balancer& balancer() noexcept { return *balancer_; }
  const Balancer& balancer() const noexcept { return *balancer_; }
  // f(ReplicaRef) for every replica of both families, in slot order (what status lists).
  template <typename F> void for_each_replica(F&& f) const { balancer_->for_each_replica(f); }
  const FlowTable& flows() const noexcept { return flows_; }
  const PortAllocator& ports() const noexcept { return ports_; }
  const ServiceCounters& counters() const noexcept { return counters_; }

private:
  Decision drop(DropReason reason) noexcept;
  // Chooses a replica (and port) for the flow and builds its reply key.
  std::optional<DropReason> assign(const FlowKey& key, std::uint64_t hash, Timestamp now, ReplicaRef& replica,
                                   std::uint16_t& nat_port, FlowKey& reverse);
  std::optional<std::uint16_t> reclaim_port(const FlowKey& key, Family family, Timestamp now, ReplicaRef& replica);
  void release(ReplicaRef replica, IpProto proto, std::uint16_t nat_port) noexcept;

  ServiceBalancerOptions options_;
  std::unique_ptr<Balancer> balancer_;
  FlowTable flows_;
  PortAllocator ports_;
  ServiceCounters counters_;
};

} // namespace xdpfwd::ingress::balance
