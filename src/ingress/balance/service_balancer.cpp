#include "service_balancer.hpp"

#include <algorithm>

namespace xdpfwd::ingress::balance {
namespace {

// Entries looked at per timeout class for a flow whose NAT port can be taken back: bounded
// work on the packet path; with flows spread over the replicas one of the first few matches.
constexpr std::uint32_t kEvictionLooks = 64;

} // namespace

const char* to_string(DropReason reason) noexcept {
  switch (reason) {
  case DropReason::NoReplica: return "no_replica";
  case DropReason::NatPortsExhausted: return "nat_ports_exhausted";
  case DropReason::NoOverlayAddress: return "no_overlay_address";
  case DropReason::FamilyMismatch: return "family_mismatch";
  case DropReason::UnsupportedProtocol: return "nat_unsupported_protocol";
  case DropReason::KeyConflict: return "reply_key_conflict";
  }
  return "unknown";
}

ServiceBalancer::ServiceBalancer(ServiceBalancerOptions options)
    : options_(options),
      balancer_(Balancer::create(options.lb, options.maglev_table_size)),
      flows_(options.flows),
      ports_(options.nat_ports) {
  flows_.on_remove([this](const FlowEntry& e, RemoveReason) {
    release(e.replica, e.forward.proto, e.nat_port);
  });
}

void ServiceBalancer::release(ReplicaRef replica, IpProto proto, std::uint16_t nat_port) noexcept {
  balancer_->flow_closed(replica);
  if (nat_port != 0) ports_.free(replica, proto, nat_port);
}

ServiceBalancer::Decision ServiceBalancer::drop(DropReason reason) noexcept {
  ++counters_.drops[static_cast<std::size_t>(reason)];
  return Decision{.drop = reason};
}

std::optional<DropReason> ServiceBalancer::assign(const FlowKey& key, std::uint64_t hash, Timestamp now,
                                                  ReplicaRef& replica, std::uint16_t& nat_port,
                                                  FlowKey& reverse) {
  const Family family = family_of(key);
  const std::optional<ReplicaRef> picked = balancer_->pick(family, key, hash);
  if (!picked) {
    // None of the family at all, while the other family has some: a family problem of the
    // configuration rather than replicas being down or drained.
    const bool other_family_only =
        balancer_->replica_count(family) == 0 && balancer_->replica_count() > 0;
    return other_family_only ? DropReason::FamilyMismatch : DropReason::NoReplica;
  }
  replica = *picked;
  nat_port = 0;
  if (options_.client_ip == config::ClientIp::Nat) {
    const std::optional<Address>& overlay = family == Family::V4 ? options_.overlay_v4 : options_.overlay_v6;
    if (!overlay) return DropReason::NoOverlayAddress;
    if (!PortAllocator::supports(key.proto)) return DropReason::UnsupportedProtocol;
    std::optional<std::uint16_t> port = ports_.allocate(replica, key.proto);
    if (!port) port = reclaim_port(key, family, now, replica);
    if (!port) return DropReason::NatPortsExhausted;
    nat_port = *port;
  }
  reverse = FlowKey{.src = balancer_->flow_address(replica), .dst = key.src, .src_port = key.dst_port,
                    .dst_port = key.src_port, .proto = key.proto, .pad = {}};
  if (nat_port != 0) {
    reverse.dst = *(family == Family::V4 ? options_.overlay_v4 : options_.overlay_v6);
    reverse.dst_port = nat_port;
  }
  return std::nullopt;
}

// All of the replica's ports of this protocol are taken (a flood of new sources): its oldest
// flow holding one gives it up. Failing that within the looks (the oldest flows may all be of
// other replicas), the oldest such flow of any replica that takes new flows of the family gives
// its port up, and the new flow goes to that replica: a new flow's replica may change, an
// established one's never does.
std::optional<std::uint16_t> ServiceBalancer::reclaim_port(const FlowKey& key, Family family, Timestamp now,
                                                           ReplicaRef& replica) {
  const auto holds_a_port = [&](const FlowEntry& flow) {
    return flow.forward.proto == key.proto && flow.nat_port != 0 && family_of(flow.forward) == family;
  };
  if (flows_.evict_oldest_if([&](const FlowEntry& flow) { return flow.replica == replica && holds_a_port(flow); },
                             now, kEvictionLooks))
    return ports_.allocate(replica, key.proto);
  const auto eligible = balancer_->eligible(family);
  const auto takes_new_flows = [&](ReplicaRef ref) {
    return balancer_->is_current(ref) && std::find(eligible.begin(), eligible.end(), ref.slot) != eligible.end();
  };
  const auto victim = flows_.evict_oldest_if(
      [&](const FlowEntry& flow) { return holds_a_port(flow) && takes_new_flows(flow.replica); }, now, kEvictionLooks);
  if (!victim) return std::nullopt;
  replica = *victim;
  return ports_.allocate(replica, key.proto);
}

ServiceBalancer::Decision ServiceBalancer::client_packet(const FlowKey& key, std::uint64_t hash,
                                                         std::uint8_t tcp_flags, Timestamp now) {
  FlowEntry* flow = flows_.find(key, hash, now);
  if (flow != nullptr && balancer_->keeps_flows(flow->replica)) {
    flows_.touch(*flow, Direction::Original, tcp_flags, now);
    return Decision{.flow = flow, .drop = std::nullopt};
  }

  ReplicaRef replica;
  std::uint16_t nat_port = 0;
  FlowKey reverse;
  if (const auto reason = assign(key, hash, now, replica, nat_port, reverse)) {
    if (flow != nullptr) flows_.erase(*flow); // its replica is gone and there is no other
    return drop(*reason);
  }
  const std::uint64_t reverse_hash = balance::hash(reverse);

  if (flow != nullptr) {
    // Its replica left or went down: move the flow, keeping its entry.
    const ReplicaRef old_replica = flow->replica;
    const std::uint16_t old_port = flow->nat_port;
    if (!flows_.rebind(*flow, reverse, reverse_hash, replica, nat_port)) {
      release(replica, key.proto, nat_port);
      flows_.erase(*flow);
      return drop(DropReason::KeyConflict);
    }
    release(old_replica, key.proto, old_port);
    balancer_->flow_opened(replica);
    flows_.touch(*flow, Direction::Original, tcp_flags, now);
    ++counters_.flows_moved;
    return Decision{.flow = flow, .drop = std::nullopt, .created = false, .moved = true};
  }

  // Open before insert: an insert that evicts calls release() for the victim.
  balancer_->flow_opened(replica);
  flow = flows_.insert(key, hash, reverse, reverse_hash, replica, nat_port, tcp_flags, now);
  if (flow == nullptr) {
    release(replica, key.proto, nat_port);
    return drop(DropReason::KeyConflict);
  }
  ++counters_.flows_created;
  return Decision{.flow = flow, .drop = std::nullopt, .created = true};
}

FlowEntry* ServiceBalancer::reply_packet(const FlowKey& key, std::uint64_t hash,
                                         std::uint8_t tcp_flags, Timestamp now) {
  FlowEntry* flow = flows_.find_reply(key, hash, now);
  // A reply from a replica the flow has since left is not forwarded (nor does it keep the
  // flow alive); the flow is moved on the client's next packet.
  if (flow == nullptr || !balancer_->is_current(flow->replica)) return nullptr;
  flows_.touch(*flow, Direction::Reply, tcp_flags, now);
  return flow;
}

const FlowEntry* ServiceBalancer::lookup(const FlowKey& forward, std::uint64_t hash, Timestamp now) {
  const FlowEntry* flow = flows_.find(forward, hash, now);
  return flow != nullptr && balancer_->is_current(flow->replica) ? flow : nullptr;
}

const FlowEntry* ServiceBalancer::lookup_reply(const FlowKey& reverse, std::uint64_t hash, Timestamp now) {
  const FlowEntry* flow = flows_.find_reply(reverse, hash, now);
  return flow != nullptr && balancer_->is_current(flow->replica) ? flow : nullptr;
}

void ServiceBalancer::sync(std::span<const config::Replica> replicas) {
  balancer_->sync(replicas);
  if (options_.client_ip == config::ClientIp::Nat) {
    // Port pools are sized here, not on the first packet to a new replica.
    for (std::uint32_t slot : balancer_->eligible()) ports_.prepare(balancer_->current(slot));
  }
}

} // namespace xdpfwd::ingress::balance
