#include "service_balancer.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace xdpfwd::ingress::balance {
namespace {

using namespace std::chrono_literals;

config::IpAddress ip(const std::string& text) { return boost::asio::ip::make_address(text); }
Address addr(const std::string& text) { return to_address(ip(text)); }

FlowKey client(const std::string& src, std::uint16_t sport, IpProto proto = IpProto::Tcp,
               const std::string& dst = "198.18.0.10") {
  return FlowKey{.src = addr(src), .dst = addr(dst), .src_port = sport, .dst_port = 443, .proto = proto};
}

std::vector<config::Replica> replicas(int n, int first = 11) {
  std::vector<config::Replica> out;
  for (int i = first; i < first + n; ++i) out.push_back({ip("10.201.0." + std::to_string(i)), 1});
  return out;
}

ServiceBalancerOptions nat_options(config::LbRule lb = config::LbRule::Maglev) {
  return {.lb = lb,
          .client_ip = config::ClientIp::Nat,
          .overlay_v4 = addr("10.201.0.1"),
          .overlay_v6 = std::nullopt,
          .flows = {.capacity = 4096, .timeouts = {}},
          .nat_ports = {},
          .maglev_table_size = Maglev::kAutoTableSize};
}

struct ServiceBalancerTest : ::testing::Test {
  Timestamp now = 1000s;
  ServiceBalancer::Decision packet(ServiceBalancer& s, const FlowKey& k, std::uint8_t flags = tcp_flag::kAck) {
    return s.client_packet(k, hash(k), flags, now);
  }
  FlowEntry* reply(ServiceBalancer& s, const FlowKey& k, std::uint8_t flags = tcp_flag::kAck) {
    return s.reply_packet(k, hash(k), flags, now);
  }
};

TEST_F(ServiceBalancerTest, NatFlowGetsAPortAndItsRepliesFindIt) {
  ServiceBalancer s(nat_options());
  const auto reps = replicas(3);
  s.sync(reps);
  const FlowKey k = client("198.18.1.5", 40000);
  const auto d = packet(s, k, tcp_flag::kSyn);
  ASSERT_NE(d.flow, nullptr);
  EXPECT_TRUE(d.created);
  EXPECT_FALSE(d.drop);
  const FlowEntry& e = *d.flow;
  EXPECT_GE(e.nat_port, 20000);
  EXPECT_LE(e.nat_port, 59999);
  // What the replica's reply carries.
  EXPECT_EQ(e.reverse.src, s.balancer().flow_address(e.replica));
  EXPECT_EQ(e.reverse.src_port, 443);
  EXPECT_EQ(e.reverse.dst, addr("10.201.0.1"));
  EXPECT_EQ(e.reverse.dst_port, e.nat_port);
  EXPECT_EQ(s.ports().in_use(e.replica, IpProto::Tcp), 1U);
  EXPECT_EQ(s.balancer().active_flows(e.replica), 1U);

  EXPECT_EQ(reply(s, e.reverse, tcp_flag::kSyn | tcp_flag::kAck), d.flow);
  EXPECT_EQ(e.state, FlowState::Established);
  const auto again = packet(s, k);
  EXPECT_EQ(again.flow, d.flow);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(s.counters().flows_created, 1U);
}

TEST_F(ServiceBalancerTest, PreserveKeepsTheClientAddressInTheReplyKey) {
  auto o = nat_options();
  o.client_ip = config::ClientIp::Preserve;
  o.overlay_v4.reset();
  ServiceBalancer s(o);
  const auto reps = replicas(2);
  s.sync(reps);
  const FlowKey k = client("198.18.1.5", 40000, IpProto::Udp);
  FlowEntry* e = packet(s, k, 0).flow;
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->nat_port, 0);
  EXPECT_EQ(e->reverse.dst, k.src);
  EXPECT_EQ(e->reverse.dst_port, 40000);
  EXPECT_EQ(reply(s, e->reverse, 0), e);
}

