// A set of IPv4 and IPv6 prefixes (deny_sources) answering "is this address inside any of them"
// in O(log n) without allocating.
//
// Built once: prefixes become address ranges, sorted and merged (nested or adjacent prefixes
// collapse into one range), so a lookup is a binary search for the last range starting at or
// before the address, then one comparison with its end. Lists of a few entries cost about the
// same as a linear scan; lists of thousands stay cheap.
#pragma once

#include "ip_addr.hpp"

#include <xdpfwd/config.hpp>

#include <cstdint>
#include <vector>

namespace xdpfwd::ingress::packet {

struct Prefix {
  IpAddr address; // host bits beyond `length` are ignored
  std::uint8_t length = 0; // 0..32 or 0..128
};

class PrefixSet {
public:
  PrefixSet() = default;
  explicit PrefixSet(const std::vector<Prefix>& prefixes);
  static PrefixSet from_config(const std::vector<config::Cidr>& cidrs);

  // `addr` holds 4 (version 4) or 16 (version 6) network-order bytes.
  bool contains(std::uint8_t version, const std::uint8_t* addr) const noexcept;
  bool contains(const IpAddr& a) const noexcept { return contains(a.version, a.bytes.data()); }

  bool empty() const noexcept { return v4_.empty() && v6_.empty(); }
  // Ranges after merging (for tests and status output).
  std::size_t range_count() const noexcept { return v4_.size() + v6_.size(); }

private:
  using U128 = unsigned __int128;
  template <typename T>
  struct Range {
    T first;
    T last; // inclusive
  };
  std::vector<Range<std::uint32_t>> v4_;
  std::vector<Range<U128>> v6_;
};

} // namespace xdpfwd::ingress::packet
