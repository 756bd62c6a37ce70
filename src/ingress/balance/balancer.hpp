// Replica choice for new flows. A Balancer owns the service's replica set in stable slots
// (a slot keeps its index while other replicas come and go) and implements one
// load-balancing rule; the flow table remembers the choice per flow.
//
// Families: a service's replicas may be IPv4 and IPv6 addresses mixed (a dual-stack replica
// host is listed once per family). All replicas share one slot space, so a slot (a
// ReplicaRef) names one replica whatever its family and per-replica state elsewhere (port
// pools, neighbour MACs) can be indexed by slot alone. The rule's state is kept per family
// (one Maglev table, one round-robin cursor, ... each), and pick(family, ...) chooses among
// that family's replicas only: a change in one family never affects the other's choices.
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

#include <array>
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

// The family of a config address.
inline Family family_of(const config::IpAddress& address) {
  return address.is_v4() ? Family::V4 : Family::V6;
}

class Balancer {
public:
  // maglev_table_size: Maglev::kAutoTableSize (sized by replica count per family) or a fixed
  // prime. Throws std::invalid_argument for a bad size (start-up boundary).
  static std::unique_ptr<Balancer> create(config::LbRule rule,
                                          std::uint32_t maglev_table_size = Maglev::kAutoTableSize);

  Balancer() = default;
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;
  virtual ~Balancer() = default;

  // --- Packet path: no allocation. ---

  // The replica of the given family for a new flow, or nullopt when no replica of that
  // family is active. hash is balance::hash(key); Maglev uses it, the other rules ignore key
  // and hash.
  std::optional<ReplicaRef> pick(Family family, const FlowKey& key, std::uint64_t hash) noexcept {
    return choose(family, key, hash);
  }
  // The same for the key's own family (family_of(key)).
  std::optional<ReplicaRef> pick(const FlowKey& key, std::uint64_t hash) noexcept {
    return choose(family_of(key), key, hash);
  }

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

  // --- Control path: may allocate; each call rebuilds the rule's state of the families it
  // changes, once. ---

  // A replica known by id only (tests, benchmarks): its family is given, its address unset.
  ReplicaRef add(std::uint64_t id, std::uint32_t weight = 1, bool healthy = true,
                 Family family = Family::V4);
  // The family is the address's.
  ReplicaRef add(const config::IpAddress& address, std::uint32_t weight = 1, bool healthy = true);
  bool remove(ReplicaRef r);
  bool set_weight(ReplicaRef r, std::uint32_t weight);
  bool set_healthy(ReplicaRef r, bool healthy);
  // Makes the set equal to a config's replica list, matched by address: new addresses are
  // added, missing ones removed, weights updated; health of kept replicas is kept. Only the
  // families whose set or weights changed are rebuilt.
  void sync(std::span<const config::Replica> replicas);

  // --- Introspection. Slots are shared by both families. ---

  std::optional<ReplicaRef> find(const config::IpAddress& address) const;
  bool is_current(ReplicaRef r) const noexcept {
    return r.slot < slots_.size() && slots_[r.slot].present &&
           slots_[r.slot].generation == r.generation;
  }
  // The ref of the replica now in a slot (slot < slot_count()).
  ReplicaRef current(std::uint32_t slot) const noexcept { return ref(slot); }
  // Every slot index is < slot_count(), whatever the family: size per-replica arrays by it.
  std::uint32_t slot_count() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }
  std::uint32_t replica_count() const noexcept { return present_[0] + present_[1]; }
  std::uint32_t replica_count(Family family) const noexcept {
    return present_[static_cast<std::size_t>(family)];
  }
  // Only for current refs.
  std::uint64_t id(ReplicaRef r) const { return slots_[r.slot].id; }
  Family family(ReplicaRef r) const { return slots_[r.slot].family; }
  std::uint32_t weight(ReplicaRef r) const { return slots_[r.slot].weight; }
  bool healthy(ReplicaRef r) const { return slots_[r.slot].healthy; }
  std::uint64_t active_flows(ReplicaRef r) const { return slots_[r.slot].active_flows; }
  // Set for replicas added by address.
  const std::optional<config::IpAddress>& address(ReplicaRef r) const { return addresses_[r.slot]; }
  const Address& flow_address(ReplicaRef r) const { return flow_addresses_[r.slot]; }
  // Slots that take new flows, ascending: of both families, or of one.
  std::span<const std::uint32_t> eligible() const noexcept { return eligible_; }
  std::span<const std::uint32_t> eligible(Family family) const noexcept {
    return family_eligible_[static_cast<std::size_t>(family)];
  }
  // f(ReplicaRef) for every present replica of both families, in slot order.
  template <typename F> void for_each_replica(F&& f) const {
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      if (slots_[i].present) f(ref(i));
    }
  }

