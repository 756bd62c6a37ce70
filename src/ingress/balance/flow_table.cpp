#include "flow_table.hpp"

#include <bit>
#include <stdexcept>

namespace xdpfwd::ingress::balance {

namespace {

enum Class : std::uint8_t { kTcpOpening, kTcpEstablished, kTcpClosing, kUdp, kIcmp, kOther };

constexpr std::uint32_t kForward = 0;
constexpr std::uint32_t kReverse = 1;

std::uint32_t low32(std::uint64_t hash) { return static_cast<std::uint32_t>(hash); }

} // namespace

FlowTable::FlowTable(Options options)
    : capacity_(options.capacity),
      timeouts_{options.timeouts.tcp_opening, options.timeouts.tcp_established,
                options.timeouts.tcp_closing, options.timeouts.udp,
                options.timeouts.icmp, options.timeouts.other},
      requeue_interval_(options.requeue_interval) {
  if (capacity_ == 0 || capacity_ > (1U << 30)) {
    throw std::invalid_argument("flow table capacity must be 1 .. 2^30");
  }
  entries_.resize(capacity_);
  // Two keys per flow at <= 50 % load; a power of two so that the home slot is a mask.
  const std::uint64_t slots = std::bit_ceil(std::uint64_t{capacity_} * 4);
  index_.resize(slots);
  mask_ = static_cast<std::uint32_t>(slots - 1);
  for (std::uint32_t i = 0; i < capacity_; ++i) entries_[i].next = i + 1 < capacity_ ? i + 1 : kNil;
  free_head_ = 0;
  heads_.fill(kNil);
  tails_.fill(kNil);
}

std::uint8_t FlowTable::class_of(IpProto proto, FlowState state) noexcept {
  switch (proto) {
  case IpProto::Tcp:
    switch (state) {
    case FlowState::Established: return kTcpEstablished;
    case FlowState::Closing: return kTcpClosing;
    default: return kTcpOpening;
    }
  case IpProto::Udp: return kUdp;
  case IpProto::Icmp:
  case IpProto::Icmpv6: return kIcmp;
  }
  return kOther;
}

// ---------------------------------------------------------------- index

std::uint32_t FlowTable::probe(const FlowKey& key, std::uint32_t hash,
                               std::uint32_t which) const noexcept {
  for (std::uint32_t s = hash & mask_;; s = (s + 1) & mask_) {
    const IndexSlot& slot = index_[s];
    if (slot.ref == kNil) return kNil;
    if (slot.hash == hash && (slot.ref & 1) == which) {
      const FlowEntry& e = entries_[slot.ref >> 1];
      if ((which == kForward ? e.forward : e.reverse) == key) return slot.ref >> 1;
    }
  }
}

void FlowTable::index_insert(std::uint32_t hash, std::uint32_t ref) noexcept {
  std::uint32_t s = hash & mask_;
  while (index_[s].ref != kNil) s = (s + 1) & mask_;
  index_[s] = {hash, ref};
}

void FlowTable::index_erase(std::uint32_t hash, std::uint32_t ref) noexcept {
  std::uint32_t hole = hash & mask_;
  while (index_[hole].ref != ref) hole = (hole + 1) & mask_;
  // Backward-shift deletion: pull later members of the probe run into the hole when their
  // home slot does not lie cyclically in (hole, s], so every key stays reachable from home.
  for (std::uint32_t s = (hole + 1) & mask_; index_[s].ref != kNil; s = (s + 1) & mask_) {
    const std::uint32_t home = index_[s].hash & mask_;
    const bool stays = hole <= s ? (hole < home && home <= s) : (hole < home || home <= s);
    if (stays) continue;
    index_[hole] = index_[s];
    hole = s;
  }
  index_[hole] = IndexSlot{};
}

// ---------------------------------------------------------------- class lists

void FlowTable::list_push_back(std::uint32_t i) noexcept {
  FlowEntry& e = entries_[i];
  const std::uint8_t c = e.timeout_class;
  e.prev = tails_[c];
  e.next = kNil;
  if (tails_[c] != kNil) {
    entries_[tails_[c]].next = i;
  } else {
    heads_[c] = i;
  }
  tails_[c] = i;
}

void FlowTable::list_unlink(std::uint32_t i) noexcept {
  FlowEntry& e = entries_[i];
  const std::uint8_t c = e.timeout_class;
  if (e.prev != kNil) {
    entries_[e.prev].next = e.next;
  } else {
    heads_[c] = e.next;
  }
  if (e.next != kNil) {
    entries_[e.next].prev = e.prev;
  } else {
    tails_[c] = e.prev;
  }
}

// ---------------------------------------------------------------- flows

void FlowTable::remove(std::uint32_t i, RemoveReason reason) {
  FlowEntry& e = entries_[i];
  if (hook_) hook_(e, reason);
  index_erase(e.forward_hash, i * 2 + kForward);
  index_erase(e.reverse_hash, i * 2 + kReverse);
  list_unlink(i);
  e.next = free_head_;
  free_head_ = i;
  --size_;
  if (reason == RemoveReason::Expired) ++expirations_;
  if (reason == RemoveReason::Evicted) ++evictions_;
}

FlowEntry* FlowTable::live(std::uint32_t i, Timestamp now) {
  if (i == kNil) return nullptr;
  if (deadline(entries_[i]) <= now) {
    remove(i, RemoveReason::Expired);
    return nullptr;
  }
  return &entries_[i];
}

FlowEntry* FlowTable::find(const FlowKey& forward, std::uint64_t hash, Timestamp now) {
  return live(probe(forward, low32(hash), kForward), now);
}

FlowEntry* FlowTable::find_reply(const FlowKey& reverse, std::uint64_t hash, Timestamp now) {
  return live(probe(reverse, low32(hash), kReverse), now);
}

FlowEntry* FlowTable::insert(const FlowKey& forward, std::uint64_t forward_hash,
                             const FlowKey& reverse, std::uint64_t reverse_hash,
                             ReplicaRef replica, std::uint16_t nat_port, std::uint8_t tcp_flags,
                             Timestamp now) {
  if (probe(forward, low32(forward_hash), kForward) != kNil ||
      probe(reverse, low32(reverse_hash), kReverse) != kNil) {
    return nullptr;
  }
  // Full: the entry nearest its deadline goes; the class heads are the candidates.
  if (free_head_ == kNil) evict_oldest_if([](const FlowEntry&) { return true; }, now, 1);
  const std::uint32_t i = free_head_;
  FlowEntry& e = entries_[i];
  free_head_ = e.next;

  e.forward = forward;
  e.reverse = reverse;
  e.last_seen = now;
  e.queued_at = now;
  e.replica = replica;
  e.nat_port = nat_port;
  if (forward.proto != IpProto::Tcp) {
    e.state = FlowState::Active;
  } else if ((tcp_flags & tcp_flag::kRst) != 0) {
    e.state = FlowState::Closing;
  } else {
    e.state = FlowState::Opening; // SYN or mid-stream: established once the replica answers
  }
  e.timeout_class = class_of(forward.proto, e.state);
  e.forward_hash = low32(forward_hash);
  e.reverse_hash = low32(reverse_hash);
  index_insert(e.forward_hash, i * 2 + kForward);
  index_insert(e.reverse_hash, i * 2 + kReverse);
  list_push_back(i);
  ++size_;
  return &e;
}

void FlowTable::touch(FlowEntry& e, Direction direction, std::uint8_t tcp_flags,
                      Timestamp now) noexcept {
  if (e.forward.proto == IpProto::Tcp) {
    if ((tcp_flags & (tcp_flag::kRst | tcp_flag::kFin)) != 0) {
      e.state = FlowState::Closing;
    } else if (direction == Direction::Original && e.state == FlowState::Closing &&
               (tcp_flags & (tcp_flag::kSyn | tcp_flag::kAck)) == tcp_flag::kSyn) {
      e.state = FlowState::Opening; // the client reuses the 5-tuple for a new connection
    } else if (direction == Direction::Reply && e.state == FlowState::Opening) {
      e.state = FlowState::Established;
    }
  }
  e.last_seen = now;
  const std::uint8_t cls = class_of(e.forward.proto, e.state);
  if (cls == e.timeout_class && now - e.queued_at < requeue_interval_) return;
  // To the back of its class list (the new class if the state changed).
  const std::uint32_t i = index_of(e);
  list_unlink(i);
  e.timeout_class = cls;
  e.queued_at = now;
  list_push_back(i);
}

bool FlowTable::rebind(FlowEntry& e, const FlowKey& reverse, std::uint64_t reverse_hash,
                       ReplicaRef replica, std::uint16_t nat_port) noexcept {
  const std::uint32_t i = index_of(e);
  const std::uint32_t h = low32(reverse_hash);
  const std::uint32_t existing = probe(reverse, h, kReverse);
  if (existing != kNil && existing != i) return false;
  index_erase(e.reverse_hash, i * 2 + kReverse);
  e.reverse = reverse;
  e.reverse_hash = h;
  e.replica = replica;
  e.nat_port = nat_port;
  index_insert(h, i * 2 + kReverse);
  return true;
}

void FlowTable::erase(FlowEntry& entry) { remove(index_of(entry), RemoveReason::Erased); }

std::size_t FlowTable::expire(Timestamp now, std::size_t budget) {
  std::size_t removed = 0;
  for (std::uint32_t c = 0; c < kClasses && removed < budget; ++c) {
    while (removed < budget && heads_[c] != kNil && deadline(entries_[heads_[c]]) <= now) {
      remove(heads_[c], RemoveReason::Expired);
      ++removed;
    }
  }
  return removed;
}

} // namespace xdpfwd::ingress::balance