TEST_F(ServiceBalancerTest, IcmpEchoIdentifierIsTranslatedLikeAPort) {
  ServiceBalancer s(nat_options());
  const auto reps = replicas(1);
  s.sync(reps);
  const FlowKey echo{.src = addr("198.18.1.5"), .dst = addr("198.18.0.10"), .src_port = 77,
                     .dst_port = 0, .proto = IpProto::Icmp};
  FlowEntry* e = packet(s, echo, 0).flow;
  ASSERT_NE(e, nullptr);
  const FlowKey echo_reply{.src = addr("10.201.0.11"), .dst = addr("10.201.0.1"), .src_port = 0,
                           .dst_port = e->nat_port, .proto = IpProto::Icmp};
  EXPECT_EQ(reply(s, echo_reply, 0), e);
}

TEST_F(ServiceBalancerTest, EstablishedFlowsKeepTheirReplicaWhileReplicasAreAdded) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    ServiceBalancer s(nat_options(rule));
    auto reps = replicas(3);
    s.sync(reps);
    std::vector<FlowKey> keys;
    std::map<int, ReplicaRef> before;
    for (int i = 0; i < 500; ++i) {
      keys.push_back(client("198.18.1." + std::to_string(i % 250), static_cast<std::uint16_t>(30000 + i)));
      before[i] = packet(s, keys.back(), tcp_flag::kSyn).flow->replica;
    }
    for (int more = 14; more < 20; ++more) {
      reps.push_back({ip("10.201.0." + std::to_string(more)), 1});
      s.sync(reps);
      for (int i = 0; i < 500; ++i) {
        const auto d = packet(s, keys[i]);
        ASSERT_NE(d.flow, nullptr);
        EXPECT_EQ(d.flow->replica, before[i]) << static_cast<int>(rule);
        EXPECT_FALSE(d.moved);
      }
    }
    EXPECT_EQ(s.counters().flows_moved, 0U);
    // New flows do reach the new replicas.
    std::map<std::uint32_t, int> slots;
    for (int i = 0; i < 2000; ++i) ++slots[packet(s, client("198.18.2.1", static_cast<std::uint16_t>(i))).flow->replica.slot];
    EXPECT_EQ(slots.size(), 9U) << static_cast<int>(rule);
  }
}

TEST_F(ServiceBalancerTest, FlowsOfARemovedReplicaMoveOnTheirNextPacket) {
  ServiceBalancer s(nat_options());
  auto reps = replicas(4);
  s.sync(reps);
  const ReplicaRef victim = *s.balancer().find(ip("10.201.0.12"));
  std::vector<FlowKey> keys;
  std::vector<FlowEntry> before;
  for (int i = 0; i < 400; ++i) {
    keys.push_back(client("198.18.1.7", static_cast<std::uint16_t>(10000 + i)));
    FlowEntry* e = packet(s, keys.back(), tcp_flag::kSyn).flow;
    reply(s, e->reverse, tcp_flag::kSyn | tcp_flag::kAck);
    before.push_back(*e);
  }
  const std::uint64_t on_victim = s.balancer().active_flows(victim);
  ASSERT_GT(on_victim, 50U);

  reps.erase(reps.begin() + 1); // 10.201.0.12 leaves
  s.sync(reps);
  std::uint64_t moved = 0;
  for (int i = 0; i < 400; ++i) {
    // Replies from the departed replica are no longer forwarded.
    if (before[i].replica == victim) {
      EXPECT_EQ(reply(s, before[i].reverse), nullptr);
    }
    const auto d = packet(s, keys[i]);
    ASSERT_NE(d.flow, nullptr);
    EXPECT_NE(d.flow->replica, victim);
    if (before[i].replica == victim) {
      EXPECT_TRUE(d.moved);
      ++moved;
      EXPECT_EQ(reply(s, d.flow->reverse), d.flow); // the new replica's replies find it
      EXPECT_EQ(d.flow->state, FlowState::Established);
    } else {
      EXPECT_FALSE(d.moved);
      EXPECT_EQ(d.flow->replica, before[i].replica);
      EXPECT_EQ(d.flow->nat_port, before[i].nat_port);
    }
  }
  EXPECT_EQ(moved, on_victim);
  EXPECT_EQ(s.counters().flows_moved, on_victim);
  // Accounting followed the moves.
  std::uint64_t total = 0;
  for (std::uint32_t slot : s.balancer().eligible()) total += s.balancer().active_flows(s.balancer().current(slot));
  EXPECT_EQ(total, 400U);
  EXPECT_EQ(s.flows().size(), 400U);
}