protected:
  struct Slot {
    std::uint64_t id = 0;
    std::uint64_t active_flows = 0;
    std::uint32_t weight = 0;
    std::uint32_t generation = 0;
    bool present = false;
    bool healthy = false;
    Family family = Family::V4;
  };

  static std::size_t index(Family family) noexcept { return static_cast<std::size_t>(family); }
  ReplicaRef ref(std::uint32_t slot) const noexcept { return {slot, slots_[slot].generation}; }
  // The rule: a replica of `family` from family_eligible_[family], or nullopt.
  virtual std::optional<ReplicaRef> choose(Family family, const FlowKey& key,
                                           std::uint64_t hash) noexcept = 0;
  // Called after a change of the family's replicas, with the eligible lists recomputed.
  virtual void rebuild(Family family) = 0;

  std::vector<Slot> slots_;
  std::vector<std::uint32_t> eligible_;                              // both families
  std::array<std::vector<std::uint32_t>, kFamilies> family_eligible_; // per family

private:
  ReplicaRef add_slot(std::uint64_t id, std::uint32_t weight, bool healthy, Family family,
                      const std::optional<config::IpAddress>& address);
  void remove_slot(std::uint32_t slot);
  // Recomputes the eligible lists and rebuilds the families flagged in `families`.
  void changed(std::array<bool, kFamilies> families);
  void changed(Family family) {
    std::array<bool, kFamilies> f{};
    f[index(family)] = true;
    changed(f);
  }

  std::vector<std::optional<config::IpAddress>> addresses_;
  std::vector<Address> flow_addresses_;
  std::vector<std::uint32_t> free_slots_;
  std::array<std::uint32_t, kFamilies> present_{};
};

// Maglev consistent hash over the active replicas (weights honoured), one table per family:
// the default rule. A flow that outlives its flow-table entry (ingress restart, eviction)
// comes back to the same replica as long as its family's set is unchanged.
class MaglevBalancer final : public Balancer {
public:
  explicit MaglevBalancer(std::uint32_t table_size = Maglev::kAutoTableSize);
  const Maglev& table(Family family = Family::V4) const noexcept { return maglev_[index(family)]; }

private:
  std::optional<ReplicaRef> choose(Family family, const FlowKey& key,
                                   std::uint64_t hash) noexcept override;
  void rebuild(Family family) override;
  std::array<Maglev, kFamilies> maglev_;
  std::vector<Maglev::Backend> backends_; // scratch
};

// Each active replica of the family in turn, weights other than 0 ignored.
class RoundRobinBalancer final : public Balancer {
private:
  std::optional<ReplicaRef> choose(Family family, const FlowKey& key,
                                   std::uint64_t hash) noexcept override;
  void rebuild(Family) override {}
  std::array<std::uint64_t, kFamilies> next_{};
};

// Smooth weighted round robin (nginx): weights {5,1,1} give a a b a c a a, interleaved
// rather than bursty. O(active replicas of the family) per new flow.
class WeightedBalancer final : public Balancer {
private:
  std::optional<ReplicaRef> choose(Family family, const FlowKey& key,
                                   std::uint64_t hash) noexcept override;
  void rebuild(Family family) override;
  std::array<std::vector<std::int64_t>, kFamilies> current_; // parallel to family_eligible_
};

// Fewest active flows relative to weight (active_a / weight_a < active_b / weight_b) among
// the family's replicas; ties go round robin so that an idle service spreads its first
// flows. O(active replicas of the family) per new flow.
class LeastConnBalancer final : public Balancer {
private:
  std::optional<ReplicaRef> choose(Family family, const FlowKey& key,
                                   std::uint64_t hash) noexcept override;
  void rebuild(Family) override {}
  std::array<std::uint64_t, kFamilies> start_{};
};

} // namespace xdpfwd::ingress::balance
