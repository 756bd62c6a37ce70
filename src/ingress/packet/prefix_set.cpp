#include "prefix_set.hpp"

#include <algorithm>

namespace xdpfwd::ingress::packet {

namespace {

using U128 = unsigned __int128;

std::uint32_t to_u32(const std::uint8_t* p) noexcept {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

U128 to_u128(const std::uint8_t* p) noexcept {
  U128 v = 0;
  for (int i = 0; i < 16; ++i) {
    v = v << 8 | p[i];
  }
  return v;
}

// Sorts by start and merges overlapping or adjacent ranges, so that they are disjoint and the
// only candidate for an address is the last one starting at or before it.
template <typename R>
void normalize(std::vector<R>& ranges) {
  std::sort(ranges.begin(), ranges.end(), [](const R& a, const R& b) { return a.first < b.first; });
  std::vector<R> merged;
  for (const R& r : ranges) {
    if (!merged.empty() && (merged.back().last >= r.first || merged.back().last + 1 == r.first)) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  ranges = std::move(merged);
}

template <typename R, typename T>
bool lookup(const std::vector<R>& ranges, T value) noexcept {
  // First range starting after value; the one before it is the only candidate.
  auto it = std::upper_bound(ranges.begin(), ranges.end(), value,
                             [](T v, const R& r) { return v < r.first; });
  return it != ranges.begin() && value <= std::prev(it)->last;
}

} // namespace

PrefixSet::PrefixSet(const std::vector<Prefix>& prefixes) {
  for (const Prefix& p : prefixes) {
    if (p.address.version == 4) {
      const unsigned len = std::min<unsigned>(p.length, 32);
      const std::uint32_t host_mask = len == 0 ? 0xFFFFFFFFu : (len == 32 ? 0 : 0xFFFFFFFFu >> len);
      const std::uint32_t first = to_u32(p.address.bytes.data()) & ~host_mask;
      v4_.push_back({first, first | host_mask});
    } else if (p.address.version == 6) {
      const unsigned len = std::min<unsigned>(p.length, 128);
      const U128 all = ~U128{0};
      const U128 host_mask = len == 0 ? all : (len == 128 ? 0 : all >> len);
      const U128 first = to_u128(p.address.bytes.data()) & ~host_mask;
      v6_.push_back({first, first | host_mask});
    }
  }
  normalize(v4_);
  normalize(v6_);
}

PrefixSet PrefixSet::from_config(const std::vector<config::Cidr>& cidrs) {
  std::vector<Prefix> prefixes;
  prefixes.reserve(cidrs.size());
  for (const config::Cidr& c : cidrs) {
    if (const auto* n4 = std::get_if<boost::asio::ip::network_v4>(&c)) {
      prefixes.push_back({IpAddr::v4(n4->address().to_uint()), static_cast<std::uint8_t>(n4->prefix_length())});
    } else {
      const auto& n6 = std::get<boost::asio::ip::network_v6>(c);
      const auto b = n6.address().to_bytes();
      prefixes.push_back({IpAddr::from_bytes(6, b.data()), static_cast<std::uint8_t>(n6.prefix_length())});
    }
  }
  return PrefixSet(prefixes);
}

bool PrefixSet::contains(std::uint8_t version, const std::uint8_t* addr) const noexcept {
  if (version == 4) {
    return !v4_.empty() && lookup(v4_, to_u32(addr));
  }
  return !v6_.empty() && lookup(v6_, to_u128(addr));
}

} // namespace xdpfwd::ingress::packet