TEST_F(ServiceBalancerTest, DownReplicaLosesItsFlowsDrainedKeepsThem) {
  ServiceBalancer s(nat_options(config::LbRule::RoundRobin));
  const auto reps = replicas(2);
  s.sync(reps);
  const ReplicaRef a = *s.balancer().find(ip("10.201.0.11"));
  const ReplicaRef b = *s.balancer().find(ip("10.201.0.12"));
  const FlowKey ka = client("198.18.1.1", 1000);
  const FlowKey kb = client("198.18.1.1", 1001);
  ASSERT_EQ(packet(s, ka).flow->replica, a);
  ASSERT_EQ(packet(s, kb).flow->replica, b);

  s.balancer().set_weight(a, 0); // drained
  EXPECT_EQ(packet(s, ka).flow->replica, a);
  EXPECT_EQ(packet(s, client("198.18.1.1", 1002)).flow->replica, b);

  // b down: its flow must move, but the only other replica is drained and takes no new
  // flows, so the flow is dropped and its entry and port released.
  s.balancer().set_healthy(b, false);
  const auto d = packet(s, kb);
  EXPECT_EQ(d.flow, nullptr);
  EXPECT_EQ(d.drop, DropReason::NoReplica);
  EXPECT_EQ(s.counters().drops[static_cast<int>(DropReason::NoReplica)], 1U);
  EXPECT_EQ(s.ports().in_use(b, IpProto::Tcp), 1U); // 1002 still there, kb's port returned
  s.balancer().set_weight(a, 1);
  const auto again = packet(s, kb);
  ASSERT_NE(again.flow, nullptr);
  EXPECT_TRUE(again.created);
  EXPECT_EQ(again.flow->replica, a);
}

TEST_F(ServiceBalancerTest, NoReplicasMeansDrops) {
  ServiceBalancer s(nat_options());
  const auto d = packet(s, client("198.18.1.1", 1));
  EXPECT_EQ(d.drop, DropReason::NoReplica);
  EXPECT_STREQ(to_string(*d.drop), "no_replica");
  EXPECT_EQ(s.flows().size(), 0U);
}

// A flood of new sources takes every NAT port of a replica: the oldest flow holding one of
// that protocol gives it up, so that new flows still get through; the eviction is counted.
TEST_F(ServiceBalancerTest, ExhaustedNatPortsAreTakenBackFromTheOldestFlow) {
  auto o = nat_options();
  o.nat_ports = {.first = 20000, .last = 20009};
  ServiceBalancer s(o);
  const auto reps = replicas(1);
  s.sync(reps);
  for (std::uint16_t i = 0; i < 10; ++i) {
    ASSERT_NE(packet(s, client("198.18.1.1", i, IpProto::Udp)).flow, nullptr);
    now += 10ms;
  }
  ASSERT_NE(packet(s, client("198.18.1.2", 1, IpProto::Tcp)).flow, nullptr); // another pool
  now += 2s; // past the requeue interval: touching moves a flow to the back of its list
  ASSERT_NE(packet(s, client("198.18.1.1", 0, IpProto::Udp)).flow, nullptr); // the oldest, active again

  const auto d = packet(s, client("198.18.1.1", 10, IpProto::Udp));
  ASSERT_NE(d.flow, nullptr);
  EXPECT_FALSE(d.drop);
  EXPECT_EQ(d.flow->nat_port, 20001); // the port of flow 1, now the least recently used
  EXPECT_EQ(s.flows().evictions(), 1U);
  EXPECT_EQ(s.counters().drops[static_cast<int>(DropReason::NatPortsExhausted)], 0U);
  const FlowKey gone = client("198.18.1.1", 1, IpProto::Udp);
  EXPECT_EQ(s.lookup(gone, hash(gone), now), nullptr);
  for (std::uint16_t i : {0, 2, 9}) {
    const FlowKey kept = client("198.18.1.1", i, IpProto::Udp);
    EXPECT_NE(s.lookup(kept, hash(kept), now), nullptr) << i;
  }
  const FlowKey tcp = client("198.18.1.2", 1, IpProto::Tcp);
  EXPECT_NE(s.lookup(tcp, hash(tcp), now), nullptr); // its port is of another protocol
  EXPECT_EQ(s.ports().in_use(d.flow->replica, IpProto::Udp), 10U);
}

