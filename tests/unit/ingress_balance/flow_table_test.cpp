#include "flow_table.hpp"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

namespace xdpfwd::ingress::balance {
namespace {

using std::chrono::seconds;
using namespace std::chrono_literals;

const Address kService = v4_mapped(0xC612000A); // 198.18.0.10
const Address kOverlay = v4_mapped(0x0AC90001); // 10.201.0.1
const Address kReplica = v4_mapped(0x0AC9000B); // 10.201.0.11

FlowKey client_key(std::uint32_t client, std::uint16_t sport, IpProto proto = IpProto::Tcp) {
  return FlowKey{.src = v4_mapped(client), .dst = kService, .src_port = sport, .dst_port = 443,
                 .proto = proto};
}
// The reply as NAT'ed: replica -> overlay address, nat port.
FlowKey reply_key(const FlowKey& k, std::uint16_t nat_port) {
  return FlowKey{.src = kReplica, .dst = kOverlay, .src_port = k.dst_port, .dst_port = nat_port,
                 .proto = k.proto};
}

// A fake clock: tests move time explicitly.
struct Clock {
  Timestamp now = seconds(1000);
  void advance(std::chrono::nanoseconds d) { now += d; }
};

struct FlowTableTest : ::testing::Test {
  FlowTable table{FlowTable::Options{.capacity = 1024, .timeouts = {}}};
  Clock clock;
  std::vector<std::pair<FlowKey, RemoveReason>> removed;

  FlowTableTest() {
    table.on_remove([this](const FlowEntry& e, RemoveReason r) { removed.emplace_back(e.forward, r); });
  }

