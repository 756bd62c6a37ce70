#include "balancer.hpp"

#include <algorithm>
#include <cstring>

namespace xdpfwd::ingress::balance {

namespace {
constexpr std::uint64_t kReplicaIdSeed = 0x7265706c69636131ULL;
}

Address to_address(const config::IpAddress& address) {
  if (address.is_v4()) return v4_mapped(address.to_v4().to_uint());
  Address out;
  const auto bytes = address.to_v6().to_bytes();
  std::memcpy(out.data(), bytes.data(), out.size());
  return out;
}

std::uint64_t replica_id(const config::IpAddress& address) {
  const Address a = to_address(address);
  std::uint64_t w[2];
  std::memcpy(w, a.data(), sizeof w);
  return hash64(w[1] ^ hash64(w[0], kReplicaIdSeed), kReplicaIdSeed);
}

std::unique_ptr<Balancer> Balancer::create(config::LbRule rule, std::uint32_t maglev_table_size) {
  switch (rule) {
  case config::LbRule::Maglev: return std::make_unique<MaglevBalancer>(maglev_table_size);
  case config::LbRule::RoundRobin: return std::make_unique<RoundRobinBalancer>();
  case config::LbRule::Weighted: return std::make_unique<WeightedBalancer>();
  case config::LbRule::LeastConn: return std::make_unique<LeastConnBalancer>();
  }
  return std::make_unique<MaglevBalancer>(maglev_table_size);
}

// ---------------------------------------------------------------- replica set

ReplicaRef Balancer::add_slot(std::uint64_t id, std::uint32_t weight, bool healthy, Family family,
                              const std::optional<config::IpAddress>& address) {
  std::uint32_t slot;
  if (!free_slots_.empty()) {
    // Lowest free slot first: keeps the slot array dense and the result deterministic.
    auto lowest = std::min_element(free_slots_.begin(), free_slots_.end());
    slot = *lowest;
    free_slots_.erase(lowest);
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
    addresses_.emplace_back();
    flow_addresses_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.id = id;
  s.weight = weight;
  s.healthy = healthy;
  s.present = true;
  s.family = family;
  s.active_flows = 0;
  addresses_[slot] = address;
  flow_addresses_[slot] = address ? to_address(*address) : Address{};
  ++present_[index(family)];
  return ref(slot);
}

void Balancer::remove_slot(std::uint32_t slot) {
  Slot& s = slots_[slot];
  s.present = false;
  ++s.generation; // every ReplicaRef to the leaving replica goes stale now
  s.active_flows = 0;
  addresses_[slot].reset();
  free_slots_.push_back(slot);
  --present_[index(s.family)];
}

void Balancer::changed(std::array<bool, kFamilies> families) {
  eligible_.clear();
  for (auto& list : family_eligible_) list.clear();
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.present && s.healthy && s.weight > 0) {
      eligible_.push_back(i);
      family_eligible_[index(s.family)].push_back(i);
    }
  }
  for (std::size_t f = 0; f < kFamilies; ++f) {
    if (families[f]) rebuild(static_cast<Family>(f));
  }
}

ReplicaRef Balancer::add(std::uint64_t id, std::uint32_t weight, bool healthy, Family family) {
  const ReplicaRef r = add_slot(id, weight, healthy, family, std::nullopt);
  changed(family);
  return r;
}

ReplicaRef Balancer::add(const config::IpAddress& address, std::uint32_t weight, bool healthy) {
  const Family family = family_of(address);
  const ReplicaRef r = add_slot(replica_id(address), weight, healthy, family, address);
  changed(family);
  return r;
}

bool Balancer::remove(ReplicaRef r) {
  if (!is_current(r)) return false;
  const Family family = slots_[r.slot].family;
  remove_slot(r.slot);
  changed(family);
  return true;
}

bool Balancer::set_weight(ReplicaRef r, std::uint32_t weight) {
  if (!is_current(r)) return false;
  if (slots_[r.slot].weight != weight) {
    slots_[r.slot].weight = weight;
    changed(slots_[r.slot].family);
  }
  return true;
}

bool Balancer::set_healthy(ReplicaRef r, bool healthy) {
  if (!is_current(r)) return false;
  if (slots_[r.slot].healthy != healthy) {
    slots_[r.slot].healthy = healthy;
    changed(slots_[r.slot].family);
  }
  return true;
}