// Where the oldest flows all belong to other replicas (more than the looks), the oldest one
// holding a port gives it up and the new flow goes to its replica.
TEST_F(ServiceBalancerTest, ExhaustedNatPortsFallBackToTheOldestFlowOfAnyReplica) {
  auto o = nat_options(config::LbRule::RoundRobin);
  o.nat_ports = {.first = 20000, .last = 20099};
  ServiceBalancer s(o);
  const auto reps = replicas(2);
  s.sync(reps);
  // Round robin alternates: 200 flows fill both replicas' 100 ports.
  std::map<std::uint32_t, std::vector<std::uint16_t>> by_slot; // client ports per replica slot
  for (std::uint16_t i = 0; i < 200; ++i) {
    const auto d = packet(s, client("198.18.1.1", i, IpProto::Udp));
    ASSERT_NE(d.flow, nullptr) << i;
    by_slot[d.flow->replica.slot].push_back(i);
    now += 1ms;
  }
  ASSERT_EQ(by_slot.size(), 2U);
  // Refresh the first replica's flows (past the requeue interval): the oldest 100 are now
  // all of the second replica, more than the 64 looks.
  now += 2s;
  const std::uint32_t refreshed = by_slot.begin()->first;
  for (std::uint16_t port : by_slot.begin()->second) packet(s, client("198.18.1.1", port, IpProto::Udp));
  // Round robin picks the first replica for one of the next two flows: its ports are all
  // held by flows the looks do not reach, so the second replica's oldest gives its port up.
  for (std::uint16_t i = 200; i < 202; ++i) {
    const auto d = packet(s, client("198.18.1.1", i, IpProto::Udp));
    ASSERT_NE(d.flow, nullptr) << i;
    EXPECT_NE(d.flow->replica.slot, refreshed) << i;
  }
  EXPECT_EQ(s.flows().evictions(), 2U);
  EXPECT_EQ(s.counters().drops[static_cast<int>(DropReason::NatPortsExhausted)], 0U);
  for (std::uint16_t port : by_slot.begin()->second) {
    const FlowKey kept = client("198.18.1.1", port, IpProto::Udp);
    EXPECT_NE(s.lookup(kept, hash(kept), now), nullptr) << port;
  }
}

TEST_F(ServiceBalancerTest, FamilyProblemsAreNamedDrops) {
  ServiceBalancer s(nat_options()); // no IPv6 overlay address
  std::vector<config::Replica> reps = {{ip("fd00:201::11"), 1}};
  s.sync(reps);
  EXPECT_EQ(packet(s, client("198.18.1.1", 1)).drop, DropReason::FamilyMismatch);
  const FlowKey v6{.src = addr("fd00:18::5"), .dst = addr("fd00:18::10"), .src_port = 1, .dst_port = 443,
                   .proto = IpProto::Tcp};
  EXPECT_EQ(packet(s, v6).drop, DropReason::NoOverlayAddress);
  EXPECT_EQ(packet(s, FlowKey{.src = addr("fd00:18::5"), .dst = addr("fd00:18::10"),
                               .proto = static_cast<IpProto>(47)}).drop,
            DropReason::NoOverlayAddress);
}

