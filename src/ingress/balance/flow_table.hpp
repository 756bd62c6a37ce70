// The bounded flow table: which replica (and NAT port) each flow uses, found from either
// direction. Sized once at construction; the packet path never allocates.
//
// Layout: a slab of `capacity` entries, and one open-addressing index (linear probing,
// backward-shift deletion, no tombstones) holding two keys per flow: the client's 5-tuple
// and the reply's 5-tuple as it arrives from the replica over the overlay. Index slots are
// 8 bytes {32-bit hash, entry ref}, so a probe reads the entry only when the hashes match;
// the index has 4-8 slots per flow (load <= 50 %).
//
// Expiry: each entry sits on the list of its timeout class (TCP opening / established /
// closing, UDP, ICMP, other), ordered by last packet. A class has one timeout, so the head
// of each list is the next to expire in it: the sweep does work only for entries that
// expire, plus one look per class. A packet moves its entry to the back of the list at most
// once per `requeue_interval` (relinking touches two more entries: three cache misses per
// packet otherwise); the order is thus exact to within that interval, which is as late as
// the sweep may find an expired flow (find() always checks the exact deadline). When the table is full, the entry closest to its
// deadline goes (LRU within a class; across classes a SYN flood's half-open flows go before
// idle established ones).
#pragma once

#include "balancer.hpp"
#include "flow_key.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace xdpfwd::ingress::balance {

// Monotonic time since any fixed origin; the caller passes it in (tests use a fake clock).
using Timestamp = std::chrono::nanoseconds;

namespace tcp_flag {
inline constexpr std::uint8_t kFin = 0x01;
inline constexpr std::uint8_t kSyn = 0x02;
inline constexpr std::uint8_t kRst = 0x04;
inline constexpr std::uint8_t kAck = 0x10;
} // namespace tcp_flag

// TCP: every new flow starts Opening (so a flood of SYNs or stray ACKs lives only
// tcp_opening), becomes Established on the first packet from the replica, Closing on a FIN
// or RST from either side, and Opening again on a new SYN from the client (5-tuple reuse).
// Other protocols are always Active.
enum class FlowState : std::uint8_t { Opening, Established, Closing, Active };

enum class Direction : std::uint8_t { Original, Reply };

struct FlowTimeouts {
  std::chrono::nanoseconds tcp_opening = std::chrono::seconds(10);
  std::chrono::nanoseconds tcp_established = std::chrono::seconds(300);
  std::chrono::nanoseconds tcp_closing = std::chrono::seconds(10);
  std::chrono::nanoseconds udp = std::chrono::seconds(30);
  std::chrono::nanoseconds icmp = std::chrono::seconds(10);
  std::chrono::nanoseconds other = std::chrono::seconds(30);
};

// 128 bytes, cache-line aligned: what a client packet needs (key, times, replica, port,
// state) is in the first line, the reply key and the table's bookkeeping in the second.
struct alignas(64) FlowEntry {
  FlowKey forward;  // client -> service, as received
  Timestamp last_seen{};
  ReplicaRef replica;
  std::uint16_t nat_port = 0; // 0: none (client_ip preserve)
  FlowState state = FlowState::Active;
  std::uint8_t timeout_class = 0; // bookkeeping of the table from here on; read-only outside
  std::uint32_t forward_hash = 0; // low 32 bits of hash(forward)

  FlowKey reverse;  // replica -> ingress, as the reply arrives (after the replica's rewrite)
  Timestamp queued_at{}; // when last moved to the back of its class list
  std::uint32_t reverse_hash = 0;
  std::uint32_t prev = 0; // class list links (entry indices)
  std::uint32_t next = 0;
};
static_assert(sizeof(FlowEntry) == 128);

enum class RemoveReason : std::uint8_t { Expired, Evicted, Erased };

class FlowTable {
public:
  struct Options {
    std::uint32_t capacity = 262144;
    FlowTimeouts timeouts{};
    std::chrono::nanoseconds requeue_interval = std::chrono::seconds(1);
  };
  // Told about every flow that leaves the table, before its entry is reused: returns its
  // NAT port, closes it for least_conn.
  using RemoveHook = std::function<void(const FlowEntry&, RemoveReason)>;

  // Allocates everything up front. Throws std::invalid_argument for capacity 0 or > 2^30.
  explicit FlowTable(Options options);
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  void on_remove(RemoveHook hook) { hook_ = std::move(hook); }

  // The flow a client packet belongs to, or nullptr. An entry past its deadline is removed
  // here (Expired) rather than returned, whether or not the sweep has reached it yet.
  FlowEntry* find(const FlowKey& forward, std::uint64_t hash, Timestamp now);
  // The same from a reply packet's key.
  FlowEntry* find_reply(const FlowKey& reverse, std::uint64_t hash, Timestamp now);

