#include "balancer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace xdpfwd::ingress::balance {
namespace {

config::IpAddress ip(const std::string& text) { return boost::asio::ip::make_address(text); }

// An IPv4 flow: pick(key, hash) chooses among the key's family, and replicas added by id
// alone are IPv4 unless told otherwise.
const FlowKey kKey{.src = v4_mapped(0xC6120105), .dst = v4_mapped(0xC612000A)};
const FlowKey kKey6{.src = to_address(ip("fd00:18::5")), .dst = to_address(ip("fd00:18::10"))};

std::vector<std::uint32_t> picks(Balancer& b, int n) {
  std::vector<std::uint32_t> out;
  for (int i = 0; i < n; ++i) {
    const auto r = b.pick(kKey, static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
    out.push_back(r ? r->slot : 999);
  }
  return out;
}

TEST(Balancer, CreateMakesTheConfiguredRule) {
  EXPECT_NE(dynamic_cast<MaglevBalancer*>(Balancer::create(config::LbRule::Maglev).get()), nullptr);
  EXPECT_NE(dynamic_cast<RoundRobinBalancer*>(Balancer::create(config::LbRule::RoundRobin).get()), nullptr);
  EXPECT_NE(dynamic_cast<WeightedBalancer*>(Balancer::create(config::LbRule::Weighted).get()), nullptr);
  EXPECT_NE(dynamic_cast<LeastConnBalancer*>(Balancer::create(config::LbRule::LeastConn).get()), nullptr);
}

TEST(Balancer, EveryRuleReturnsNoneWithoutActiveReplicas) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    auto b = Balancer::create(rule);
    EXPECT_FALSE(b->pick(kKey, 1)) << static_cast<int>(rule);
    const ReplicaRef a = b->add(1, 0); // drained
    const ReplicaRef c = b->add(2, 1, false); // down
    EXPECT_FALSE(b->pick(kKey, 1)) << static_cast<int>(rule);
    b->set_healthy(c, true);
    EXPECT_EQ(b->pick(kKey, 1), c) << static_cast<int>(rule);
    b->set_weight(a, 1);
    b->remove(c);
    EXPECT_EQ(b->pick(kKey, 1), a) << static_cast<int>(rule);
  }
}

TEST(Balancer, SlotsAreStableAndGenerationsMarkLeftReplicas) {
  RoundRobinBalancer b;
  const ReplicaRef a = b.add(ip("10.201.0.11"));
  const ReplicaRef c = b.add(ip("10.201.0.12"));
  const ReplicaRef d = b.add(ip("10.201.0.13"));
  EXPECT_EQ(a.slot, 0U);
  EXPECT_EQ(c.slot, 1U);
  EXPECT_EQ(d.slot, 2U);
  EXPECT_TRUE(b.remove(c));
  EXPECT_FALSE(b.remove(c)); // already gone
  EXPECT_FALSE(b.is_current(c));
  EXPECT_FALSE(b.keeps_flows(c));
  EXPECT_TRUE(b.is_current(d)); // untouched by the removal
  const ReplicaRef e = b.add(ip("10.201.0.14"));
  EXPECT_EQ(e.slot, 1U); // slot reused ...
  EXPECT_NE(e, c);       // ... by a different replica
  EXPECT_FALSE(b.is_current(c));
  EXPECT_EQ(b.address(e), ip("10.201.0.14"));
  EXPECT_EQ(b.replica_count(), 3U);
}

TEST(Balancer, ReplicaIdsAreStableAndDistinct) {
  EXPECT_EQ(replica_id(ip("10.201.0.11")), replica_id(ip("10.201.0.11")));
  EXPECT_NE(replica_id(ip("10.201.0.11")), replica_id(ip("10.201.0.12")));
  EXPECT_NE(replica_id(ip("fd00:201::11")), replica_id(ip("10.201.0.11")));
  EXPECT_EQ(to_address(ip("10.201.0.11")), v4_mapped(0x0AC9000B));
  EXPECT_TRUE(is_v4_mapped(to_address(ip("10.201.0.11"))));
  EXPECT_FALSE(is_v4_mapped(to_address(ip("fd00:201::11"))));
}