TEST_F(ServiceBalancerTest, LeastConnSeesFlowsEndThroughTheTable) {
  ServiceBalancer s(nat_options(config::LbRule::LeastConn));
  const auto reps = replicas(2);
  s.sync(reps);
  const ReplicaRef a = *s.balancer().find(ip("10.201.0.11"));
  for (std::uint16_t i = 0; i < 10; ++i) {
    FlowEntry* e = packet(s, client("198.18.1.1", i, IpProto::Udp), 0).flow;
    ASSERT_NE(e, nullptr);
  }
  EXPECT_EQ(s.balancer().active_flows(a), 5U);
  now += 31s;
  EXPECT_EQ(s.expire(now, 100), 10U);
  EXPECT_EQ(s.balancer().active_flows(a), 0U);
  EXPECT_EQ(s.ports().in_use(a, IpProto::Udp), 0U);
}

// Eviction under a flood returns ports and flow counts like expiry does.
TEST_F(ServiceBalancerTest, FloodEvictionReleasesPortsAndCounts) {
  auto o = nat_options(config::LbRule::LeastConn);
  o.flows.capacity = 256;
  ServiceBalancer s(o);
  const auto reps = replicas(4);
  s.sync(reps);
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    FlowKey k = client("198.18.1.1", static_cast<std::uint16_t>(rng()), IpProto::Udp);
    k.src[15] = static_cast<std::uint8_t>(rng());
    now += 1ms;
    ASSERT_NE(packet(s, k, 0).flow, nullptr);
    ASSERT_LE(s.flows().size(), 256U);
  }
  std::uint64_t flows = 0, ports = 0;
  for (std::uint32_t slot : s.balancer().eligible()) {
    flows += s.balancer().active_flows(s.balancer().current(slot));
    ports += s.ports().in_use(s.balancer().current(slot), IpProto::Udp);
  }
  EXPECT_EQ(flows, s.flows().size());
  EXPECT_EQ(ports, s.flows().size());
  EXPECT_GT(s.flows().evictions(), 0U);
}

// --- Mixed IPv4/IPv6 replicas. ---

FlowKey client6(int host, std::uint16_t sport, IpProto proto = IpProto::Tcp) {
  return FlowKey{.src = addr("fd00:18:1::" + std::to_string(host)), .dst = addr("fd00:18::10"),
                 .src_port = sport, .dst_port = 443, .proto = proto};
}

// Four IPv4 and three IPv6 replicas, listed mixed (dual-stack hosts appear once per family).
std::vector<config::Replica> mixed(int n4 = 4, int n6 = 3) {
  std::vector<config::Replica> out;
  for (int i = 0; i < std::max(n4, n6); ++i) {
    if (i < n4) out.push_back({ip("10.201.0." + std::to_string(11 + i)), 1});
    if (i < n6) out.push_back({ip("fd00:201::" + std::to_string(11 + i)), 1});
  }
  return out;
}

ServiceBalancerOptions dual_options(config::LbRule lb = config::LbRule::Maglev) {
  auto o = nat_options(lb);
  o.overlay_v6 = addr("fd00:201::1");
  o.flows.capacity = 32768;
  return o;
}