  // A new flow, as seen in its first client packet (tcp_flags: that packet's, 0 if not TCP).
  // Evicts one flow when full. nullptr when a key is already in the table (a reply key
  // clash: two flows whose replies the ingress could not tell apart).
  FlowEntry* insert(const FlowKey& forward, std::uint64_t forward_hash, const FlowKey& reverse,
                    std::uint64_t reverse_hash, ReplicaRef replica, std::uint16_t nat_port,
                    std::uint8_t tcp_flags, Timestamp now);

  // A packet of the flow: refresh, advance the TCP state.
  void touch(FlowEntry& entry, Direction direction, std::uint8_t tcp_flags, Timestamp now) noexcept;

  // Moves the flow to another replica: its reply key changes with it. false on a reply key
  // clash (the flow is left unchanged).
  bool rebind(FlowEntry& entry, const FlowKey& reverse, std::uint64_t reverse_hash,
              ReplicaRef replica, std::uint16_t nat_port) noexcept;

  void erase(FlowEntry& entry);

  // Removes the flow nearest its deadline among those `matches` accepts, looking at no more
  // than `looks` entries from the head of each class list (oldest first): frees a resource
  // held per flow, such as a replica's NAT port, when a flood has taken them all. Returns the
  // removed flow's replica; nullopt when none was found within the looks.
  template <typename Predicate>
  std::optional<ReplicaRef> evict_oldest_if(Predicate&& matches, Timestamp now, std::uint32_t looks) {
    std::uint32_t victim = kNil;
    for (std::uint32_t c = 0; c < kClasses; ++c) {
      std::uint32_t looked = 0, i = heads_[c];
      while (i != kNil && looked < looks && !matches(entries_[i])) {
        i = entries_[i].next;
        ++looked;
      }
      if (i == kNil || looked == looks) continue;
      if (victim == kNil || deadline(entries_[i]) < deadline(entries_[victim])) victim = i;
    }
    if (victim == kNil) return std::nullopt;
    const ReplicaRef replica = entries_[victim].replica;
    remove(victim, deadline(entries_[victim]) <= now ? RemoveReason::Expired : RemoveReason::Evicted);
    return replica;
  }

  // Removes expired flows, at most `budget` of them: call it regularly (e.g. every poll
  // loop) with a small budget so that no single call stalls the packet path.
  std::size_t expire(Timestamp now, std::size_t budget);

  // When the flow expires if no packet comes.
  Timestamp deadline(const FlowEntry& entry) const noexcept {
    return entry.last_seen + timeouts_[entry.timeout_class];
  }

  std::uint32_t size() const noexcept { return size_; }
  std::uint32_t capacity() const noexcept { return capacity_; }
  std::uint64_t evictions() const noexcept { return evictions_; }
  std::uint64_t expirations() const noexcept { return expirations_; }

  // Every flow, for status and tests (not for the packet path).
  template <typename F> void for_each(F&& f) const {
    for (std::uint32_t c = 0; c < kClasses; ++c) {
      for (std::uint32_t i = heads_[c]; i != kNil; i = entries_[i].next) f(entries_[i]);
    }
  }

private:
  static constexpr std::uint32_t kNil = 0xffffffffU;
  static constexpr std::uint32_t kClasses = 6;
  struct IndexSlot {
    std::uint32_t hash = 0;
    std::uint32_t ref = kNil; // entry index * 2 + (1 for the reverse key)
  };

  std::uint32_t index_of(const FlowEntry& entry) const noexcept {
    return static_cast<std::uint32_t>(&entry - entries_.data());
  }
  static std::uint8_t class_of(IpProto proto, FlowState state) noexcept;
  std::uint32_t probe(const FlowKey& key, std::uint32_t hash, std::uint32_t which) const noexcept;
  bool contains(const FlowKey& key, std::uint32_t hash) const noexcept;
  void index_insert(std::uint32_t hash, std::uint32_t ref) noexcept;
  void index_erase(std::uint32_t hash, std::uint32_t ref) noexcept;
  void list_push_back(std::uint32_t i) noexcept;
  void list_unlink(std::uint32_t i) noexcept;
  void remove(std::uint32_t i, RemoveReason reason);
  FlowEntry* live(std::uint32_t i, Timestamp now);

  std::uint32_t capacity_;
  std::array<std::chrono::nanoseconds, kClasses> timeouts_;
  std::chrono::nanoseconds requeue_interval_;
  std::vector<FlowEntry> entries_;
  std::vector<IndexSlot> index_;
  std::uint32_t mask_;
  std::uint32_t free_head_ = kNil; // free entries chained through `next`
  std::array<std::uint32_t, kClasses> heads_;
  std::array<std::uint32_t, kClasses> tails_;
  std::uint32_t size_ = 0;
  std::uint64_t evictions_ = 0;
  std::uint64_t expirations_ = 0;
  RemoveHook hook_;
};

} // namespace xdpfwd::ingress::balance
