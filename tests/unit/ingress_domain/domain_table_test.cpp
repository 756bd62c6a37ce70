#include "domain_table.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace xdpfwd::ingress::domain {
namespace {

using Kind = DomainTable::MatchKind;
using Match = DomainTable::Match;

config::Service service(std::string name, std::vector<std::string> domains) {
  config::Service out;
  out.name = std::move(name);
  out.domains = std::move(domains);
  return out;
}

// 0 exact, 1 wildcard of the zone, 2 a deeper wildcard, 3 exact below the deeper wildcard,
// 4 the fallback candidate.
const std::vector<config::Service> kServices = {
    service("www", {"example.test", "www.example.test"}),
    service("zone", {"*.example.test"}),
    service("team", {"*.team.example.test", "other.test"}),
    service("exact-deep", {"x.team.example.test"}),
    service("default", {"default.test"}),
};

std::optional<Match> exact(std::size_t i) { return Match{.service = i, .kind = Kind::Exact}; }
std::optional<Match> wildcard(std::size_t i) { return Match{.service = i, .kind = Kind::Wildcard}; }
std::optional<Match> fallback(std::size_t i) { return Match{.service = i, .kind = Kind::Fallback}; }

TEST(DomainTable, ExactNames) {
  const DomainTable table(kServices, "reject");
  EXPECT_EQ(table.match("example.test"), exact(0));
  EXPECT_EQ(table.match("www.example.test"), exact(0));
  EXPECT_EQ(table.match("other.test"), exact(2));
  EXPECT_EQ(table.match("default.test"), exact(4));
}

TEST(DomainTable, ExactBeatsWildcard) {
  const DomainTable table(kServices, "reject");
  EXPECT_EQ(table.match("x.team.example.test"), exact(3));
  EXPECT_EQ(table.match("www.example.test"), exact(0)); // also under *.example.test
}

TEST(DomainTable, WildcardMatchesBelowAtAnyDepthNotItself) {
  const DomainTable table(kServices, "reject");
  EXPECT_EQ(table.match("a.example.test"), wildcard(1));
  EXPECT_EQ(table.match("b.a.example.test"), wildcard(1));
  EXPECT_EQ(table.match("_sip._tcp.a.example.test"), wildcard(1));
  EXPECT_EQ(table.match("team.example.test"), wildcard(1)); // *.team... does not match team... itself
  EXPECT_EQ(table.match("other.example.test"), wildcard(1));
  EXPECT_EQ(table.match("example.test.evil"), std::nullopt);
  EXPECT_EQ(table.match("notexample.test"), std::nullopt); // a suffix must start at a label
  EXPECT_EQ(table.match("test"), std::nullopt);
}

TEST(DomainTable, LongestWildcardWins) {
  const DomainTable table(kServices, "reject");
  EXPECT_EQ(table.match("y.team.example.test"), wildcard(2));
  EXPECT_EQ(table.match("z.y.team.example.test"), wildcard(2));
  EXPECT_EQ(table.match("z.x.team.example.test"), wildcard(2)); // below an exact name: the wildcard
}

TEST(DomainTable, FallbackOrReject) {
  const DomainTable rejecting(kServices, "reject");
  EXPECT_EQ(rejecting.match("nobody.test"), std::nullopt);
  EXPECT_EQ(rejecting.fallback(), std::nullopt);
  const DomainTable defaulting(kServices, "default");
  EXPECT_EQ(defaulting.match("nobody.test"), fallback(4));
  EXPECT_EQ(defaulting.match(""), fallback(4));
  EXPECT_EQ(defaulting.match(".example.test"), fallback(4));
  EXPECT_EQ(defaulting.fallback(), fallback(4));
  EXPECT_EQ(defaulting.match("a.example.test"), wildcard(1)); // a claimed name is not the fallback's
}

TEST(DomainTable, FromIngressAndDefaults) {
  config::Ingress ingress;
  ingress.name = "edge";
  ingress.services = kServices;
  ingress.domain_routing.unknown_domain = "zone";
  const DomainTable table = DomainTable::from_ingress(ingress);
  EXPECT_EQ(table.match("nobody.test"), fallback(1));
  EXPECT_EQ(DomainTable().match("a.test"), std::nullopt);
}

TEST(DomainTable, UpperCaseDomainsAreLowered) {
  const DomainTable table(std::vector{service("s", {"A.Example.TEST", "*.Zone.TEST"})}, "reject");
  EXPECT_EQ(table.match("a.example.test"), exact(0));
  EXPECT_EQ(table.match("b.zone.test"), wildcard(0));
}

TEST(DomainTable, RejectsWhatConfigValidationRulesOut) {
  EXPECT_THROW(DomainTable(kServices, "nosuch"), std::invalid_argument);
  EXPECT_THROW(DomainTable(std::vector{service("a", {"x.test"}), service("b", {"X.test"})}, "reject"),
               std::invalid_argument);
  EXPECT_THROW(DomainTable(std::vector{service("a", {"*.x.test", "*.x.test"})}, "reject"), std::invalid_argument);
  for (const char* bad : {"*", "*.", "a.*.test", "**.test", "x.test.", "", "a_b.test"})
    EXPECT_THROW(DomainTable(std::vector{service("a", {bad})}, "reject"), std::invalid_argument) << bad;
  // An exact name and a wildcard of the same suffix are different claims.
  EXPECT_NO_THROW(DomainTable(std::vector{service("a", {"x.test"}), service("b", {"*.x.test"})}, "reject"));
}

TEST(DomainTable, ToString) {
  EXPECT_EQ(to_string(Kind::Exact), "exact");
  EXPECT_EQ(to_string(Kind::Wildcard), "wildcard");
  EXPECT_EQ(to_string(Kind::Fallback), "fallback");
}

} // namespace
} // namespace xdpfwd::ingress::domain