TEST(Balancer, DrainedReplicaKeepsFlowsButGetsNoNewOnes) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    auto b = Balancer::create(rule);
    const ReplicaRef a = b->add(1);
    const ReplicaRef c = b->add(2);
    b->set_weight(a, 0);
    EXPECT_TRUE(b->keeps_flows(a));
    for (std::uint32_t slot : picks(*b, 1000)) ASSERT_EQ(slot, c.slot) << static_cast<int>(rule);
    // Down is stronger: the flows move too.
    b->set_healthy(c, false);
    EXPECT_FALSE(b->keeps_flows(c));
  }
}

TEST(Balancer, RoundRobinCyclesInSlotOrderAndFollowsChanges) {
  RoundRobinBalancer b;
  const ReplicaRef r0 = b.add(10, 1);
  b.add(11, 5); // weight does not matter to round robin
  b.add(12, 1);
  EXPECT_EQ(picks(b, 6), (std::vector<std::uint32_t>{0, 1, 2, 0, 1, 2}));
  b.set_healthy(r0, false);
  const auto after = picks(b, 4);
  for (std::uint32_t s : after) EXPECT_NE(s, 0U);
  EXPECT_NE(after[0], after[1]);
}

// nginx's documented example: weights a=5, b=1, c=1 give { a, a, b, a, c, a, a }.
TEST(Balancer, SmoothWeightedSequenceMatchesNginx) {
  WeightedBalancer b;
  b.add(100, 5);
  b.add(101, 1);
  b.add(102, 1);
  EXPECT_EQ(picks(b, 14), (std::vector<std::uint32_t>{0, 0, 1, 0, 2, 0, 0, 0, 0, 1, 0, 2, 0, 0}));
}

TEST(Balancer, SmoothWeightedSharesFollowWeights) {
  WeightedBalancer b;
  b.add(1, 3);
  b.add(2, 2);
  const ReplicaRef z = b.add(3, 0);
  b.add(4, 1);
  std::map<std::uint32_t, int> count;
  for (std::uint32_t s : picks(b, 600)) ++count[s];
  EXPECT_EQ(count[0], 300);
  EXPECT_EQ(count[1], 200);
  EXPECT_EQ(count[z.slot], 0);
  EXPECT_EQ(count[3], 100);
}

TEST(Balancer, LeastConnPicksTheLeastLoaded) {
  LeastConnBalancer b;
  const ReplicaRef a = b.add(1);
  const ReplicaRef c = b.add(2);
  const ReplicaRef d = b.add(3);
  for (int i = 0; i < 5; ++i) b.flow_opened(a);
  for (int i = 0; i < 3; ++i) b.flow_opened(c);
  b.flow_opened(d);
  EXPECT_EQ(b.pick(kKey, 0), d);
  b.flow_opened(d);
  b.flow_opened(d);
  b.flow_opened(d); // a 5, c 3, d 4
  EXPECT_EQ(b.pick(kKey, 0), c);
  for (int i = 0; i < 5; ++i) b.flow_closed(a); // a 0
  EXPECT_EQ(b.pick(kKey, 0), a);
  EXPECT_EQ(b.active_flows(a), 0U);
  b.flow_closed(a); // never below zero
  EXPECT_EQ(b.active_flows(a), 0U);
}

TEST(Balancer, LeastConnSpreadsAsFlowsOpenAndRespectsWeightsAndDrains) {
  LeastConnBalancer b;
  const ReplicaRef a = b.add(1, 1);
  const ReplicaRef c = b.add(2, 3);
  const ReplicaRef d = b.add(3, 1);
  for (int i = 0; i < 50; ++i) b.flow_opened(*b.pick(kKey, 0));
  // Active flows per unit of weight even out: 10, 30, 10.
  EXPECT_EQ(b.active_flows(a), 10U);
  EXPECT_EQ(b.active_flows(c), 30U);
  EXPECT_EQ(b.active_flows(d), 10U);
  b.set_weight(d, 0); // drained: least loaded per weight but takes nothing new
  for (int i = 0; i < 20; ++i) {
    const ReplicaRef r = *b.pick(kKey, 0);
    EXPECT_NE(r, d);
    b.flow_opened(r);
  }
  EXPECT_EQ(b.active_flows(d), 10U);
}