TEST_F(ServiceBalancerTest, MixedFamiliesEachFlowIsBalancedOverItsOwnFamily) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::RoundRobin, config::LbRule::Weighted,
                    config::LbRule::LeastConn}) {
    ServiceBalancer s(dual_options(rule));
    const auto reps = mixed();
    s.sync(reps);
    std::map<std::uint32_t, int> v4, v6;
    constexpr int kFlows = 8000;
    for (int i = 0; i < kFlows; ++i) {
      const auto sport = static_cast<std::uint16_t>(1024 + i);
      const auto d4 = packet(s, client("198.18." + std::to_string(1 + i % 200) + ".7", sport), tcp_flag::kSyn);
      const auto d6 = packet(s, client6(1 + i % 200, sport), tcp_flag::kSyn);
      ASSERT_NE(d4.flow, nullptr);
      ASSERT_NE(d6.flow, nullptr);
      ASSERT_EQ(s.balancer().family(d4.flow->replica), Family::V4);
      ASSERT_EQ(s.balancer().family(d6.flow->replica), Family::V6);
      // NAT source of the flow's family, replies keyed on the replica's address.
      ASSERT_EQ(d4.flow->reverse.dst, addr("10.201.0.1"));
      ASSERT_EQ(d6.flow->reverse.dst, addr("fd00:201::1"));
      ASSERT_EQ(d6.flow->reverse.src, s.balancer().flow_address(d6.flow->replica));
      ASSERT_EQ(reply(s, d6.flow->reverse, tcp_flag::kSyn | tcp_flag::kAck), d6.flow);
      ++v4[d4.flow->replica.slot];
      ++v6[d6.flow->replica.slot];
    }
    ASSERT_EQ(v4.size(), 4U) << static_cast<int>(rule);
    ASSERT_EQ(v6.size(), 3U) << static_cast<int>(rule);
    // Shares within 5 % of fair (Maglev over 8000 flows: ~2 % sampling noise per replica).
    for (const auto& [slot, n] : v4) EXPECT_NEAR(n * 4.0 / kFlows, 1.0, 0.05) << static_cast<int>(rule);
    for (const auto& [slot, n] : v6) EXPECT_NEAR(n * 3.0 / kFlows, 1.0, 0.05) << static_cast<int>(rule);
    // Accounting per replica, both families, through the listing the data path uses.
    std::uint64_t flows = 0, ports = 0;
    int listed = 0;
    s.for_each_replica([&](ReplicaRef r) {
      ++listed;
      const auto& counts = s.balancer().family(r) == Family::V4 ? v4 : v6;
      EXPECT_EQ(s.balancer().active_flows(r), static_cast<std::uint64_t>(counts.at(r.slot)));
      flows += s.balancer().active_flows(r);
      ports += s.ports().in_use(r, IpProto::Tcp);
    });
    EXPECT_EQ(listed, 7);
    EXPECT_EQ(flows, 2U * kFlows);
    EXPECT_EQ(ports, 2U * kFlows);
  }
}

TEST_F(ServiceBalancerTest, NoReplicaOfTheFlowsFamilyIsFamilyMismatch) {
  ServiceBalancer s(dual_options());
  const std::vector<config::Replica> only_v4 = mixed(2, 0);
  s.sync(only_v4);
  const auto d = packet(s, client6(1, 1000));
  EXPECT_EQ(d.drop, DropReason::FamilyMismatch);
  EXPECT_STREQ(to_string(*d.drop), "family_mismatch");
  EXPECT_EQ(s.counters().drops[static_cast<int>(DropReason::FamilyMismatch)], 1U);
  ASSERT_NE(packet(s, client("198.18.1.1", 1000)).flow, nullptr);
  // Replicas of the family that are all down or drained: no_replica, as without families.
  s.balancer().set_healthy(*s.balancer().find(ip("10.201.0.11")), false);
  s.balancer().set_weight(*s.balancer().find(ip("10.201.0.12")), 0);
  EXPECT_EQ(packet(s, client("198.18.1.1", 1001)).drop, DropReason::NoReplica);
  // An IPv6 replica arrives: IPv6 flows go; the reload also gives .12 its configured weight
  // back, so IPv4 flows go there (.11 is still down).
  const std::vector<config::Replica> both = mixed(2, 1);
  s.sync(both);
  const auto d6 = packet(s, client6(1, 1000));
  ASSERT_NE(d6.flow, nullptr);
  EXPECT_EQ(*s.balancer().address(d6.flow->replica), ip("fd00:201::11"));
  const auto d4 = packet(s, client("198.18.1.1", 1002));
  ASSERT_NE(d4.flow, nullptr);
  EXPECT_EQ(*s.balancer().address(d4.flow->replica), ip("10.201.0.12"));
}

