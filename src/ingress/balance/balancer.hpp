// Replica choice for new flows. A Balancer owns the service's replica set in stable slots
// (a slot keeps its index while other replicas come and go) and implements one
// load-balancing rule; the flow table remembers the choice per flow.
//
// Replica states and what they mean for flows:
//   active  (healthy, weight > 0)  new flows and established flows
//   drained (healthy, weight 0)    established flows only
//   down    (health check failed)  none: its flows are moved on their next packet
//   removed                        none: its flows are moved on their next packet
#pragma once

#include "flow_key.hpp"
#include "maglev.hpp"

#include <xdpfwd/config.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace xdpfwd::ingress::balance {

// A replica as a flow remembers it. The generation changes when the replica leaves its slot,
// so a flow never follows a slot to a different replica.
struct ReplicaRef {
  std::uint32_t slot = 0;
  std::uint32_t generation = 0;
  friend bool operator==(const ReplicaRef&, const ReplicaRef&) = default;
};

// The stable 64-bit id of a replica address: seeds its Maglev permutation, so that every
// ingress and every restart builds the same table from the same addresses.
std::uint64_t replica_id(const config::IpAddress& address);
// The address in flow-key form (IPv4 v4-mapped).
Address to_address(const config::IpAddress& address);

class Balancer {
public:
  // Throws std::invalid_argument for a bad Maglev table size (start-up boundary).
  static std::unique_ptr<Balancer> create(config::LbRule rule,
                                          std::uint32_t maglev_table_size = Maglev::kDefaultTableSize);

  Balancer() = default;
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;
  virtual ~Balancer() = default;

  // --- Packet path: no allocation. ---

  // The replica for a new flow, or nullopt when no replica is active. hash is
  // balance::hash(key); Maglev uses it, the other rules ignore key and hash.
  virtual std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept = 0;

  // Whether an established flow may stay on its replica (present, not down; drained is fine).
  bool keeps_flows(ReplicaRef r) const noexcept {
    return r.slot < slots_.size() && slots_[r.slot].present &&
           slots_[r.slot].generation == r.generation && slots_[r.slot].healthy;
  }

  // Active-flow accounting (least_conn reads it; all rules keep it for status). Calls for a
  // replica that has since left are ignored.
  void flow_opened(ReplicaRef r) noexcept {
    if (is_current(r)) ++slots_[r.slot].active_flows;
  }
  void flow_closed(ReplicaRef r) noexcept {
    if (is_current(r) && slots_[r.slot].active_flows > 0) --slots_[r.slot].active_flows;
  }

  // --- Control path: may allocate; each call rebuilds the rule's state once. ---

  ReplicaRef add(std::uint64_t id, std::uint32_t weight = 1, bool healthy = true);
  ReplicaRef add(const config::IpAddress& address, std::uint32_t weight = 1, bool healthy = true);
  bool remove(ReplicaRef r);
  bool set_weight(ReplicaRef r, std::uint32_t weight);
  bool set_healthy(ReplicaRef r, bool healthy);
  // Makes the set equal to a config's replica list, matched by address: new addresses are
  // added, missing ones removed, weights updated; health of kept replicas is kept.
  void sync(std::span<const config::Replica> replicas);

  // --- Introspection. ---

  std::optional<ReplicaRef> find(const config::IpAddress& address) const;
  bool is_current(ReplicaRef r) const noexcept {
    return r.slot < slots_.size() && slots_[r.slot].present &&
           slots_[r.slot].generation == r.generation;
  }
  // The ref of the replica now in a slot (slot < slot_count()).
  ReplicaRef current(std::uint32_t slot) const noexcept { return ref(slot); }
  std::uint32_t slot_count() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }
  std::uint32_t replica_count() const noexcept { return present_; }
  // Only for current refs.
  std::uint64_t id(ReplicaRef r) const { return slots_[r.slot].id; }
  std::uint32_t weight(ReplicaRef r) const { return slots_[r.slot].weight; }
  bool healthy(ReplicaRef r) const { return slots_[r.slot].healthy; }
  std::uint64_t active_flows(ReplicaRef r) const { return slots_[r.slot].active_flows; }
  // Set for replicas added by address.
  const std::optional<config::IpAddress>& address(ReplicaRef r) const { return addresses_[r.slot]; }
  const Address& flow_address(ReplicaRef r) const { return flow_addresses_[r.slot]; }
  // Slots that take new flows, ascending.
  std::span<const std::uint32_t> eligible() const noexcept { return eligible_; }

protected:
  struct Slot {
    std::uint64_t id = 0;
    std::uint64_t active_flows = 0;
    std::uint32_t weight = 0;
    std::uint32_t generation = 0;
    bool present = false;
    bool healthy = false;
  };

  ReplicaRef ref(std::uint32_t slot) const noexcept { return {slot, slots_[slot].generation}; }
  // Called after every change of the set, with eligible_ already recomputed.
  virtual void rebuild() = 0;

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> eligible_;

private:
  ReplicaRef add_slot(std::uint64_t id, std::uint32_t weight, bool healthy,
                      const std::optional<config::IpAddress>& address);
  void remove_slot(std::uint32_t slot);
  void changed();

  std::vector<std::optional<config::IpAddress>> addresses_;
  std::vector<Address> flow_addresses_;
  std::vector<std::uint32_t> free_slots_;
  std::uint32_t present_ = 0;
};

// Maglev consistent hash over the active replicas (weights honoured): the default rule. A
// flow that outlives its flow-table entry (ingress restart, eviction) comes back to the same
// replica as long as the set is unchanged.
class MaglevBalancer final : public Balancer {
public:
  explicit MaglevBalancer(std::uint32_t table_size = Maglev::kDefaultTableSize);
  std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept override;
  const Maglev& table() const noexcept { return maglev_; }

private:
  void rebuild() override;
  Maglev maglev_;
  std::vector<Maglev::Backend> backends_;
};

// Each active replica in turn, weights other than 0 ignored.
class RoundRobinBalancer final : public Balancer {
public:
  std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept override;

private:
  void rebuild() override {}
  std::uint64_t next_ = 0;
};

// Smooth weighted round robin (nginx): weights {5,1,1} give a a b a c a a, interleaved
// rather than bursty. O(active replicas) per new flow.
class WeightedBalancer final : public Balancer {
public:
  std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept override;

private:
  void rebuild() override;
  std::vector<std::int64_t> current_; // parallel to eligible_
};

// Fewest active flows relative to weight (active_a / weight_a < active_b / weight_b); ties go
// round robin so that an idle service spreads its first flows. O(active replicas) per new flow.
class LeastConnBalancer final : public Balancer {
public:
  std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept override;

private:
  void rebuild() override {}
  std::uint64_t start_ = 0;
};

} // namespace xdpfwd::ingress::balance
