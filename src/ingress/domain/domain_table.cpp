#include "domain_table.hpp"

#include "host_name.hpp"

#include <algorithm>
#include <stdexcept>

namespace xdpfwd::ingress::domain {

DomainTable::DomainTable(std::span<const config::Service> services, std::string_view unknown_domain) {
  for (std::size_t i = 0; i < services.size(); ++i) {
    for (const std::string& domain : services[i].domains) {
      std::string name = domain;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
      const bool wildcard = name.starts_with("*.");
      std::string key = wildcard ? name.substr(2) : name;
      const HostName checked = classify_host(key, NameRules::HostName);
      if (checked.kind != HostName::Kind::Name || checked.name != key)
        throw std::invalid_argument("service " + services[i].name + ": \"" + domain + "\" is not a domain name or wildcard");
      Map& map = wildcard ? wildcard_ : exact_;
      if (!map.emplace(std::move(key), i).second)
        throw std::invalid_argument("service " + services[i].name + ": \"" + domain + "\" is claimed twice");
    }
  }
  if (unknown_domain != "reject") {
    const auto it = std::find_if(services.begin(), services.end(),
                                 [&](const config::Service& service) { return service.name == unknown_domain; });
    if (it == services.end())
      throw std::invalid_argument("unknown_domain \"" + std::string(unknown_domain) + "\" names no service of the ingress");
    fallback_ = static_cast<std::size_t>(it - services.begin());
  }
}

std::optional<DomainTable::Match> DomainTable::match(std::string_view name) const {
  if (const auto it = exact_.find(name); it != exact_.end()) return Match{.service = it->second, .kind = MatchKind::Exact};
  // The suffixes after each dot, longest first: the first wildcard found is the most specific.
  for (auto dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (dot == 0) break; // ".example.test" is not a name
    if (const auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end())
      return Match{.service = it->second, .kind = MatchKind::Wildcard};
  }
  return fallback();
}

std::optional<DomainTable::Match> DomainTable::fallback() const noexcept {
  if (!fallback_) return std::nullopt;
  return Match{.service = *fallback_, .kind = MatchKind::Fallback};
}

std::string_view to_string(DomainTable::MatchKind kind) noexcept {
  switch (kind) {
  case DomainTable::MatchKind::Exact: return "exact";
  case DomainTable::MatchKind::Wildcard: return "wildcard";
  case DomainTable::MatchKind::Fallback: return "fallback";
  }
  return "unknown";
}

} // namespace xdpfwd::ingress::domain