// A flow whose replica left moves to another replica of its own family, never across, and
// changes in one family move no flow of the other.
TEST_F(ServiceBalancerTest, ReplicaChangesInOneFamilyDoNotMoveTheOthersFlows) {
  for (auto rule : {config::LbRule::Maglev, config::LbRule::LeastConn}) {
    ServiceBalancer s(dual_options(rule));
    auto reps = mixed(4, 3);
    s.sync(reps);
    std::vector<FlowKey> keys4, keys6;
    std::vector<FlowEntry> before4, before6;
    for (int i = 0; i < 600; ++i) {
      const auto sport = static_cast<std::uint16_t>(2000 + i);
      keys4.push_back(client("198.18.1.9", sport));
      keys6.push_back(client6(9, sport));
      before4.push_back(*packet(s, keys4.back(), tcp_flag::kSyn).flow);
      before6.push_back(*packet(s, keys6.back(), tcp_flag::kSyn).flow);
    }
    // Maglev answers for fresh IPv4 flows, to check the IPv4 table did not change.
    std::vector<ReplicaRef> picks4;
    for (std::uint64_t h = 0; h < 5000; ++h) picks4.push_back(*s.balancer().pick(Family::V4, keys4[0], h * 0x9e3779b97f4a7c15ULL));

    // fd00:201::12 leaves, fd00:201::20 and fd00:201::21 arrive.
    const ReplicaRef gone = *s.balancer().find(ip("fd00:201::12"));
    const std::uint64_t on_gone = s.balancer().active_flows(gone);
    ASSERT_GT(on_gone, 100U);
    std::erase_if(reps, [](const config::Replica& r) { return r.address == ip("fd00:201::12"); });
    reps.push_back({ip("fd00:201::20"), 1});
    reps.push_back({ip("fd00:201::21"), 1});
    s.sync(reps);

    for (int i = 0; i < 600; ++i) {
      const auto d4 = packet(s, keys4[i]);
      ASSERT_NE(d4.flow, nullptr);
      EXPECT_FALSE(d4.moved);
      EXPECT_EQ(d4.flow->replica, before4[i].replica);
      EXPECT_EQ(d4.flow->nat_port, before4[i].nat_port);
      const auto d6 = packet(s, keys6[i]);
      ASSERT_NE(d6.flow, nullptr);
      EXPECT_EQ(s.balancer().family(d6.flow->replica), Family::V6);
      EXPECT_EQ(d6.moved, before6[i].replica == gone);
      if (!d6.moved) {
        EXPECT_EQ(d6.flow->replica, before6[i].replica);
      }
    }
    EXPECT_EQ(s.counters().flows_moved, on_gone) << static_cast<int>(rule);
    if (rule == config::LbRule::Maglev) {
      for (std::uint64_t h = 0; h < 5000; ++h) {
        ASSERT_EQ(*s.balancer().pick(Family::V4, keys4[0], h * 0x9e3779b97f4a7c15ULL), picks4[h]);
      }
    }
    // Now an IPv4 replica is removed: the IPv6 flows stay where they are.
    std::vector<ReplicaRef> now6;
    for (const FlowKey& k : keys6) now6.push_back(packet(s, k).flow->replica);
    std::erase_if(reps, [](const config::Replica& r) { return r.address == ip("10.201.0.13"); });
    s.sync(reps);
    for (int i = 0; i < 600; ++i) {
      const auto d6 = packet(s, keys6[i]);
      EXPECT_FALSE(d6.moved);
      EXPECT_EQ(d6.flow->replica, now6[i]);
      const auto d4 = packet(s, keys4[i]);
      EXPECT_EQ(s.balancer().family(d4.flow->replica), Family::V4);
    }
    std::uint64_t total = 0;
    s.for_each_replica([&](ReplicaRef r) { total += s.balancer().active_flows(r); });
    EXPECT_EQ(total, 1200U);
    EXPECT_EQ(s.flows().size(), 1200U);
  }
}

} // namespace
} // namespace xdpfwd::ingress::balance