TEST(Balancer, FlowAccountingIgnoresReplicasThatLeft) {
  LeastConnBalancer b;
  const ReplicaRef a = b.add(1);
  b.flow_opened(a);
  b.remove(a);
  const ReplicaRef c = b.add(2);
  EXPECT_EQ(c.slot, a.slot);
  b.flow_closed(a); // the old replica's flow ends: must not touch the new one's count
  b.flow_opened(a);
  EXPECT_EQ(b.active_flows(c), 0U);
}

TEST(Balancer, MaglevSticksToTheHashAndMovesOnlyTheRemovedReplicasFlows) {
  MaglevBalancer b;
  std::vector<ReplicaRef> r;
  for (int i = 0; i < 5; ++i) r.push_back(b.add(ip("10.201.0." + std::to_string(11 + i))));
  std::vector<ReplicaRef> before;
  for (std::uint64_t h = 0; h < 10000; ++h) {
    const std::uint64_t hash = h * 0x9e3779b97f4a7c15ULL;
    before.push_back(*b.pick(kKey, hash));
    EXPECT_EQ(*b.pick(kKey, hash), before.back()); // same hash, same replica
  }
  b.remove(r[2]);
  int moved_others = 0;
  for (std::uint64_t h = 0; h < 10000; ++h) {
    const ReplicaRef now = *b.pick(kKey, h * 0x9e3779b97f4a7c15ULL);
    EXPECT_NE(now.slot, r[2].slot);
    if (before[h] != r[2] && now != before[h]) ++moved_others;
  }
  EXPECT_LT(moved_others, 100); // < 1 %
}

// Two ingresses (or one restarted) with the same replicas added in another order agree.
TEST(Balancer, MaglevAgreesAcrossInstancesWhateverTheOrder) {
  MaglevBalancer x, y;
  const std::vector<std::string> addrs = {"10.201.0.11", "10.201.0.12", "10.201.0.13", "10.201.0.14"};
  for (const auto& a : addrs) x.add(ip(a));
  for (auto it = addrs.rbegin(); it != addrs.rend(); ++it) y.add(ip(*it));
  for (std::uint64_t h = 0; h < 5000; ++h) {
    const std::uint64_t hash = h * 0x9e3779b97f4a7c15ULL;
    EXPECT_EQ(*x.address(*x.pick(kKey, hash)), *y.address(*y.pick(kKey, hash)));
  }
}

TEST(Balancer, SyncAddsRemovesAndReweighsByAddress) {
  MaglevBalancer b;
  const std::vector<config::Replica> first = {{ip("10.201.0.11"), 1}, {ip("10.201.0.12"), 1},
                                              {ip("10.201.0.13"), 1}};
  b.sync(first);
  EXPECT_EQ(b.replica_count(), 3U);
  const ReplicaRef keep = *b.find(ip("10.201.0.11"));
  const ReplicaRef gone = *b.find(ip("10.201.0.12"));
  b.set_healthy(*b.find(ip("10.201.0.13")), false);

  const std::vector<config::Replica> second = {{ip("10.201.0.11"), 0}, {ip("10.201.0.13"), 2},
                                               {ip("10.201.0.14"), 1}};
  b.sync(second);
  EXPECT_EQ(b.replica_count(), 3U);
  EXPECT_EQ(b.find(ip("10.201.0.11")), keep); // same replica, same ref: its flows stay
  EXPECT_EQ(b.weight(keep), 0U);
  EXPECT_FALSE(b.is_current(gone));
  EXPECT_FALSE(b.find(ip("10.201.0.12")));
  EXPECT_FALSE(b.healthy(*b.find(ip("10.201.0.13")))); // health survives a reload
  EXPECT_EQ(b.weight(*b.find(ip("10.201.0.13"))), 2U);
  ASSERT_EQ(b.eligible().size(), 1U); // .11 drained, .13 down
  EXPECT_EQ(b.eligible()[0], b.find(ip("10.201.0.14"))->slot);
}

// --- Families: one slot space, one rule state per family. ---

struct Mixed {
  std::vector<ReplicaRef> v4, v6;
};

Mixed add_mixed(Balancer& b, int n4, int n6) {
  Mixed m;
  // Interleaved, as a config listing dual-stack hosts once per family would.
  for (int i = 0; i < std::max(n4, n6); ++i) {
    if (i < n4) m.v4.push_back(b.add(ip("10.201.0." + std::to_string(11 + i))));
    if (i < n6) m.v6.push_back(b.add(ip("fd00:201::" + std::to_string(11 + i))));
  }
  return m;
}