  FlowEntry* add(const FlowKey& k, std::uint16_t nat_port, std::uint8_t flags = tcp_flag::kSyn,
                 ReplicaRef replica = {}) {
    const FlowKey r = reply_key(k, nat_port);
    return table.insert(k, hash(k), r, hash(r), replica, nat_port, flags, clock.now);
  }
  FlowEntry* find(const FlowKey& k) { return table.find(k, hash(k), clock.now); }
  FlowEntry* find_reply(const FlowKey& r) { return table.find_reply(r, hash(r), clock.now); }
};

TEST_F(FlowTableTest, InsertFindAndReverseLookupGiveTheSameEntry) {
  const FlowKey k = client_key(0xC6120101, 40000);
  FlowEntry* e = add(k, 20001, tcp_flag::kSyn, ReplicaRef{3, 7});
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(table.size(), 1U);
  EXPECT_EQ(find(k), e);
  EXPECT_EQ(find_reply(reply_key(k, 20001)), e);
  EXPECT_EQ(e->replica, (ReplicaRef{3, 7}));
  EXPECT_EQ(e->nat_port, 20001);
  EXPECT_EQ(e->state, FlowState::Opening);
  // Keys of one direction are not found in the other.
  EXPECT_EQ(find_reply(k), nullptr);
  EXPECT_EQ(find(reply_key(k, 20001)), nullptr);
  EXPECT_EQ(find(client_key(0xC6120101, 40001)), nullptr);
  EXPECT_EQ(find_reply(reply_key(k, 20002)), nullptr);
}

TEST_F(FlowTableTest, DuplicateKeysAreRefused) {
  const FlowKey k = client_key(0xC6120101, 40000);
  ASSERT_NE(add(k, 20001), nullptr);
  EXPECT_EQ(add(k, 20002), nullptr); // same client key
  EXPECT_EQ(add(client_key(0xC6120102, 40000), 20001), nullptr); // same reply key
  EXPECT_EQ(table.size(), 1U);
}

TEST_F(FlowTableTest, EraseRemovesBothKeysAndReportsIt) {
  const FlowKey k = client_key(0xC6120101, 40000);
  table.erase(*add(k, 20001));
  EXPECT_EQ(find(k), nullptr);
  EXPECT_EQ(find_reply(reply_key(k, 20001)), nullptr);
  EXPECT_EQ(table.size(), 0U);
  ASSERT_EQ(removed.size(), 1U);
  EXPECT_EQ(removed[0].second, RemoveReason::Erased);
}

// Across classes the match nearest its deadline goes; within the looks only.
TEST_F(FlowTableTest, EvictOldestIfTakesTheMatchNearestItsDeadline) {
  const ReplicaRef a{1, 1}, b{2, 1};
  add(client_key(0xC6120101, 1, IpProto::Udp), 20001, 0, b); // oldest, but of replica b
  clock.advance(1s);
  add(client_key(0xC6120101, 2, IpProto::Udp), 20002, 0, a); // UDP: expires in 30 s
  add(client_key(0xC6120101, 3), 20003, tcp_flag::kSyn, a);   // TCP opening: in 10 s, sooner
  const auto of_a = [&](const FlowEntry& e) { return e.replica == a; };

  EXPECT_FALSE(table.evict_oldest_if(of_a, clock.now, 0)); // no looks, no victim
  EXPECT_EQ(table.evict_oldest_if(of_a, clock.now, 8), a);
  ASSERT_EQ(removed.size(), 1U);
  EXPECT_EQ(removed[0].first, client_key(0xC6120101, 3));
  EXPECT_EQ(removed[0].second, RemoveReason::Evicted);
  EXPECT_EQ(table.evictions(), 1U);
  // The UDP match sits behind b's flow: one look does not reach it, two do.
  EXPECT_FALSE(table.evict_oldest_if(of_a, clock.now, 1));
  EXPECT_EQ(table.evict_oldest_if(of_a, clock.now, 2), a);
  EXPECT_EQ(removed.back().first, client_key(0xC6120101, 2, IpProto::Udp));
  EXPECT_FALSE(table.evict_oldest_if(of_a, clock.now, 8));
  EXPECT_EQ(table.size(), 1U);
}

TEST_F(FlowTableTest, TcpBecomesEstablishedWhenTheReplicaAnswers) {
  const FlowKey k = client_key(0xC6120101, 40000);
  FlowEntry* e = add(k, 20001, tcp_flag::kSyn);
  // Half-open: gone after tcp_opening (10 s).
  table.touch(*e, Direction::Original, tcp_flag::kSyn, clock.now);
  EXPECT_EQ(e->state, FlowState::Opening);
  table.touch(*e, Direction::Reply, tcp_flag::kSyn | tcp_flag::kAck, clock.now);
  EXPECT_EQ(e->state, FlowState::Established);
  clock.advance(299s);
  EXPECT_EQ(find(k), e); // established: 300 s
  table.touch(*e, Direction::Original, tcp_flag::kAck, clock.now);
  clock.advance(299s);
  EXPECT_EQ(find(k), e);
  clock.advance(1s);
  EXPECT_EQ(find(k), nullptr);
  EXPECT_EQ(table.expirations(), 1U);
}

TEST_F(FlowTableTest, HalfOpenTcpExpiresAfterTheShortTimeout) {
  const FlowKey k = client_key(0xC6120101, 40000);
  add(k, 20001, tcp_flag::kSyn);
  clock.advance(9s);
  EXPECT_NE(find(k), nullptr);
  clock.advance(1s);
  EXPECT_EQ(find(k), nullptr);
}

TEST_F(FlowTableTest, FinOrRstShortensTheTimeout) {
  for (int flag : {tcp_flag::kFin | tcp_flag::kAck, int{tcp_flag::kRst}}) {
    for (Direction dir : {Direction::Original, Direction::Reply}) {
      const FlowKey k = client_key(0xC6120101, static_cast<std::uint16_t>(40000 + flag + 100 * static_cast<int>(dir)));
      FlowEntry* e = add(k, static_cast<std::uint16_t>(k.src_port - 10000));
      table.touch(*e, Direction::Reply, tcp_flag::kSyn | tcp_flag::kAck, clock.now);
      ASSERT_EQ(e->state, FlowState::Established);
      table.touch(*e, dir, static_cast<std::uint8_t>(flag), clock.now);
      EXPECT_EQ(e->state, FlowState::Closing);
      EXPECT_EQ(table.deadline(*e), clock.now + 10s);
      // A new SYN from the client on the same 5-tuple opens it again.
      table.touch(*e, Direction::Original, tcp_flag::kSyn, clock.now);
      EXPECT_EQ(e->state, FlowState::Opening);
      table.touch(*e, dir, static_cast<std::uint8_t>(flag), clock.now);
      clock.advance(10s);
      EXPECT_EQ(find(k), nullptr);
    }
  }
}

TEST_F(FlowTableTest, RstOnTheFirstPacketStartsClosing) {
  FlowEntry* e = add(client_key(0xC6120101, 40000), 20001, tcp_flag::kRst);
  EXPECT_EQ(e->state, FlowState::Closing);
}

TEST_F(FlowTableTest, IdleTimeoutsPerProtocol) {
  const FlowKey udp = client_key(0xC6120101, 5353, IpProto::Udp);
  const FlowKey icmp = client_key(0xC6120101, 77, IpProto::Icmp);
  const FlowKey gre = client_key(0xC6120101, 0, static_cast<IpProto>(47));
  add(udp, 20001, 0);
  add(icmp, 20002, 0);
  add(gre, 20003, 0);
  EXPECT_EQ(find(udp)->state, FlowState::Active);
  clock.advance(9s);
  EXPECT_NE(find(icmp), nullptr);
  clock.advance(1s);
  EXPECT_EQ(find(icmp), nullptr); // icmp 10 s
  clock.advance(19s);
  EXPECT_NE(find(udp), nullptr);
  EXPECT_NE(find(gre), nullptr);
  clock.advance(1s);
  EXPECT_EQ(find(udp), nullptr); // udp 30 s
  EXPECT_EQ(find(gre), nullptr); // other 30 s
}

TEST(FlowTable, TimeoutsAreConfigurable) {
  FlowTable table({.capacity = 8, .timeouts = {.udp = 2s}});
  const FlowKey k = client_key(0xC6120101, 5353, IpProto::Udp);
  const FlowKey r = reply_key(k, 20001);
  FlowEntry* e = table.insert(k, hash(k), r, hash(r), {}, 20001, 0, 100s);
  EXPECT_EQ(table.deadline(*e), 102s);
  table.touch(*e, Direction::Reply, 0, 101s); // replies keep it alive too
  EXPECT_NE(table.find(k, hash(k), 102s), nullptr);
  EXPECT_EQ(table.find(k, hash(k), 103s), nullptr);
}

TEST_F(FlowTableTest, SweepRemovesExpiredFlowsWithBoundedWork) {
  for (std::uint16_t i = 0; i < 100; ++i) add(client_key(0xC6120101, 1000 + i, IpProto::Udp), 20000 + i, 0);
  clock.advance(20s);
  for (std::uint16_t i = 0; i < 10; ++i) add(client_key(0xC6120102, 1000 + i, IpProto::Udp), 30000 + i, 0);
  clock.advance(10s); // the first 100 are due, the last 10 are not
  EXPECT_EQ(table.expire(clock.now, 30), 30U);
  EXPECT_EQ(table.size(), 80U);
  EXPECT_EQ(table.expire(clock.now, 1000), 70U);
  EXPECT_EQ(table.size(), 10U);
  EXPECT_EQ(table.expire(clock.now, 1000), 0U);
  EXPECT_EQ(table.expirations(), 100U);
  EXPECT_EQ(removed.size(), 100U);
  for (const auto& [key, reason] : removed) {
    EXPECT_EQ(reason, RemoveReason::Expired);
    EXPECT_EQ(key.src, v4_mapped(0xC6120101));
  }
}

TEST(FlowTable, FullTableEvictsTheLeastRecentlySeen) {
  FlowTable table({.capacity = 4, .timeouts = {}});
  std::vector<FlowKey> evicted;
  table.on_remove([&](const FlowEntry& e, RemoveReason r) {
    EXPECT_EQ(r, RemoveReason::Evicted);
    evicted.push_back(e.forward);
  });
  std::vector<FlowKey> keys;
  Timestamp t = 100s;
  for (std::uint16_t i = 0; i < 4; ++i) {
    keys.push_back(client_key(0xC6120101, 1000 + i, IpProto::Udp));
    const FlowKey r = reply_key(keys.back(), 20000 + i);
    table.insert(keys.back(), hash(keys.back()), r, hash(r), {}, 20000 + i, 0, t += 1s);
  }
  // Seeing flow 0 again makes flow 1 the least recent.
  table.touch(*table.find(keys[0], hash(keys[0]), t), Direction::Original, 0, t += 1s);
  const FlowKey extra = client_key(0xC6120102, 1, IpProto::Udp);
  const FlowKey extra_r = reply_key(extra, 30000);
  ASSERT_NE(table.insert(extra, hash(extra), extra_r, hash(extra_r), {}, 30000, 0, t += 1s), nullptr);
  EXPECT_EQ(table.size(), 4U);
  EXPECT_EQ(table.evictions(), 1U);
  ASSERT_EQ(evicted.size(), 1U);
  EXPECT_EQ(evicted[0], keys[1]);
  EXPECT_EQ(table.find(keys[1], hash(keys[1]), t), nullptr);
  EXPECT_NE(table.find(keys[0], hash(keys[0]), t), nullptr);
}

// Across classes the flow nearest its deadline goes first: a SYN flood (10 s each) pushes
// out its own half-open flows, not an established flow idle for a minute (240 s left).
TEST(FlowTable, SynFloodEvictsHalfOpenFlowsBeforeEstablishedOnes) {
  FlowTable table({.capacity = 64, .timeouts = {}});
  const FlowKey est = client_key(0xC6120101, 40000);
  const FlowKey est_r = reply_key(est, 20000);
  FlowEntry* e = table.insert(est, hash(est), est_r, hash(est_r), {}, 20000, tcp_flag::kSyn, 0s);
  table.touch(*e, Direction::Reply, tcp_flag::kSyn | tcp_flag::kAck, 0s);
  std::mt19937 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const FlowKey k = client_key(rng(), static_cast<std::uint16_t>(rng()));
    const FlowKey r = reply_key(k, static_cast<std::uint16_t>(i));
    table.insert(k, hash(k), r, hash(r), {}, static_cast<std::uint16_t>(i), tcp_flag::kSyn,
                 60s + std::chrono::microseconds(i));
  }
  EXPECT_NE(table.find(est, hash(est), 61s), nullptr);
}

// A flood of random flows of every protocol, with lookups and sweeps in between: the size
// never exceeds the capacity, and whatever the table says it holds can be found both ways.
TEST(FlowTable, FloodOfRandomFlowsStaysWithinCapacity) {
  constexpr std::uint32_t kCapacity = 4096;
  FlowTable table({.capacity = kCapacity, .timeouts = {}});
  std::uint64_t removals = 0;
  table.on_remove([&](const FlowEntry&, RemoveReason) { ++removals; });
  std::mt19937_64 rng(42);
  Timestamp t = 0s;
  std::uint64_t inserted = 0;
  const IpProto protos[] = {IpProto::Tcp, IpProto::Udp, IpProto::Icmp};
  for (int i = 0; i < 200'000; ++i) {
    t += std::chrono::microseconds(rng() % 200);
    const FlowKey k = client_key(static_cast<std::uint32_t>(rng()), static_cast<std::uint16_t>(rng()),
                                 protos[rng() % 3]);
    FlowEntry* e = table.find(k, hash(k), t);
    if (e == nullptr) {
      // Replica addresses drawn at random too, so that reply keys rarely clash.
      const FlowKey r{.src = v4_mapped(static_cast<std::uint32_t>(rng())), .dst = kOverlay,
                      .src_port = k.dst_port, .dst_port = static_cast<std::uint16_t>(rng()),
                      .proto = k.proto};
      e = table.insert(k, hash(k), r, hash(r), {}, r.dst_port, tcp_flag::kSyn, t);
      if (e != nullptr) ++inserted;
    }
    if (e != nullptr && rng() % 2) table.touch(*e, Direction::Reply, tcp_flag::kAck, t);
    ASSERT_LE(table.size(), kCapacity);
    if (i % 1000 == 0) table.expire(t, 64);
  }
  EXPECT_EQ(table.size(), kCapacity);
  EXPECT_GT(table.evictions(), 0U);
  EXPECT_EQ(inserted - removals, table.size());
  EXPECT_EQ(table.evictions() + table.expirations(), removals);
  std::uint32_t seen = 0;
  table.for_each([&](const FlowEntry& e) {
    ++seen;
    EXPECT_EQ(table.find(e.forward, hash(e.forward), t), &e);
    EXPECT_EQ(table.find_reply(e.reverse, hash(e.reverse), t), &e);
  });
  EXPECT_EQ(seen, table.size());
}

// Index deletions (backward shift) must keep every other key reachable: churn a small table
// hard, comparing with a reference set.
TEST(FlowTable, ChurnKeepsTheIndexConsistent) {
  FlowTable table({.capacity = 256, .timeouts = {}});
  std::mt19937 rng(3);
  std::set<std::uint16_t> live;
  for (int i = 0; i < 50'000; ++i) {
    const std::uint16_t port = static_cast<std::uint16_t>(rng() % 512);
    const FlowKey k = client_key(0xC6120101, port, IpProto::Udp);
    if (FlowEntry* e = table.find(k, hash(k), 0s)) {
      ASSERT_TRUE(live.count(port));
      ASSERT_EQ(table.find_reply(e->reverse, hash(e->reverse), 0s), e);
      table.erase(*e);
      live.erase(port);
    } else {
      ASSERT_FALSE(live.count(port));
      if (live.size() == 256) continue;
      const FlowKey r = reply_key(k, port);
      ASSERT_NE(table.insert(k, hash(k), r, hash(r), {}, port, 0, 0s), nullptr);
      live.insert(port);
    }
  }
  EXPECT_EQ(table.size(), live.size());
}

TEST_F(FlowTableTest, RebindMovesTheReplyKey) {
  const FlowKey k = client_key(0xC6120101, 40000);
  FlowEntry* e = add(k, 20001, tcp_flag::kSyn, ReplicaRef{0, 0});
  const FlowKey other = add(client_key(0xC6120102, 40000), 20002)->reverse;
  FlowKey moved = reply_key(k, 20005);
  moved.src = v4_mapped(0x0AC9000C);
  EXPECT_FALSE(table.rebind(*e, other, hash(other), ReplicaRef{1, 0}, 20002)); // clash
  EXPECT_EQ(e->replica, (ReplicaRef{0, 0}));
  ASSERT_TRUE(table.rebind(*e, moved, hash(moved), ReplicaRef{1, 0}, 20005));
  EXPECT_EQ(find(k), e);
  EXPECT_EQ(find_reply(moved), e);
  EXPECT_EQ(find_reply(reply_key(k, 20001)), nullptr);
  EXPECT_EQ(e->replica, (ReplicaRef{1, 0}));
  EXPECT_EQ(e->nat_port, 20005);
}

TEST(FlowTable, RejectsBadCapacity) {
  EXPECT_THROW(FlowTable({.capacity = 0, .timeouts = {}}), std::invalid_argument);
}

} // namespace
} // namespace xdpfwd::ingress::balance
