// Which service of an ingress a domain name belongs to.
//
// Precedence, for a name as the parsers return it (lower case, no trailing dot):
//   1. an exact name of a service's domains ("a.example.test");
//   2. the longest matching wildcard: "*.example.test" matches every name below
//      example.test, at any depth ("a.example.test", "x.a.example.test"), never example.test
//      itself; "*.a.example.test" beats it for "x.a.example.test";
//   3. the ingress's domain_routing.unknown_domain: a service, or none ("reject").
// Wildcards match any number of labels (not one, as certificate wildcards do): config/README.md
// defines "*.a.example.test" as "names below a.example.test" with "the most specific wins",
// and DNS names such as "_sip._tcp.a.example.test" must reach a.example.test's service.
//
// A lookup costs one hash of the name and one hash per label suffix: O(length * labels), with
// names of 253 bytes at most.
#pragma once

#include <xdpfwd/config.hpp>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace xdpfwd::ingress::domain {

class DomainTable {
public:
  enum class MatchKind { Exact, Wildcard, Fallback };
  struct Match {
    std::size_t service = 0; // index into the ingress's services
    MatchKind kind = MatchKind::Exact;

    friend bool operator==(const Match&, const Match&) = default;
  };

  DomainTable() = default;

  // From the services of one ingress (their domains, lower-cased here if they are not yet) and
  // its unknown_domain ("reject" or a service name). Throws std::invalid_argument when
  // unknown_domain names no service, a domain is claimed twice, or a domain is not a valid
  // name or wildcard ("*" alone, "*.", "a.*.b"): config validation rules these out first.
  DomainTable(std::span<const config::Service> services, std::string_view unknown_domain);
  static DomainTable from_ingress(const config::Ingress& ingress) {
    return DomainTable(ingress.services, ingress.domain_routing.unknown_domain);
  }

  // The service for a name, by the precedence above; nullopt: reject. The empty name, or a
  // name that is not normalised, can only take the fallback.
  std::optional<Match> match(std::string_view name) const;
  // For traffic without a usable name (no SNI, an IP literal, a bad name): unknown_domain.
  std::optional<Match> fallback() const noexcept;

private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>>;

  Map exact_;
  Map wildcard_; // keyed by the suffix after "*.": "*.example.test" is "example.test"
  std::optional<std::size_t> fallback_;
};

std::string_view to_string(DomainTable::MatchKind kind) noexcept;

} // namespace xdpfwd::ingress::domain