TEST(Balancer, EveryRulePicksOnlyAmongTheFlowsFamily) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    auto b = Balancer::create(rule);
    const Mixed m = add_mixed(*b, 3, 2);
    EXPECT_EQ(b->replica_count(), 5U);
    EXPECT_EQ(b->replica_count(Family::V4), 3U);
    EXPECT_EQ(b->replica_count(Family::V6), 2U);
    EXPECT_EQ(b->eligible().size(), 5U);
    EXPECT_EQ(b->eligible(Family::V4).size(), 3U);
    EXPECT_EQ(b->eligible(Family::V6).size(), 2U);
    std::map<std::uint32_t, int> v4, v6;
    for (std::uint64_t i = 0; i < 3000; ++i) {
      const std::uint64_t h = i * 0x9e3779b97f4a7c15ULL;
      const ReplicaRef a = *b->pick(kKey, h);
      const ReplicaRef c = *b->pick(Family::V6, kKey6, h);
      ASSERT_EQ(b->family(a), Family::V4) << static_cast<int>(rule);
      ASSERT_EQ(b->family(c), Family::V6) << static_cast<int>(rule);
      b->flow_opened(a);
      b->flow_opened(c);
      ++v4[a.slot];
      ++v6[c.slot];
    }
    EXPECT_EQ(v4.size(), 3U) << static_cast<int>(rule);
    EXPECT_EQ(v6.size(), 2U) << static_cast<int>(rule);
    for (const auto& [slot, n] : v4) EXPECT_NEAR(n, 1000, 60) << static_cast<int>(rule);
    for (const auto& [slot, n] : v6) EXPECT_NEAR(n, 1500, 90) << static_cast<int>(rule);
    for (ReplicaRef r : m.v4) EXPECT_EQ(b->active_flows(r), static_cast<std::uint64_t>(v4[r.slot]));
  }
  // pick(key, hash) is pick(family_of(key), key, hash).
  MaglevBalancer b;
  add_mixed(b, 3, 3);
  for (std::uint64_t h = 0; h < 1000; ++h) {
    EXPECT_EQ(b.pick(kKey6, h * 977), b.pick(Family::V6, kKey6, h * 977));
    EXPECT_EQ(b.pick(kKey, h * 977), b.pick(Family::V4, kKey, h * 977));
  }
}

TEST(Balancer, FamiliesShareOneSlotSpace) {
  RoundRobinBalancer b;
  const Mixed m = add_mixed(b, 2, 2);
  std::vector<std::uint32_t> slots;
  b.for_each_replica([&](ReplicaRef r) {
    EXPECT_TRUE(b.is_current(r));
    slots.push_back(r.slot);
  });
  EXPECT_EQ(slots, (std::vector<std::uint32_t>{0, 1, 2, 3})); // unique across families
  EXPECT_EQ(b.slot_count(), 4U);
  EXPECT_EQ(b.family(m.v4[1]), Family::V4);
  EXPECT_EQ(b.family(m.v6[0]), Family::V6);
  EXPECT_EQ(family_of(b.flow_address(m.v6[0])), Family::V6);
  // A freed slot is reused by whichever family comes next.
  b.remove(m.v4[0]);
  const ReplicaRef r = b.add(ip("fd00:201::99"));
  EXPECT_EQ(r.slot, m.v4[0].slot);
  EXPECT_EQ(b.family(r), Family::V6);
  EXPECT_EQ(b.replica_count(Family::V4), 1U);
  EXPECT_EQ(b.replica_count(Family::V6), 3U);
  // id-only replicas take the family they are given.
  EXPECT_EQ(b.family(b.add(7, 1, true, Family::V6)), Family::V6);
}

TEST(Balancer, NoReplicaOfTheFamilyGivesNone) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    auto b = Balancer::create(rule);
    b->add(ip("10.201.0.11"));
    EXPECT_TRUE(b->pick(kKey, 1)) << static_cast<int>(rule);
    EXPECT_FALSE(b->pick(kKey6, 1)) << static_cast<int>(rule);
    EXPECT_FALSE(b->pick(Family::V6, kKey, 1)) << static_cast<int>(rule); // the family given wins
  }
}