void Balancer::sync(std::span<const config::Replica> replicas) {
  std::array<bool, kFamilies> dirty{};
  std::vector<bool> wanted(slots_.size(), false);
  for (const config::Replica& replica : replicas) {
    if (auto existing = find(replica.address)) {
      Slot& s = slots_[existing->slot];
      if (s.weight != replica.weight) dirty[index(s.family)] = true;
      s.weight = replica.weight;
      wanted[existing->slot] = true;
    }
  }
  for (std::uint32_t i = 0; i < wanted.size(); ++i) {
    if (slots_[i].present && !wanted[i]) {
      dirty[index(slots_[i].family)] = true;
      remove_slot(i);
    }
  }
  for (const config::Replica& replica : replicas) {
    if (!find(replica.address)) {
      const Family family = family_of(replica.address);
      add_slot(replica_id(replica.address), replica.weight, true, family, replica.address);
      dirty[index(family)] = true;
    }
  }
  changed(dirty);
}

std::optional<ReplicaRef> Balancer::find(const config::IpAddress& address) const {
  for (std::uint32_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].present && addresses_[i] == address) return ref(i);
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- maglev

MaglevBalancer::MaglevBalancer(std::uint32_t table_size)
    : maglev_{Maglev(table_size), Maglev(table_size)} {}

void MaglevBalancer::rebuild(Family family) {
  // Every present replica of the family goes in, the ineligible ones with weight 0: they get
  // no entries, but they count for the automatic table size, which thus follows the
  // configured set and not health flaps.
  backends_.clear();
  for (std::uint32_t slot = 0; slot < slots_.size(); ++slot) {
    const Slot& s = slots_[slot];
    if (!s.present || s.family != family) continue;
    const bool active = s.healthy && s.weight > 0;
    backends_.push_back({.id = s.id, .weight = active ? s.weight : 0, .value = slot});
  }
  maglev_[index(family)].build(backends_);
}

std::optional<ReplicaRef> MaglevBalancer::choose(Family family, const FlowKey&,
                                                 std::uint64_t hash) noexcept {
  const std::uint32_t slot = maglev_[index(family)].lookup(hash);
  if (slot == Maglev::kNone) return std::nullopt;
  return ref(slot);
}

// ---------------------------------------------------------------- round robin

std::optional<ReplicaRef> RoundRobinBalancer::choose(Family family, const FlowKey&,
                                                     std::uint64_t) noexcept {
  const std::vector<std::uint32_t>& eligible = family_eligible_[index(family)];
  if (eligible.empty()) return std::nullopt;
  return ref(eligible[next_[index(family)]++ % eligible.size()]);
}

// ---------------------------------------------------------------- smooth weighted

void WeightedBalancer::rebuild(Family family) {
  // Like nginx on reconfiguration: the sequence starts over.
  current_[index(family)].assign(family_eligible_[index(family)].size(), 0);
}

std::optional<ReplicaRef> WeightedBalancer::choose(Family family, const FlowKey&,
                                                   std::uint64_t) noexcept {
  const std::vector<std::uint32_t>& eligible = family_eligible_[index(family)];
  std::vector<std::int64_t>& current = current_[index(family)];
  if (eligible.empty()) return std::nullopt;
  std::int64_t total = 0;
  std::size_t best = 0;
  for (std::size_t i = 0; i < eligible.size(); ++i) {
    const std::int64_t w = slots_[eligible[i]].weight;
    current[i] += w;
    total += w;
    if (current[i] > current[best]) best = i;
  }
  current[best] -= total;
  return ref(eligible[best]);
}

// ---------------------------------------------------------------- least connections

std::optional<ReplicaRef> LeastConnBalancer::choose(Family family, const FlowKey&,
                                                    std::uint64_t) noexcept {
  const std::vector<std::uint32_t>& eligible = family_eligible_[index(family)];
  const std::size_t n = eligible.size();
  if (n == 0) return std::nullopt;
  const std::size_t start = start_[index(family)]++ % n;
  std::uint32_t best = eligible[start];
  for (std::size_t k = 1; k < n; ++k) {
    const std::uint32_t slot = eligible[(start + k) % n];
    // active/weight < best_active/best_weight, cross-multiplied (128-bit: no overflow).
    const auto lhs = static_cast<unsigned __int128>(slots_[slot].active_flows) * slots_[best].weight;
    const auto rhs = static_cast<unsigned __int128>(slots_[best].active_flows) * slots_[slot].weight;
    if (lhs < rhs) best = slot;
  }
  return ref(best);
}

} // namespace xdpfwd::ingress::balance