// Changes in one family leave the other's table exactly as it was.
TEST(Balancer, MaglevTablesAreIndependentPerFamily) {
  MaglevBalancer b;
  Mixed m = add_mixed(b, 5, 4);
  const std::vector<std::uint32_t> v6(b.table(Family::V6).entries().begin(), b.table(Family::V6).entries().end());
  const std::vector<std::uint32_t> v4(b.table(Family::V4).entries().begin(), b.table(Family::V4).entries().end());
  b.remove(m.v4[2]);
  b.add(ip("10.201.0.77"));
  b.set_healthy(m.v4[0], false);
  b.set_weight(m.v4[1], 3);
  EXPECT_TRUE(std::equal(v6.begin(), v6.end(), b.table(Family::V6).entries().begin()));
  b.remove(m.v6[1]);
  b.add(ip("fd00:201::77"));
  b.set_healthy(m.v4[0], true);
  b.set_weight(m.v4[1], 1);
  b.remove(*b.find(ip("10.201.0.77")));
  b.add(ip("10.201.0.13")); // the v4 set is back to the first one
  EXPECT_TRUE(std::equal(v4.begin(), v4.end(), b.table(Family::V4).entries().begin()));
}

TEST(Balancer, MaglevSizesEachFamilysTableByItsReplicaCount) {
  MaglevBalancer b;
  EXPECT_TRUE(b.table(Family::V4).automatic());
  for (int i = 0; i < 3; ++i) b.add(ip("10.201.0." + std::to_string(11 + i)));
  EXPECT_EQ(b.table(Family::V4).size(), Maglev::auto_table_size(3));
  EXPECT_EQ(b.table(Family::V6).size(), Maglev::kMinTableSize); // no IPv6 replica: small
  // Down and drained replicas still count: health never resizes (reshuffles) a table.
  std::vector<config::Replica> many;
  for (int i = 0; i < 130; ++i) {
    many.push_back({ip("fd00:201::" + std::to_string(0x100 + i)), 1});
  }
  b.sync(many);
  EXPECT_EQ(b.table(Family::V6).size(), Maglev::auto_table_size(130));
  EXPECT_EQ(b.table(Family::V4).size(), Maglev::kMinTableSize); // sync removed the v4 ones
  for (int i = 0; i < 5; ++i) b.set_healthy(*b.find(many[i].address), false);
  b.set_weight(*b.find(many[5].address), 0);
  EXPECT_EQ(b.table(Family::V6).size(), Maglev::auto_table_size(130));
  EXPECT_EQ(b.eligible(Family::V6).size(), 124U);
  // A fixed size applies to both families.
  MaglevBalancer fixed(65537);
  fixed.add(ip("10.201.0.11"));
  EXPECT_EQ(fixed.table(Family::V4).size(), 65537U);
  EXPECT_EQ(fixed.table(Family::V6).size(), 65537U);
}

// A reload that changes only IPv4 replicas does not restart the IPv6 weighted sequence.
TEST(Balancer, SyncRebuildsOnlyTheFamiliesThatChanged) {
  WeightedBalancer b;
  std::vector<config::Replica> reps = {{ip("fd00:201::a"), 5}, {ip("fd00:201::b"), 1},
                                       {ip("fd00:201::c"), 1}, {ip("10.201.0.11"), 1}};
  b.sync(reps);
  const std::uint32_t a = b.find(ip("fd00:201::a"))->slot;
  const std::uint32_t c = b.find(ip("fd00:201::b"))->slot;
  const std::uint32_t d = b.find(ip("fd00:201::c"))->slot;
  std::vector<std::uint32_t> seq;
  for (int i = 0; i < 3; ++i) seq.push_back(b.pick(kKey6, 0)->slot);
  reps.push_back({ip("10.201.0.12"), 1});
  b.sync(reps);
  for (int i = 0; i < 4; ++i) seq.push_back(b.pick(kKey6, 0)->slot);
  EXPECT_EQ(seq, (std::vector<std::uint32_t>{a, a, c, a, d, a, a})); // nginx's, unbroken
}

} // namespace
} // namespace xdpfwd::ingress::balance
